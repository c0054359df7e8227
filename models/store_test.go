package models_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestStoreKind: the DSN's scheme picks the store; anything else is refused
// with a message that says what is accepted and never echoes a password.
func TestStoreKind(t *testing.T) {
	for dsn, want := range map[string]string{
		"./data/latchkey.db": "sqlite", "/var/lib/lk.db": "sqlite", "file:/tmp/x.db": "sqlite", ":memory:": "sqlite",
		"postgres://u@h/db": "postgres", "postgresql://u:p@h:5432/db?sslmode=require": "postgres",
	} {
		if got, err := models.StoreKind(dsn); err != nil || got != want {
			t.Errorf("StoreKind(%q) = %q, %v; want %q", dsn, got, err, want)
		}
	}
	for _, dsn := range []string{"", "mysql://root:s3cret@h/db", "mongodb://h", "file:/tmp/x.db?mode=ro"} {
		if _, err := models.StoreKind(dsn); err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("StoreKind(%q) = %v, want a refusal without the password", dsn, err)
		}
	}
}

// TestRedactDSN: the password goes, wherever the URL holds it.
func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"./data/latchkey.db":                       "./data/latchkey.db",
		"postgres://u:hunter2@h:5432/db":           "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db?password=hunter2&x=1":   "postgres://u@h/db?password=xxxxx&x=1",
		"postgres://u:hunter2@h/db?password=other": "postgres://u:xxxxx@h/db?password=xxxxx",
		"postgres://u@h/db":                        "postgres://u@h/db",
		"postgres://u:hunt%er2@h/db":               "(a URL that does not parse)",
	} {
		if got := models.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
