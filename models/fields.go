package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Field is one member of a JSON object, kept in the order it was sent.
type Field struct {
	Name  string
	Value json.RawMessage
}

// Fields is a JSON object as an ordered list: what a client sent (request
// bodies) and the extra profile fields LoopBack clients store on a user.
type Fields []Field

// ErrNotObject is returned by ParseObject for valid JSON that is not an object.
var ErrNotObject = errors.New("not a JSON object")

// ErrArray is ErrNotObject for a JSON array (LoopBack's bulk create).
var ErrArray = fmt.Errorf("%w: an array", ErrNotObject)

// MaxMembers caps the members of an object ParseObject accepts: no request
// to a User model needs more, and a bound keeps parsing cheap.
const MaxMembers = 1000

// ErrTooManyMembers is returned by ParseObject for an object over MaxMembers.
var ErrTooManyMembers = fmt.Errorf("a JSON object of more than %d members", MaxMembers)

// ParseObject decodes a JSON object keeping member order. A repeated name
// keeps its last value (as JSON.parse does) at its first position.
func ParseObject(data []byte) (Fields, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if json.Valid(data) {
			if d, ok := tok.(json.Delim); ok && d == '[' {
				return nil, ErrArray
			}
			return nil, ErrNotObject
		}
		var v any
		return nil, json.Unmarshal(data, &v)
	}
	var out Fields
	index := map[string]int{} // name -> position in out, so a repeat costs O(1)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		if i, ok := index[name]; ok {
			out[i].Value = raw
			continue
		}
		if len(out) == MaxMembers {
			return nil, ErrTooManyMembers
		}
		index[name] = len(out)
		out = append(out, Field{Name: name, Value: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid character after top-level value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid character after top-level value")
	}
	return out, nil
}

// StringFields builds Fields from plain strings (form posts), in the given order.
func StringFields(kv ...string) Fields {
	var f Fields
	for i := 0; i+1 < len(kv); i += 2 {
		b, _ := json.Marshal(kv[i+1])
		f = f.With(kv[i], b)
	}
	return f
}

// With returns f with name set to v (replacing an earlier value in place).
func (f Fields) With(name string, v json.RawMessage) Fields {
	for i := range f {
		if f[i].Name == name {
			f[i].Value = v
			return f
		}
	}
	return append(f, Field{Name: name, Value: v})
}

// Get returns the raw value of name and whether it was sent.
func (f Fields) Get(name string) (json.RawMessage, bool) {
	for _, x := range f {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// Has reports whether name was sent with a value other than null.
func (f Fields) Has(name string) bool {
	v, ok := f.Get(name)
	return ok && !isNull(v)
}

// String returns name's value when it is a JSON string. present is false when
// the field is absent or null; ok is false when it is present but not a string.
func (f Fields) String(name string) (s string, present, ok bool) {
	v, found := f.Get(name)
	if !found || isNull(v) {
		return "", false, true
	}
	if len(v) == 0 || v[0] != '"' {
		return "", true, false
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", true, false
	}
	return s, true, true
}

// MarshalJSON writes the object in order.
func (f Fields) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, x := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(x.Name)
		b.Write(k)
		b.WriteByte(':')
		if len(x.Value) == 0 {
			b.WriteString("null")
		} else {
			b.Write(x.Value)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || string(bytes.TrimSpace(v)) == "null"
}

// lbValue is how LoopBack prints a value in a validation message.
func lbValue(v json.RawMessage, present bool) string {
	if !present || isNull(v) {
		return "undefined"
	}
	return string(v)
}
