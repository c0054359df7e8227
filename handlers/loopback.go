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

// wireUser is the fixed head of a user's LoopBack JSON, in LoopBack's order.
// encoding/json writes it exactly as it writes each value alone (same
// escaping), in one call instead of one per field.
type wireUser struct {
	Realm         *string `json:"realm,omitempty"`
	Username      string  `json:"username,omitempty"`
	Email         string  `json:"email"`
	EmailVerified *bool   `json:"emailVerified,omitempty"`
	ID            int64   `json:"id"`
}

// MarshalUser is the LoopBack JSON of a user: realm, username, email,
// emailVerified, id, then the profile fields; never the password.
func MarshalUser(u *models.User) json.RawMessage {
	b, _ := json.Marshal(wireUser{Realm: u.Realm, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, ID: u.ID})
	var extra models.Fields
	for _, p := range u.Profile {
		if !models.ReservedField(p.Name) {
			extra = append(extra, p)
		}
	}
	if len(extra) == 0 {
		return b
	}
	rest, _ := extra.MarshalJSON() // {"a":1,...}: joined to the head as ,"a":1,...}
	return append(append(b[:len(b)-1], ','), rest[1:]...)
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
