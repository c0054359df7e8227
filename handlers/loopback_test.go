package handlers_test

import (
	"errors"
	"testing"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// TestParseTTL: LoopBack's ttl semantics with our refusal of broken values.
func TestParseTTL(t *testing.T) {
	for raw, want := range map[string]int64{`0`: 0, `null`: 0, `60`: 60, `"120"`: 120, `" 7 "`: 7, `""`: 0, `1e3`: 1000,
		`-1`: -1, `99999999999999999999999`: 1<<62 - 1} {
		got, err := handlers.ParseTTL([]byte(raw))
		if err != nil || (want != 1<<62-1 && got != want) || (want == 1<<62-1 && got < 1<<40) {
			t.Errorf("ParseTTL(%s) = %d, %v; want %d", raw, got, err, want)
		}
	}
	for _, raw := range []string{`-2`, `1.5`, `"abc"`, `true`, `{}`, `[]`, `"NaN"`, `"-5"`, `"Infinity"`, `-1e400`} {
		if _, err := handlers.ParseTTL([]byte(raw)); !errors.Is(err, models.ErrInvalidTTL) {
			t.Errorf("ParseTTL(%s): %v, want ErrInvalidTTL", raw, err)
		}
	}
}

// TestMarshalUser: LoopBack's property order, the profile after them in
// the order sent, never the password or a reserved name in the profile.
func TestMarshalUser(t *testing.T) {
	body, _ := models.ParseObject([]byte(`{"zeta":1,"alpha":{"b":[1,2]},"access_token":"x"}`))
	realm, verified := "admin", false
	for _, tt := range []struct {
		u    models.User
		want string
	}{
		{models.User{ID: 1, Email: "p@example.com", Profile: body, PasswordHash: "$2a$10$secret"},
			`{"email":"p@example.com","id":1,"zeta":1,"alpha":{"b":[1,2]}}`},
		{models.User{ID: 7, Email: "q@example.com", Username: "q", Realm: &realm, EmailVerified: &verified},
			`{"realm":"admin","username":"q","email":"q@example.com","emailVerified":false,"id":7}`},
		// Escaping as encoding/json writes a string alone: HTML characters,
		// a quote, invalid UTF-8 and U+2028.
		{models.User{ID: 9, Email: "<a&b>\"@example.com", Username: "x\xffy\u2028"},
			`{"username":"x\ufffdy\u2028","email":"\u003ca\u0026b\u003e\"@example.com","id":9}`},
	} {
		if got := string(handlers.MarshalUser(&tt.u)); got != tt.want {
			t.Errorf("MarshalUser = %s, want %s", got, tt.want)
		}
	}
}
