package lb3

import (
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestParseRecord: the fast path gives what models.ParseObject gives.
func TestParseRecord(t *testing.T) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"email":"a@b.c","id":1,"v":true,"w":false,"n":null,"f":-1.5e3}`,
		`{"a":"x","a":"y"}`, `{"a":{"b":1}}`, `{"a":[1,2]}`, `{"a":"\u00e9"}`, `{ "a" : 1 }`, `{"a":1,}`, `{"a":01}`,
		`{"a":tru}`, `{"a":1}x`, `{"a":"é"}`, `{"a":1e}`, `[1]`, `{"a"}`, `{"a":}`, `{`, `{"a":1`} {
		want, werr := models.ParseObject([]byte(s))
		got, gerr := parseRecord([]byte(s))
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%s: got %v, %v; want %v, %v", s, got, gerr, want, werr)
		}
	}
}
