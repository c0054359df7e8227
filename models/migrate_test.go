package models_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestUpgradeLegacySQLiteFile opens a database file made by the code before
// goose (commit a863d3b, testdata/legacy-a863d3b.json says how) and checks it
// upgrades in place: the user logs in, the session token issued then still
// works, pending mail is still pending, and goose now owns the versions.
func TestUpgradeLegacySQLiteFile(t *testing.T) {
	t.Parallel()
	var fx struct {
		Email, Password, Token string
		UserID                 int64 `json:"userId"`
	}
	b, err := os.ReadFile("testdata/legacy-a863d3b.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "legacy.db")
	copyFile(t, "testdata/legacy-a863d3b.db", path)

	ctx := context.Background()
	for round := range 2 { // the second open finds nothing to migrate
		db, err := models.Open(ctx, path)
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		u := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, models.Config{Password: models.Policy{MinLength: 8}})
		sess, err := u.Authenticate(ctx, fx.Token, models.ScopeSession)
		if err != nil || sess == nil || sess.User.ID != fx.UserID {
			t.Fatalf("round %d: the old session token: %+v, %v", round, sess, err)
		}
		if _, _, err := u.Login(ctx, models.Credentials{Username: "legacy", Password: fx.Password}, models.ClientMeta{}); err != nil {
			t.Fatalf("round %d: login: %v", round, err)
		}
		st, err := models.NewOutbox(db, models.OutboxConfig{}).Stats(ctx)
		if err != nil || st.Pending != 1 {
			t.Fatalf("round %d: outbox %+v, %v; want the pending mail kept", round, st, err)
		}
		var version int64
		if err := db.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&version); err != nil || version < 3 {
			t.Fatalf("round %d: goose version %d, %v", round, version, err)
		}
		var legacy int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'`).Scan(&legacy); err != nil || legacy != 0 {
			t.Fatalf("round %d: schema_migrations still there (%d, %v)", round, legacy, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
