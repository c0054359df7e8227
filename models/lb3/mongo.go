package lb3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/models"
)

// mongoDir reads a folder of mongoexport files, one per collection, named
// after the model: User.json or user.json, AccessToken.json,
// UserIdentity.json (§2). Each file is MongoDB Extended JSON v2, canonical
// or relaxed, one document per line, pretty-printed documents one after
// another, or one array (--jsonArray). Every pass streams: one document is
// held at a time.
//
// LoopBack's MongoDB users have ObjectId ids; Latchkey's are integers. The
// ObjectIds of the user files get new integer ids, above the highest
// integer id any user already has, in ObjectId order (timestamp, then the
// rest). A re-run into the same target keeps the ids the first run gave:
// the ObjectIds the target knows as aliases keep theirs, and new ones are
// numbered past the target's largest id. Each such user carries its
// ObjectId as an alias (/api/users/<ObjectId> resolves) and in its profile
// under lb3Id, and a token's (or identity's) userId ObjectId becomes the
// user's new id. Store.MongoIDs and WriteMongoIDs give the mapping to the
// operator too.
type mongoDir struct {
	dir   string
	files map[string]string // "<model>.json" → its path, from the folder listing
	ids   *mongoIDs         // built by the first scan that needs it

	known map[string]int64 // ObjectId → the id an earlier import gave it (the target's aliases)
	floor int64            // new ids go past this (the target's largest id)
}

// keep makes the numbering keep the ids the target already gave
// ObjectIds, and number new ones past floor.
func (m *mongoDir) keep(known map[string]int64, floor int64) {
	m.known, m.floor, m.ids = known, floor, nil
}

// userModelFiles are the user models whose ObjectIds get integer ids: the
// custom "user" most apps define and the built-in "User" (§0). Ids are
// assigned over both together, so a token maps to the same integer
// whichever of the two the import picks.
func userModelFiles() []string { return []string{"User", "user"} }

// lb3IDField is the profile key that keeps a user's LoopBack ObjectId.
const lb3IDField = "lb3Id"

// maxDocBytes bounds one document: MongoDB's own limit is 16 MiB of BSON,
// and its JSON is not much larger. A document that grows past it is a
// file that lost a closing brace.
const maxDocBytes = 32 << 20

// MongoID is one user's LoopBack ObjectId and the integer id it got.
type MongoID struct {
	Model    string // "User" or "user"
	ObjectID string // 24 lower-case hex digits
	ID       int64
}

// mongoIDs is the ObjectId → integer id mapping of one store.
type mongoIDs struct {
	byHex map[string]int64
	list  []MongoID // in id order
}

// openMongoDir opens src as a folder of mongoexport files; ok is false when
// src is not a folder (the caller tries the other kinds).
func openMongoDir(src string) (*Store, bool, error) {
	fi, err := os.Stat(src)
	if err != nil || !fi.IsDir() {
		return nil, false, nil
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, true, fmt.Errorf("lb3: %w", err)
	}
	m := &mongoDir{dir: src, files: map[string]string{}}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			m.files[e.Name()] = filepath.Join(src, e.Name())
		}
	}
	if !slices.ContainsFunc(userModelFiles(), func(model string) bool { return m.files[model+".json"] != "" }) {
		return nil, true, &UsageError{fmt.Sprintf("lb3: %s is a folder without User.json or user.json: "+
			"want a LoopBack memory-connector file, mysql://…, postgres://… or a folder of mongoexport files", src)}
	}
	return &Store{src: m, kind: "mongo"}, true, nil
}

func (m *mongoDir) describe() string { return m.dir }
func (m *mongoDir) close() error     { return nil }

// table: a model is present when the folder has <model>.json, named
// exactly (a case-insensitive file system lists one name, so "User" and
// "user" never both match the same file).
func (m *mongoDir) table(_ context.Context, model string) (string, bool, error) {
	name := model + ".json"
	return name, m.files[name] != "", nil
}

func isUserModel(model string) bool { return model == "User" || model == "user" }

