package models_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchkey/latchkey/models"
)

// Fuzz targets for the parsers that read untrusted input in models. Run one
// with `go test -run '^$' -fuzz '^FuzzParseObject$' -fuzztime 15s ./models`;
// .ci/run runs every Fuzz* for a fixed time. Without -fuzz, the f.Add seeds
// and testdata/fuzz/<Name>/ files run as ordinary tests.

// FuzzParseObject: request bodies. ParseObject never panics, accepts only
// valid JSON, and what it accepts survives MarshalJSON → ParseObject
// unchanged and means the same object as the input (last duplicate wins, as
// JSON.parse and encoding/json do).
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		``, `{}`, ` { } `, `{"email":"a@b.co","password":"hunter22"}`,
		`{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9\ud83d\udd10"}`,
		`{"ttl":1e400}`, `{"x":-0.0e-7}`, `[1,2]`, `"str"`, `null`, `{"a":1}{"b":2}`,
		`{"a":1}]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `{"a":"\xff\xfe"}`, "{\"a\":1}\x00",
		`{"<&>":"<&>"}`, `{"":""}`, `{"a":[[[[[[[[[[]]]]]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fields, err := models.ParseObject(data)
		if err != nil {
			if fields != nil {
				t.Fatalf("error %v with non-nil fields %v", err, fields)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		seen := map[string]bool{}
		for _, x := range fields {
			if seen[x.Name] {
				t.Fatalf("name %q appears twice in %q", x.Name, data)
			}
			seen[x.Name] = true
			if !json.Valid(x.Value) {
				t.Fatalf("field %q has invalid JSON value %q", x.Name, x.Value)
			}
		}
		out, err := fields.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := models.ParseObject(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, data, err)
		}
		if !reflect.DeepEqual(normFields(fields), normFields(again)) {
			t.Fatalf("round trip changed the fields:\n in  %q\n out %q", data, out)
		}
		want, err := decodeAny(data)
		if err != nil {
			t.Fatalf("encoding/json refuses accepted input %q: %v", data, err)
		}
		got, err := decodeAny(out)
		if err != nil {
			t.Fatalf("encoding/json refuses output %q: %v", out, err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("not the same object:\n in  %q → %#v\n out %q → %#v", data, want, out, got)
		}
	})
}

// decodeAny decodes a JSON document keeping numbers as written (1e400 is a
// valid JSON number that a float64 cannot hold).
func decodeAny(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// normFields makes nil and empty Fields (and values) compare equal.
func normFields(f models.Fields) []models.Field {
	out := make([]models.Field, 0, len(f))
	for _, x := range f {
		out = append(out, models.Field{Name: x.Name, Value: append(json.RawMessage{}, x.Value...)})
	}
	return out
}

// FuzzEmail: email addresses as typed. ValidEmail and EmailKey never panic;
// EmailKey is idempotent (a key looks itself up); a valid address keeps its
// '@' and has no surrounding space in its key.
func FuzzEmail(f *testing.F) {
	for _, s := range []string{
		``, `a@b.co`, ` Bob@Example.COM `, `@b.co`, `a@`, `a@b`, `a..b@c.de`, `.a@b.co`, `a.@b.co`,
		`a@-b.co`, `a@b-.co`, `a@b..co`, `ü@exämple.de`, `İ@Ⱥ.de`, "a\x00@b.co", "a@b.co\xff",
		`"quoted"@b.co`, `a b@c.de`, strings.Repeat("a", 64) + `@b.co`, strings.Repeat("a", 65) + `@b.co`,
		`a@` + strings.Repeat("b", 63) + `.co`, `a@` + strings.Repeat("b", 64) + `.co`, "\u00a0a@b.co\u2003",
		`a@b@c.de`, `ǅ@ǅ.de`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		valid := models.ValidEmail(s)
		key := models.EmailKey(s)
		if again := models.EmailKey(key); again != key {
			t.Fatalf("EmailKey not idempotent: %q → %q → %q", s, key, again)
		}
		if !valid {
			return
		}
		if !utf8.ValidString(s) || len(s) > 254 {
			t.Fatalf("ValidEmail accepted %q (invalid UTF-8 or longer than 254 bytes)", s)
		}
		if !strings.Contains(key, "@") || strings.TrimSpace(key) != key || key == "" {
			t.Fatalf("valid address %q has key %q", s, key)
		}
		if bytes.ContainsAny([]byte(s), " \t\r\n\x00") {
			t.Fatalf("ValidEmail accepted %q with whitespace or NUL", s)
		}
	})
}
