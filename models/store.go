package models

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the SQLite store: one writer connection (SQLite has a single writer;
// serialising writes in Go avoids SQLITE_BUSY storms) and a pool of readers.
// WAL lets the readers run while the writer writes.
type DB struct {
	path string
	w    *sql.DB // exactly one connection; every write goes through it
	r    *sql.DB // read-only pool
}

// Tx is a write transaction. Model methods that must change several tables
// atomically (a reset token and the email that carries it) share one.
type Tx struct {
	tx  *sql.Tx
	now time.Time
}

// Exec runs a statement inside the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryRow runs a query inside the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, query, args...)
}

// Now is the time the transaction started, from the injected clock.
func (t *Tx) Now() time.Time { return t.now }

// Open opens (creating if needed) the database file at path, applies the
// pragmas and the embedded migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("models: empty database path")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("models: create database folder: %w", err)
		}
	}
	pragmas := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		pragmas.Add("_pragma", p)
	}
	wdsn := "file:" + path + "?" + pragmas.Encode() + "&_txlock=immediate"
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("models: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	db := &DB{path: path, w: w}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}

	// Each reader keeps its own page cache (SQLite's default is 2 MiB a
	// connection). Readers look single rows up by key, and the hot upper
	// levels of the indexes fit in 512 KiB; the rest comes from the OS page
	// cache, which is not the process's RSS. With a million users this keeps
	// the pool's RSS 6 MiB lower (BENCHMARKS.md).
	rp := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "foreign_keys(1)", "query_only(1)", "cache_size(-512)"} {
		rp.Add("_pragma", p)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+rp.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("models: open readers %s: %w", path, err)
	}
	n := max(2, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	db.r = r
	if err := r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("models: ping %s: %w", path, err)
	}
	return db, nil
}

// Close checkpoints the WAL and closes every connection.
func (db *DB) Close() error {
	var errs []error
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		// A clean shutdown folds the WAL back into the main file.
		_, _ = db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers a read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict ("ok" when sound).
func (db *DB) IntegrityCheck(ctx context.Context) (string, error) {
	var res string
	err := db.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res)
	return res, err
}

// Write runs fn in one immediate write transaction on the writer connection,
// committing when fn returns nil.
func (db *DB) Write(ctx context.Context, now time.Time, fn func(*Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("models: begin: %w", err)
	}
	if err := fn(&Tx{tx: tx, now: now}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("models: commit: %w", err)
	}
	return nil
}

// Reader is the read pool, for queries that change nothing.
func (db *DB) Reader() *sql.DB { return db.r }

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("models: migrations table: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return err
		}
		err = db.Write(ctx, time.Now(), func(tx *Tx) error {
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations(version, applied) VALUES (?, ?)", version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("models: migration %s: %w", version, err)
		}
	}
	return nil
}

// isUnique reports whether err is a UNIQUE constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
