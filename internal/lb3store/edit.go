package lb3store

import (
	"encoding/json"
	"os"
	"testing"
)

// MemoryFile is a LoopBack memory-connector file opened for editing, so a
// test can make the changes LoopBack itself would leave (a logout deletes
// a token's record, a password change rewrites the user's hash, a sign-up
// adds a record and bumps the model's id counter).
type MemoryFile struct {
	// IDs is the next id of each model.
	IDs map[string]int64
	// Records are the decoded records, by model and then by key (the
	// record's id as text).
	Records map[string]map[string]map[string]any
}

// EditMemoryFile reads the memory file at path, lets edit change it, and
// writes it back in LoopBack's format (records as JSON strings).
func EditMemoryFile(t testing.TB, path string, edit func(*MemoryFile)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		IDs    map[string]int64             `json:"ids"`
		Models map[string]map[string]string `json:"models"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("lb3store: %s: %v", path, err)
	}
	m := &MemoryFile{IDs: file.IDs, Records: map[string]map[string]map[string]any{}}
	for model, rows := range file.Models {
		m.Records[model] = map[string]map[string]any{}
		for key, s := range rows {
			var rec map[string]any
			if err := json.Unmarshal([]byte(s), &rec); err != nil {
				t.Fatalf("lb3store: %s: %s %s: %v", path, model, key, err)
			}
			m.Records[model][key] = rec
		}
	}
	edit(m)
	for model, rows := range m.Records {
		file.Models[model] = map[string]string{}
		for key, rec := range rows {
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			file.Models[model][key] = string(b)
		}
	}
	if b, err = json.MarshalIndent(file, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
