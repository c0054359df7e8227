package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

func TestStore(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "sqlite"},
		{"sqlite", "sqlite"},
		{"postgres", "postgres"},
	} {
		t.Setenv(EnvStore, tc.env)
		if got := Store(); got != tc.want {
			t.Errorf("%s=%q: Store() = %q, want %q", EnvStore, tc.env, got, tc.want)
		}
	}

	t.Setenv(EnvStore, "mysql")
	defer func() {
		msg := fmt.Sprint(recover())
		if !strings.Contains(msg, `"mysql"`) || !strings.Contains(msg, EnvStore) {
			t.Errorf("Store() with %s=mysql: panic %q, want one naming the variable and its value", EnvStore, msg)
		}
	}()
	Store()
}

func TestDSNSQLite(t *testing.T) {
	t.Setenv(EnvStore, "")
	dsn := DSN(t)
	if filepath.Base(dsn) != "test.db" {
		t.Fatalf("DSN() = %q, want a file named test.db", dsn)
	}
	entries, err := os.ReadDir(filepath.Dir(dsn))
	if err != nil || len(entries) != 0 {
		t.Fatalf("DSN() = %q: its directory should exist and be empty: %v, %d entries", dsn, err, len(entries))
	}
	if !strings.HasPrefix(dsn, os.TempDir()) {
		t.Fatalf("DSN() = %q, want a path under %s", dsn, os.TempDir())
	}
	if s := SchemaOf(dsn); s != "" {
		t.Fatalf("SchemaOf(%q) = %q, want \"\"", dsn, s)
	}
}

func TestDSNPostgres(t *testing.T) {
	t.Setenv(EnvStore, "postgres")
	dsn := DSN(t)
	if s := SchemaOf(dsn); !strings.HasPrefix(s, "lk_") || len(s) != len("lk_")+16 {
		t.Fatalf("DSN() = %q: schema %q, want lk_ and 16 hex digits", dsn, s)
	}
}

// open opens dsn through database/sql and pgx/stdlib, as the store will.
func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// hasTable reports whether the table name is visible on db's search_path.
func hasTable(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var found bool
	if err := db.QueryRow("SELECT to_regclass($1) IS NOT NULL", name).Scan(&found); err != nil {
		t.Fatal(err)
	}
	return found
}

// schemaExists reports whether schema exists in the database db is on.
func schemaExists(t *testing.T, db *sql.DB, schema string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestPostgresSearchPath(t *testing.T) {
	t.Parallel()
	dsn := Postgres(t)
	schema := SchemaOf(dsn)
	db := open(t, dsn)
	db.SetMaxOpenConns(3)
	// Hold three connections at once, so that each is a separate session
	// that got search_path at connect rather than one reused session.
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var path, current string
		if err := c.QueryRowContext(ctx, "SELECT current_setting('search_path'), current_schema()").Scan(&path, &current); err != nil {
			t.Fatal(err)
		}
		if path != schema || current != schema {
			t.Fatalf("connection %d: search_path %q, current_schema() %q, want %q", i, path, current, schema)
		}
	}
}

func TestPostgresIsolated(t *testing.T) {
	t.Parallel()
	a, b := open(t, Postgres(t)), open(t, Postgres(t))
	if _, err := a.Exec("CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if !hasTable(t, a, "users") {
		t.Fatal("users is missing from the schema it was created in")
	}
	if hasTable(t, b, "users") {
		t.Fatal("users, created in one test schema, is visible from another")
	}
	// The same name again in b: no clash.
	if _, err := b.Exec("CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresCleanup(t *testing.T) {
	t.Parallel()
	admin := open(t, Postgres(t))

	var schema string
	t.Run("owner", func(t *testing.T) {
		dsn := Postgres(t)
		schema = SchemaOf(dsn)
		db := open(t, dsn) // closed before the drop: cleanups run last-in first-out
		if _, err := db.Exec("CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		if !schemaExists(t, admin, schema) {
			t.Fatalf("schema %s does not exist while its test runs", schema)
		}
	})
	if schemaExists(t, admin, schema) {
		t.Fatalf("schema %s still exists after its test ended", schema)
	}
}

// TestPostgresCleanupLocked shows that a test that ends with a transaction
// open on its tables does not hang the suite: the drop gives up on the
// lock, and is logged, not failed.
func TestPostgresCleanupLocked(t *testing.T) {
	t.Parallel()
	admin := open(t, Postgres(t))

	// db and tx outlive the subtest, as they would in a test that forgot
	// to close them; this test closes them once the drop has been tried.
	var (
		schema string
		db     *sql.DB
		tx     *sql.Tx
	)
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	t.Run("owner", func(t *testing.T) {
		dsn := Postgres(t)
		schema = SchemaOf(dsn)
		var err error
		if db, err = sql.Open("pgx", dsn); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE users (id bigint PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
		if tx, err = db.Begin(); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("SELECT count(*) FROM users"); err != nil {
			t.Fatal(err)
		}
	})
	if tx == nil {
		t.Fatal("the subtest did not open its transaction")
	}
	if !schemaExists(t, admin, schema) {
		t.Fatalf("schema %s dropped despite the open transaction", schema)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
		t.Fatal(err)
	}
}

// recorder is a testing.TB that records Skipf and Fatalf instead of acting
// on the test; both end the calling goroutine, as the real ones do.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// postgresDown runs Postgres against a port nothing listens on, with a
// password in the URL that must not show in any message.
func postgresDown(t *testing.T) (r *recorder, addr string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	t.Setenv(EnvPostgres, "postgres://postgres:hunter2@"+addr+"/test?sslmode=disable&password=hunter3")

	r = &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Postgres(r)
		t.Error("Postgres returned with PostgreSQL down")
	}()
	<-done
	for _, msg := range []string{r.skipped, r.fatal} {
		if strings.Contains(msg, "hunter") {
			t.Errorf("message shows the password: %s", msg)
		}
	}
	return r, addr
}

func TestPostgresDownSkips(t *testing.T) {
	t.Setenv(EnvRequire, "")
	r, addr := postgresDown(t)
	if r.fatal != "" || !strings.Contains(r.skipped, "not reachable at postgres://postgres@"+addr+"/test") {
		t.Fatalf("skipped %q, failed %q: want a skip naming the address", r.skipped, r.fatal)
	}
}

func TestPostgresDownRequired(t *testing.T) {
	t.Setenv(EnvRequire, "1")
	r, addr := postgresDown(t)
	if r.skipped != "" || !strings.Contains(r.fatal, "required") || !strings.Contains(r.fatal, addr) ||
		!strings.Contains(r.fatal, "pg_ctlcluster --skip-systemctl-redirect") {
		t.Fatalf("skipped %q, failed %q: want a failure saying PostgreSQL is required and how to start it", r.skipped, r.fatal)
	}
}
