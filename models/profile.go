package models

import "fmt"

// MaxProfileBytes caps the extra fields stored with a user.
const MaxProfileBytes = 16 << 10

// reserved are LoopBack's User properties (and transport fields) that never
// go into the profile.
var reserved = map[string]bool{
	"id": true, "email": true, "username": true, "password": true, "realm": true,
	"emailVerified": true, "verificationToken": true, "access_token": true,
}

// ReservedField reports whether name is one of LoopBack's User properties
// (or a transport field such as access_token), which are never profile
// fields.
func ReservedField(name string) bool { return reserved[name] }

// profileOf merges body's non-reserved fields over base, refusing more than
// MaxProfileBytes of JSON.
func profileOf(body Fields, base Fields) (Fields, error) {
	out := append(Fields(nil), base...)
	index := make(map[string]int, len(out))
	for i, f := range out {
		index[f.Name] = i
	}
	for _, f := range body {
		switch i, ok := index[f.Name]; {
		case reserved[f.Name]:
		case ok:
			out[i].Value = f.Value
		default:
			index[f.Name] = len(out)
			out = append(out, f)
		}
	}
	if len(profileJSON(out)) > MaxProfileBytes {
		return nil, &Error{Kind: KindUnprocessable, Code: "PROFILE_TOO_LARGE",
			Message: fmt.Sprintf("Extra user fields are limited to %d bytes of JSON", MaxProfileBytes)}
	}
	return out, nil
}

func profileJSON(p Fields) string {
	if len(p) == 0 {
		return "{}"
	}
	b, _ := p.MarshalJSON()
	return string(b)
}
