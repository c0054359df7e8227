// Package testdb hands each test a fresh, empty database on the store the
// suite runs on, so that one test body covers the "store matrix": run the
// suite once as is (SQLite) and once with LATCHKEY_TEST_STORE=postgres.
//
// On SQLite a test gets a file in its own t.TempDir. On PostgreSQL it gets
// its own schema in one shared database, named lk_<16 random hex digits>
// and reached through search_path in the DSN: parallel tests cannot see
// each other's tables, and a schema costs less than a database (measured on
// the local PostgreSQL 15: CREATE+DROP SCHEMA about 10 ms, CREATE+DROP
// DATABASE about 120 ms).
//
// Environment:
//
//	LATCHKEY_TEST_STORE     "sqlite" (the default) or "postgres"
//	LATCHKEY_TEST_POSTGRES  base URL, default postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//	LATCHKEY_E2E_REQUIRE    "1": fail, rather than skip, when PostgreSQL does not answer
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The environment variables the package reads.
const (
	EnvStore    = "LATCHKEY_TEST_STORE"
	EnvPostgres = "LATCHKEY_TEST_POSTGRES"
	EnvRequire  = "LATCHKEY_E2E_REQUIRE"
)

// DefaultPostgres is the base URL used when LATCHKEY_TEST_POSTGRES is unset:
// the local cluster's trust-authenticated superuser and its "test" database.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

const (
	// connectTimeout bounds the wait for PostgreSQL: a local server answers
	// in milliseconds, so two seconds means it is not there.
	connectTimeout = 2 * time.Second
	// dropLockTimeout bounds how long DROP SCHEMA waits for a lock. A test
	// that leaves a transaction open holds locks on its tables until its
	// connection goes; the drop then gives up (and is logged) instead of
	// hanging the suite.
	dropLockTimeout = 2 * time.Second
	// opTimeout bounds creating or dropping a schema, connecting included.
	opTimeout = 10 * time.Second
	// startHint is how to start the local cluster on this project's machines.
	startHint = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)

// Store returns the store the suite runs on, from LATCHKEY_TEST_STORE:
// "sqlite" when it is unset or empty, else "sqlite" or "postgres". Any other
// value panics, so that a typo cannot quietly run the suite on the wrong
// store.
func Store() string {
	switch s := os.Getenv(EnvStore); s {
	case "", "sqlite":
		return "sqlite"
	case "postgres":
		return "postgres"
	default:
		panic(fmt.Sprintf(`testdb: %s=%q: want "sqlite" (the default) or "postgres"`, EnvStore, s))
	}
}

// DSN returns a fresh, empty database for t on Store(): a path to a file
// not yet created in t's temporary directory for SQLite, or what Postgres
// returns. Either is removed when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	if Store() == "postgres" {
		return Postgres(t)
	}
	return filepath.Join(t.TempDir(), "test.db")
}

// Postgres creates an empty schema on the PostgreSQL at
// LATCHKEY_TEST_POSTGRES (default DefaultPostgres) and returns that base
// URL with search_path=<schema> added. pgx sends query parameters it does
// not know as run-time parameters at connect, so every connection opened
// with the DSN (pgx, pgx/stdlib, a pool) creates and finds its tables in
// the schema without any SET.
//
// The schema is dropped, CASCADE, when t ends. Cleanups run last-in
// first-out, so register the closing of your connections after calling
// Postgres; a connection left inside a transaction makes the drop give
// up after a short lock timeout, which is logged, not failed.
//
// When PostgreSQL does not answer within two seconds, t is skipped, or
// failed if LATCHKEY_E2E_REQUIRE=1.
func Postgres(t testing.TB) string {
	t.Helper()
	base, u := postgresBase(t)
	schema := "lk_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn := admin(t, ctx, base)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testdb: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { dropSchema(t, base, schema) })

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresDatabase is Postgres with a database of its own (lk_<hex>, its
// default schema public) instead of a schema: for tests about what is
// scoped to a database, such as NOTIFY. It is dropped at cleanup, even
// with connections still open.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	base, u := postgresBase(t)
	name := "lk_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn := admin(t, ctx, base)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		conn, err := connect(ctx, base)
		if err != nil {
			t.Logf("testdb: database %s left behind: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("testdb: database %s left behind: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// postgresBase is the base URL (LATCHKEY_TEST_POSTGRES or the default).
func postgresBase(t testing.TB) (string, *url.URL) {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		base = DefaultPostgres
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testdb: %s must be a postgres:// URL, got %q", EnvPostgres, redact(base))
	}
	return base, u
}

// admin connects to base, skipping t (or failing it under
// LATCHKEY_E2E_REQUIRE=1) when PostgreSQL does not answer.
func admin(t testing.TB, ctx context.Context, base string) *pgx.Conn {
	t.Helper()
	conn, err := connect(ctx, base)
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("testdb: PostgreSQL is required (%s=1) but not reachable at %s: %v\nstart it with: %s",
				EnvRequire, redact(base), err, startHint)
		}
		t.Skipf("testdb: skipping: PostgreSQL is not reachable at %s: %v", redact(base), err)
	}
	return conn
}

// SchemaOf returns the search_path parameter of dsn, the schema a DSN from
// Postgres points at, or "" when there is none (as for a SQLite path).
func SchemaOf(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return u.Query().Get("search_path")
}

// connect opens one administrative connection to base. Its lock_timeout
// keeps DROP SCHEMA from waiting on a lock a test never releases.
func connect(ctx context.Context, base string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = connectTimeout
	cfg.RuntimeParams["lock_timeout"] = fmt.Sprint(dropLockTimeout.Milliseconds())
	return pgx.ConnectConfig(ctx, cfg)
}

// dropSchema drops schema and all it holds. It runs at cleanup on a
// connection of its own (holding one open for the whole test would cost a
// connection slot per parallel test) and logs rather than fails: the test
// has already passed or failed on its own merits, and a leftover schema
// harms nothing but disk.
func dropSchema(t testing.TB, base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := connect(ctx, base)
	if err != nil {
		t.Logf("testdb: schema %s left behind: connect: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Logf("testdb: schema %s left behind (a connection still in a transaction?): %v", schema, err)
	}
}

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// redact returns the URL in s with its password and query removed (the query
// may hold password=...), for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}