func (m *mongoDir) scan(ctx context.Context, names []string, fn func(model string, rec models.Fields) error) error {
	ids, err := m.idMap(ctx)
	if err != nil {
		return err
	}
	for _, model := range names {
		path := m.files[model+".json"]
		if path == "" {
			continue
		}
		err := m.readFile(ctx, path, func(line int, doc models.Fields) error {
			rec, note, err := ids.record(model, doc)
			if err == nil {
				err = fn(model, rec)
				if err != nil && note != "" {
					err = fmt.Errorf("%w (%s)", err, note)
				}
			}
			if err != nil {
				return &ExportError{File: filepath.Base(path), Line: line, Err: err}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ExportError is a document of a mongoexport file that cannot be read or
// imported, named by file and the line it starts on.
type ExportError struct {
	File string
	Line int
	Err  error
}

func (e *ExportError) Error() string {
	return fmt.Sprintf("lb3: %s line %d: %s", e.File, e.Line, strings.TrimPrefix(e.Err.Error(), "lb3: "))
}

func (e *ExportError) Unwrap() error { return e.Err }

func (m *mongoDir) readFile(ctx context.Context, path string, fn func(line int, doc models.Fields) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("lb3: %w", err)
	}
	defer f.Close()
	err = readExport(ctx, bufio.NewReaderSize(f, 1<<20), fn)
	if le, ok := errors.AsType[*lineError](err); ok {
		return &ExportError{File: filepath.Base(path), Line: le.line, Err: le.err}
	}
	return err
}

// idMap reads the user files once and numbers their ObjectIds.
func (m *mongoDir) idMap(ctx context.Context) (*mongoIDs, error) {
	if m.ids != nil {
		return m.ids, nil
	}
	var maxInt int64
	type oid struct{ model, hex string }
	var oids []oid
	for _, model := range userModelFiles() {
		path := m.files[model+".json"]
		if path == "" {
			continue
		}
		err := m.readFile(ctx, path, func(line int, doc models.Fields) error {
			raw, ok := doc.Get("_id")
			if !ok {
				return &lineError{line, errors.New("a user without _id")}
			}
			if h, ok := objectIDHex(raw); ok {
				oids = append(oids, oid{model, h})
				return nil
			}
			n, err := integer(raw)
			if err != nil || n <= 0 || string(raw)[0] == '"' {
				return &lineError{line, fmt.Errorf("_id %s is neither an ObjectId nor a whole number above 0", raw)}
			}
			maxInt = max(maxInt, n)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	// Hex order is byte order: the 4-byte timestamp first, then the rest.
	slices.SortFunc(oids, func(a, b oid) int {
		return cmpOr(strings.Compare(a.hex, b.hex), strings.Compare(a.model, b.model))
	})
	ids := &mongoIDs{byHex: make(map[string]int64, len(oids))}
	next := max(maxInt, m.floor) + 1
	for _, o := range oids {
		id, seen := ids.byHex[o.hex]
		if !seen { // the same ObjectId twice: Check reports the second record
			if old, ok := m.known[o.hex]; ok {
				id = old
			} else {
				id = next
				next++
			}
			ids.byHex[o.hex] = id
		}
		ids.list = append(ids.list, MongoID{Model: o.model, ObjectID: o.hex, ID: id})
	}
	m.ids = ids
	return ids, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// record turns an exported document into the record the importer reads:
// _id becomes id (a user's ObjectId its integer id, kept as lb3Id), and a
// userId ObjectId the user's integer id. A userId that is no user's comes
// back null. The note explains the record in the error the importer may
// raise about it (a user's ObjectId; a live token's missing user).
func (ids *mongoIDs) record(model string, doc models.Fields) (models.Fields, string, error) {
	raw, ok := doc.Get("_id")
	if !ok {
		return nil, "", errors.New("a document without _id")
	}
	if _, ok := doc.Get("id"); ok {
		return nil, "", errors.New("both _id and id (LoopBack's MongoDB connector keeps only _id)")
	}
	rec := make(models.Fields, 0, len(doc)+1)
	var note string
	if isUserModel(model) {
		if _, ok := doc.Get(lb3IDField); ok {
			return nil, "", fmt.Errorf("a field named %s, which the import uses for the user's ObjectId", lb3IDField)
		}
		if h, ok := objectIDHex(raw); ok {
			rec = append(rec, models.Field{Name: "id", Value: json.RawMessage(strconv.FormatInt(ids.byHex[h], 10))},
				models.Field{Name: lb3IDField, Value: json.RawMessage(strconv.Quote(h))})
			note = fmt.Sprintf("the user with ObjectId %s, numbered %d", h, ids.byHex[h])
		} else {
			rec = append(rec, models.Field{Name: "id", Value: raw})
		}
	} else {
		if h, ok := objectIDHex(raw); ok {
			raw = json.RawMessage(strconv.Quote(h))
		}
		rec = append(rec, models.Field{Name: "id", Value: raw})
	}
	for _, f := range doc {
		switch {
		case f.Name == "_id":
			continue
		case f.Name == "userId" && !isUserModel(model):
			if h, ok := objectIDHex(f.Value); ok {
				if id, known := ids.byHex[h]; known {
					f.Value = json.RawMessage(strconv.FormatInt(id, 10))
				} else {
					f.Value = json.RawMessage("null")
					note = fmt.Sprintf("userId is ObjectId %s, which is no user in User.json or user.json", h)
				}
			}
		}
		rec = append(rec, f)
	}
	return rec, note, nil
}

// objectIDHex is the ObjectId in raw, which the export gave as {"$oid":…}
// (read as its hex string) or which the app stored as a hex string (§2:
// compare ids as hex).
func objectIDHex(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) != 26 || json.Unmarshal(raw, &s) != nil || len(s) != 24 {
		return "", false
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", false
	}
	return strings.ToLower(s), true
}

// MongoIDs is the ObjectId → integer id mapping of a MongoDB export, in id
// order, for the operator to keep (WriteMongoIDs); nil for other stores.
// Each imported user also keeps its ObjectId in its profile as lb3Id.
func (s *Store) MongoIDs(ctx context.Context) ([]MongoID, error) {
	m, ok := s.src.(*mongoDir)
	if !ok {
		return nil, nil
	}
	ids, err := m.idMap(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(ids.list), nil
}

// WriteMongoIDs writes the mapping as CSV: model,objectId,id.
func WriteMongoIDs(w io.Writer, ids []MongoID) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"model", "objectId", "id"})
	for _, m := range ids {
		cw.Write([]string{m.Model, m.ObjectID, strconv.FormatInt(m.ID, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// lineError is a problem at a line of an export file; readFile names the
// file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// readExport reads mongoexport output from r and calls fn with each
// document, converted to plain JSON, and the line it starts on. The first
// non-space byte tells the forms apart: '[' is one array (--jsonArray), '{'
// documents one after another. If the first document ends on its line the
// file is line-delimited (mongoexport's default), and every document must
// end on its line: a broken line is named as such rather than read into
// the next. Otherwise documents may span lines (--pretty). Errors are
// *lineError, or fn's.
func readExport(ctx context.Context, r *bufio.Reader, fn func(line int, doc models.Fields) error) error {
	d := &docReader{r: r, line: 1}
	c, err := d.skipSpace()
	switch {
	case err == io.EOF:
		return nil // an empty collection exports as an empty file
	case err != nil:
		return &lineError{d.line, err}
	case c == '[':
		d.array = true
		d.r.ReadByte()
	case c != '{':
		return &lineError{d.line, fmt.Errorf("want a document ({…}) or an array of them ([…]), got %q: not a mongoexport file?", c)}
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		doc, start, err := d.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := convertDoc(doc)
		if err != nil {
			var se *json.SyntaxError
			at := start
			if errors.As(err, &se) && se.Offset <= int64(len(doc)) {
				at += bytes.Count(doc[:se.Offset], []byte("\n"))
			}
			return &lineError{at, err}
		}
		if err := fn(start, rec); err != nil {
			return err
		}
	}
}

// docReader cuts a stream into documents, counting lines, holding one.
type docReader struct {
	r     *bufio.Reader
	line  int  // the line of the next byte
	array bool // inside [ … ]
	first bool // a document has been read (array: a ',' is due)
	lines bool // line-delimited: each document ends on its line
	done  bool // the array's ']' was read
	buf   []byte
}

// skipSpace reads past white space and returns the next byte unread.
func (d *docReader) skipSpace() (byte, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case '\n':
			d.line++
		case ' ', '\t', '\r':
		default:
			d.r.UnreadByte()
			return c, nil
		}
	}
}

// next returns the next document's bytes and its first line, or io.EOF.
func (d *docReader) next() ([]byte, int, error) {
	c, err := d.skipSpace()
	if d.done {
		if err == io.EOF {
			return nil, 0, io.EOF
		}
		return nil, 0, &lineError{d.line, fmt.Errorf("%q after the array's closing ]", c)}
	}
	if d.array {
		if err == io.EOF {
			return nil, 0, &lineError{d.line, errors.New("the file ends inside the array (truncated?)")}
		}
		switch {
		case c == ']':
			d.r.ReadByte()
			d.done = true
			return d.next()
		case d.first && c != ',':
			return nil, 0, &lineError{d.line, fmt.Errorf("want , or ] between documents, got %q", c)}
		case d.first:
			d.r.ReadByte()
			if c, err = d.skipSpace(); err == io.EOF {
				return nil, 0, &lineError{d.line, errors.New("the file ends inside the array (truncated?)")}
			}
		}
	}
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if c != '{' {
		return nil, 0, &lineError{d.line, fmt.Errorf("want a document ({…}), got %q", c)}
	}
	start := d.line
	d.buf = d.buf[:0]
	depth, inString, escaped := 0, false, false
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return nil, 0, &lineError{start, errors.New("the document ends early (truncated file?)")}
		}
		if c == '\n' {
			switch {
			case inString:
				return nil, 0, &lineError{d.line, errors.New("a line break inside a string (a broken line?)")}
			case d.lines:
				return nil, 0, &lineError{start, errors.New("the document does not end on its line (a broken or truncated line?)")}
			}
			d.line++
		}
		d.buf = append(d.buf, c)
		if len(d.buf) > maxDocBytes {
			return nil, 0, &lineError{start, fmt.Errorf("a document over %d MiB: a broken file?", maxDocBytes>>20)}
		}
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if !d.first && !d.array && start == d.line {
		d.lines = true
	}
	d.first = true
	return d.buf, start, nil
}

// convertDoc reads one Extended JSON v2 document into plain JSON fields:
// {"$oid"} becomes its hex string, {"$date"} an ISO-8601 UTC string with
// milliseconds (what the other stores give), {"$numberInt"},
// {"$numberLong"} and {"$numberDouble"} numbers, {"$numberDecimal"} a
// number. A non-finite double or decimal becomes the string "NaN",
// "Infinity" or "-Infinity", which JSON has no number for. Any other $
// type is an error naming it.
func convertDoc(doc []byte) (models.Fields, error) {
	if !utf8.Valid(doc) {
		return nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(doc))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("want a document, got %v", tok)
	}
	if err := convertObject(dec, &out, "", true); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more after the document")
	}
	return models.ParseObject(out.Bytes())
}

// convertValue converts the value whose first token is tok; path names it
// in errors.
func convertValue(dec *json.Decoder, out *bytes.Buffer, tok json.Token, path string) error {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return convertObject(dec, out, path, false)
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				t, err := dec.Token()
				if err != nil {
					return err
				}
				if err := convertValue(dec, out, t, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte(']')
			return nil
		}
		return fmt.Errorf("%s: unexpected %v", path, v)
	case string:
		writeString(out, v)
	case json.Number:
		out.WriteString(v.String())
	case bool:
		out.WriteString(strconv.FormatBool(v))
	case nil:
		out.WriteString("null")
	}
	return nil
}

// convertObject converts an object whose '{' has been read. Inside a
// value, an object whose first member is $-named is an Extended JSON type.
func convertObject(dec *json.Decoder, out *bytes.Buffer, path string, top bool) error {
	opened := false
	for i := 0; dec.More(); i++ {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		if i == 0 && !top && strings.HasPrefix(key, "$") {
			if err := convertTyped(dec, out, key, path); err != nil {
				return err
			}
			if dec.More() {
				return fmt.Errorf("%s: %s must be the only member of its object", fieldName(path), key)
			}
			_, err := dec.Token()
			return err
		}
		if i > 0 {
			out.WriteByte(',')
		} else {
			out.WriteByte('{')
			opened = true
		}
		writeString(out, key)
		out.WriteByte(':')
		t, err = dec.Token()
		if err != nil {
			return err
		}
		sub := key
		if path != "" {
			sub = path + "." + key
		}
		if err := convertValue(dec, out, t, sub); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if !opened { // an empty object
		out.WriteByte('{')
	}
	out.WriteByte('}')
	return nil
}

func fieldName(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// convertTyped converts the value of the Extended JSON type key.
func convertTyped(dec *json.Decoder, out *bytes.Buffer, key, path string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s %s", fieldName(path), key, fmt.Sprintf(format, args...))
	}
	t, err := dec.Token()
	if err != nil {
		return err
	}
	s, isString := t.(string)
	switch key {
	case "$oid":
		if !isString || len(s) != 24 {
			return bad("is %v, not 24 hex digits", t)
		}
		if _, err := hex.DecodeString(s); err != nil {
			return bad("%q is not 24 hex digits", s)
		}
		writeString(out, strings.ToLower(s))
	case "$date":
		var at time.Time
		switch v := t.(type) {
		case string: // relaxed: ISO-8601
			at, err = time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return bad("%q is not an ISO-8601 date", v)
			}
		case json.Number: // the legacy form: milliseconds
			ms, err := strconv.ParseInt(v.String(), 10, 64)
			if err != nil {
				return bad("%s is not whole milliseconds", v)
			}
			at = time.UnixMilli(ms)
		case json.Delim: // canonical: {"$numberLong": "<ms>"}
			if v != '{' {
				return bad("is not a date")
			}
			k, err := dec.Token()
			if err != nil {
				return err
			}
			n, err := dec.Token()
			if err != nil {
				return err
			}
			ns, _ := n.(string)
			ms, perr := strconv.ParseInt(ns, 10, 64)
			if k != "$numberLong" || perr != nil {
				return bad(`is not {"$numberLong": "<milliseconds>"}`)
			}
			if end, err := dec.Token(); err != nil || end != json.Delim('}') {
				return bad(`is not {"$numberLong": "<milliseconds>"}`)
			}
			at = time.UnixMilli(ms)
		default:
			return bad("is %v, not a date", t)
		}
		writeString(out, at.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	case "$numberInt":
		if _, err := strconv.ParseInt(s, 10, 32); !isString || err != nil {
			return bad("is %v, not a 32-bit integer in a string", t)
		}
		out.WriteString(strings.TrimPrefix(s, "+"))
	case "$numberLong":
		n, err := strconv.ParseInt(s, 10, 64)
		if !isString || err != nil {
			return bad("is %v, not a 64-bit integer in a string", t)
		}
		out.WriteString(strconv.FormatInt(n, 10))
	case "$numberDouble":
		f, err := strconv.ParseFloat(s, 64)
		if !isString || err != nil && !errors.Is(err, strconv.ErrRange) {
			return bad("is %v, not a number in a string", t)
		}
		writeFloat(out, f)
	case "$numberDecimal":
		if !isString {
			return bad("is %v, not a decimal in a string", t)
		}
		if json.Valid([]byte(s)) && s != "" && (s[0] == '-' || '0' <= s[0] && s[0] <= '9') {
			out.WriteString(s)
		} else if f, err := strconv.ParseFloat(s, 64); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			writeFloat(out, f)
		} else {
			return bad("%q is not a decimal", s)
		}
	default:
		return fmt.Errorf("%s: the Extended JSON type %s is not supported (only $oid, $date, $numberInt, $numberLong, $numberDouble, $numberDecimal)", fieldName(path), key)
	}
	return nil
}

func writeFloat(out *bytes.Buffer, f float64) {
	switch {
	case math.IsNaN(f):
		out.WriteString(`"NaN"`)
	case math.IsInf(f, 1):
		out.WriteString(`"Infinity"`)
	case math.IsInf(f, -1):
		out.WriteString(`"-Infinity"`)
	case f == math.Trunc(f) && math.Abs(f) < 1<<53:
		out.WriteString(strconv.FormatFloat(f, 'f', -1, 64))
	default:
		out.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	}
}

// writeString writes s as a JSON string, without HTML escaping.
func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	out.Truncate(out.Len() - 1) // Encode's newline
}
