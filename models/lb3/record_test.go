package lb3

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestParseRecord: the fast path gives what models.ParseObject gives.
func TestParseRecord(t *testing.T) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"email":"a@b.c","id":1,"v":true,"w":false,"n":null,"f":-1.5e3}`,
		`{"a":"x","a":"y"}`, `{"a":{"b":1}}`, `{"a":[1,2]}`, `{"a":"\u00e9"}`, `{ "a" : 1 }`, `{"a":1,}`, `{"a":01}`,
		`{"a":tru}`, `{"a":-0}`, `{"a":0}`, `{"a":-}`, `{"a":00}`, `{"a":-01}`, `{"a":1-2}`, `{"id":12345678901234567890}`, `{"a":1}x`, `{"a":"é"}`, `{"a":1e}`, `[1]`, `{"a"}`, `{"a":}`, `{`, `{"a":1`} {
		want, werr := models.ParseObject([]byte(s))
		got, gerr := parseRecord([]byte(s))
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: got %v, %v; want %v, %v", s, got, gerr, want, werr)
		}
	}
}

// TestAppendUnquoted: a string body decodes as encoding/json decodes it,
// and what it refuses is refused.
func TestAppendUnquoted(t *testing.T) {
	for _, s := range []string{``, `plain`, `{\"email\":\"a@b.c\",\"id\":1}`, `é and ü`, `\u00e9\n\t\/\\`,
		`\ud83d\ude00`, `\ud83d`, `\ud83dx`, `\ude00\ud83d`, "\xff\xfe", "a\xffb\\\"", `\x`, `\u12`, `\u12g4`, `trailing\\`,
		"ctl\x01", "é\x01", `\`} {
		var want string
		werr := json.Unmarshal([]byte(`"`+s+`"`), &want)
		got, gerr := appendUnquoted([]byte("prefix"), []byte(s))
		if (werr == nil) != (gerr == nil) || werr == nil && string(got) != "prefix"+want {
			t.Errorf("%q: got %q, %v; want %q, %v", s, got, gerr, want, werr)
		}
	}
}
