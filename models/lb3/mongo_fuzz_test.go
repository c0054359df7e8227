package lb3

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// FuzzReadExport: whatever the bytes, reading them as a mongoexport file
// returns documents or an error and never panics; every document comes
// back as plain JSON on a line of the input, lines never go back, and
// turning it into an importer record does not panic either. Seeds in
// testdata/fuzz/FuzzReadExport.
func FuzzReadExport(f *testing.F) {
	f.Add([]byte(`{"_id":{"$oid":"5fc1f2ae9b1e8a3d4c5b6a70"},"email":"a@b.c","n":{"$numberLong":"7"}}` + "\n"))
	f.Add([]byte(`[{"_id":"t","created":{"$date":{"$numberLong":"1606546302918"}},"userId":{"$oid":"5fc1f2ae9b1e8a3d4c5b6a70"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids := &mongoIDs{byHex: map[string]int64{"5fc1f2ae9b1e8a3d4c5b6a70": 1}}
		lines := bytes.Count(data, []byte("\n")) + 1
		last := 0
		_ = readExport(context.Background(), bufio.NewReaderSize(bytes.NewReader(data), 16), func(line int, doc models.Fields) error {
			if line < last || line < 1 || line > lines {
				t.Fatalf("a document at line %d after line %d, of %d lines", line, last, lines)
			}
			last = line
			b, err := json.Marshal(doc)
			if err != nil || !json.Valid(b) {
				t.Fatalf("a document that is not plain JSON: %s, %v", b, err)
			}
			for _, model := range []string{"user", "AccessToken"} {
				if rec, _, err := ids.record(model, doc); err == nil {
					if _, ok := rec.Get("_id"); ok {
						t.Fatalf("_id kept: %s", b)
					}
				}
			}
			return nil
		})
	})
}
