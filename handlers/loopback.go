package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/models"
)

// LoopBack 3's wire format: how a user is written out and how a login's ttl
// is read. The domain (models) knows nothing of either.

// MarshalUser is the LoopBack JSON of a user: realm, username, email,
// emailVerified, id, then the profile fields; never the password.
func MarshalUser(u *models.User) json.RawMessage {
	f := make(models.Fields, 0, 5+len(u.Profile))
	add := func(name string, v any) {
		b, _ := json.Marshal(v)
		f = append(f, models.Field{Name: name, Value: b})
	}
	if u.Realm != nil {
		add("realm", *u.Realm)
	}
	if u.Username != "" {
		add("username", u.Username)
	}
	add("email", u.Email)
	if u.EmailVerified != nil {
		add("emailVerified", *u.EmailVerified)
	}
	add("id", u.ID)
	for _, p := range u.Profile {
		if !models.ReservedField(p.Name) {
			f = append(f, p)
		}
	}
	b, _ := f.MarshalJSON()
	return b
}

// jsonNumber is the grammar of a JSON number (strconv also takes "Inf", hex, "1_0").
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// ParseTTL reads a login's requested ttl as LoopBack does: absent, null or 0
// mean the default; a number or a numeric string is taken as seconds. Values
// that are negative (other than -1, returned as is for the caller to allow or
// refuse), fractional or not numeric are models.ErrInvalidTTL.
func ParseTTL(v json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(v))
	if len(v) == 0 || s == "null" {
		return 0, nil
	}
	if s == "" {
		// Whitespace only: not JSON, and s[0] below would panic.
		return 0, models.ErrInvalidTTL
	}
	if s[0] == '"' {
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return 0, models.ErrInvalidTTL
		}
		s = strings.TrimSpace(str)
		if s == "" {
			return 0, nil
		}
	}
	if !jsonNumber.MatchString(s) {
		return 0, models.ErrInvalidTTL
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Exponent forms and numbers beyond int64: whole values only; the caller caps them.
		f, ferr := strconv.ParseFloat(s, 64)
		switch {
		case ferr != nil && !errors.Is(ferr, strconv.ErrRange), math.IsNaN(f), f < 0:
			return 0, models.ErrInvalidTTL
		case f >= math.MaxInt64/2:
			return math.MaxInt64 / 2, nil
		case f != math.Trunc(f):
			return 0, models.ErrInvalidTTL
		}
		n = int64(f)
	}
	if n < -1 {
		return 0, models.ErrInvalidTTL
	}
	return n, nil
}
