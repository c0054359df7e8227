package lb3

import (
	"encoding/json"

	"github.com/latchkey/latchkey/models"
)

// parseRecord is models.ParseObject for the records LoopBack writes
// (JSON.stringify of a flat object: no white space, string, number, true,
// false or null values). It copies the record once and slices every value
// from the copy, as ParseObject's result would hold them. Anything else
// (nesting, escapes in names, repeated names, white space, a malformed
// value) goes to ParseObject, so the result and the errors are the same.
func parseRecord(b []byte) (models.Fields, error) {
	if out, ok := parseFlat(b); ok {
		return out, nil
	}
	return models.ParseObject(b)
}

func parseFlat(src []byte) (models.Fields, bool) {
	if len(src) < 2 || src[0] != '{' || src[len(src)-1] != '}' {
		return nil, false
	}
	b := make([]byte, len(src))
	copy(b, src)
	out := make(models.Fields, 0, 8)
	i := 1
	if b[i] == '}' {
		return out, i+1 == len(b)
	}
	for {
		// "name":
		if b[i] != '"' {
			return nil, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] < 0x20 {
				return nil, false
			}
			j++
		}
		if j+1 >= len(b) || b[j+1] != ':' {
			return nil, false
		}
		name := recordName(b[i+1 : j])
		for _, f := range out {
			if f.Name == name {
				return nil, false
			}
		}
		i = j + 2
		if i >= len(b) {
			return nil, false
		}
		start := i
		switch c := b[i]; {
		case c == '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' || b[i] < 0x20 {
					return nil, false
				}
				i++
			}
			if i >= len(b) {
				return nil, false
			}
			i++
		case c == 't' || c == 'f' || c == 'n':
			for _, lit := range []string{"true", "false", "null"} {
				if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
					i += len(lit)
					break
				}
			}
			if i == start {
				return nil, false
			}
		case c == '-' || c >= '0' && c <= '9':
			for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == '-' || b[i] == '+' || b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
				i++
			}
			if !plainInt(b[start:i]) && !json.Valid(b[start:i]) {
				return nil, false
			}
		default:
			return nil, false
		}
		if len(out) == models.MaxMembers {
			return nil, false
		}
		out = append(out, models.Field{Name: name, Value: json.RawMessage(b[start:i:i])})
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i++
			if i >= len(b) {
				return nil, false
			}
		case '}':
			return out, i+1 == len(b)
		default:
			return nil, false
		}
	}
}

// recordName is string(b), without allocating for the names LoopBack's
// built-in models use (a few million records repeat them).
func recordName(b []byte) string {
	switch string(b) {
	case "id":
		return "id"
	case "email":
		return "email"
	case "username":
		return "username"
	case "password":
		return "password"
	case "emailVerified":
		return "emailVerified"
	case "verificationToken":
		return "verificationToken"
	case "realm":
		return "realm"
	case "ttl":
		return "ttl"
	case "created":
		return "created"
	case "userId":
		return "userId"
	case "scopes":
		return "scopes"
	case "principalType":
		return "principalType"
	}
	return string(b)
}

// plainInt: b is 0 or an optionally negative run of digits not starting
// with 0, which JSON accepts as a number.
func plainInt(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '0' && len(b) > 1 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
