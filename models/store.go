package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// DB is the store: SQLite (one file, the embedded default) or PostgreSQL
// (any number of replicas on one database), told apart by the DSN given to
// Open. Its wrappers (QueryRow, Query, Write and Tx's methods) are the only
// way to the connection pools: they rewrite placeholders for the dialect and
// carry the change feed that keeps every replica's auth cache honest.
type DB struct {
	w *sql.DB // SQLite: exactly one connection, every write goes through it; PostgreSQL: the pool
	r *sql.DB // SQLite: the read-only pool; PostgreSQL: the same pool as w
	d *dialect

	path string // SQLite: the file; PostgreSQL: ""
	feed *feed  // PostgreSQL: LISTEN/NOTIFY; nil on SQLite
	// SQLite: stops the watch for other processes' writes (sqlite.go),
	// started by the first cache that watches; nil until then.
	stopOthers func()

	mu       sync.Mutex
	watchers []cacheWatcher
}

// Tx is a write transaction. Model methods that must change several tables
// atomically (a reset token and the email that carries it) share one.
type Tx struct {
	tx      *sql.Tx
	db      *DB
	now     time.Time
	changes []change
	after   []func()
	stmts   map[string]*sql.Stmt // the import API's prepared INSERTs (Tx.prepare), closed with tx
}

// Open opens the store named by dsn, creating and migrating it as needed:
//   - a path, or file:path → SQLite (the file and its folder are created);
//   - postgres:// or postgresql:// → PostgreSQL through pgx;
//   - any other scheme → an error that says what is accepted.
func Open(ctx context.Context, dsn string) (*DB, error) {
	kind, err := StoreKind(dsn)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, strings.TrimPrefix(dsn, "file:"))
}

// StoreKind tells "sqlite" from "postgres" by the DSN's scheme, and refuses
// any other scheme.
func StoreKind(dsn string) (string, error) {
	switch {
	case dsn == "":
		return "", errors.New("models: empty database name: give a file path or a postgres:// URL")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", nil
	case strings.HasPrefix(dsn, "file:"):
		if strings.Contains(dsn, "?") {
			return "", fmt.Errorf("models: %q: a SQLite file takes no parameters (the store sets its own)", dsn)
		}
		return "sqlite", nil
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.ContainsAny(scheme, `/\.`) {
		return "", fmt.Errorf("models: unsupported database scheme %q: use a file path, file:PATH, postgres:// or postgresql://", scheme+"://")
	}
	return "sqlite", nil
}

// Dialect names the store: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.name }

// Path is the SQLite database file ("" on PostgreSQL).
func (db *DB) Path() string { return db.path }

// Close stops the change feed and closes every connection (on SQLite it
// checkpoints the WAL first, so a clean shutdown leaves one file).
func (db *DB) Close() error {
	var errs []error
	if db.feed != nil {
		db.feed.close()
	}
	db.mu.Lock()
	stop := db.stopOthers
	db.mu.Unlock()
	if stop != nil {
		stop()
	}
	if db.r != nil && db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		if db.d.name == "sqlite" {
			_, _ = db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		}
		errs = append(errs, db.w.Close())
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers a read.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// QueryRow runs a query that changes nothing on the read pool.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return db.r.QueryRowContext(ctx, db.d.rebind(query), args...)
}

// Query runs a query that changes nothing on the read pool.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.r.QueryContext(ctx, db.d.rebind(query), args...)
}

// Write runs fn in one write transaction, committing when fn returns nil.
// On SQLite it is an immediate transaction on the single writer. Cache
// invalidations fn recorded (Tx.dropToken, Tx.dropUser) reach this
// process's caches when it returns, and every other replica's through the
// change feed; on PostgreSQL Write returns only once every other replica
// listening has acknowledged them (at most 1 s: see feed.await), so a
// client told "logged out" finds the token dead on any replica it asks next.
func (db *DB) Write(ctx context.Context, now time.Time, fn func(*Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("models: begin: %w", err)
	}
	t := &Tx{tx: tx, db: db, now: now}
	var wait *echo
	err = fn(t)
	if err == nil && len(t.changes) > 0 && db.feed != nil {
		wait, err = db.feed.publish(ctx, t, t.changes)
	}
	if err != nil {
		_ = tx.Rollback()
		db.apply(t.changes) // conservative: forget what fn meant to change
		if wait != nil {
			db.feed.forget(wait)
		}
		return err
	}
	err = tx.Commit()
	db.apply(t.changes)
	if err != nil {
		if wait != nil {
			db.feed.forget(wait)
		}
		return fmt.Errorf("models: commit: %w", err)
	}
	for _, fn := range t.after {
		fn()
	}
	if wait != nil {
		db.feed.await(ctx, wait)
	}
	return nil
}

// AfterCommit runs fn once the transaction has committed (never when it
// rolls back): waking a worker for a row it could not see before.
func (t *Tx) AfterCommit(fn func()) { t.after = append(t.after, fn) }

// Exec runs a statement inside the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.d.rebind(query), args...)
}

// QueryRow runs a query inside the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.d.rebind(query), args...)
}

// Query runs a query inside the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.d.rebind(query), args...)
}

// Now is the time the transaction started, from the injected clock.
func (t *Tx) Now() time.Time { return t.now }

// dropToken records that a token changed or went: every replica's cache
// forgets it once the transaction is over.
func (t *Tx) dropToken(d [32]byte) { t.changes = append(t.changes, change{token: d, isToken: true}) }

// dropUser records that a user (and so every token of theirs) changed.
func (t *Tx) dropUser(id int64) { t.changes = append(t.changes, change{user: id}) }

// tryLock takes a lock named name for the rest of the transaction, across
// every replica, and reports false when another holds it (PostgreSQL's
// transaction-scoped advisory lock). SQLite has one writer, so it is
// always true there.
func (t *Tx) tryLock(ctx context.Context, name string) (bool, error) {
	if t.db.d.name == "sqlite" {
		return true, nil
	}
	var ok bool
	err := t.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(?)`, t.db.d.lockID(name)).Scan(&ok)
	return ok, err
}

// lock waits for the lock named name and holds it for the rest of the
// transaction: read-modify-write sequences on one row (a throttle bucket)
// then run one after another on every replica, as they do on SQLite's
// single writer.
func (t *Tx) lock(ctx context.Context, name string) error {
	if t.db.d.name == "sqlite" {
		return nil
	}
	_, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock(?)`, t.db.d.lockID(name))
	return err
}

// change is one cache invalidation: a token, or a user and all their tokens.
type change struct {
	token   [32]byte
	isToken bool
	user    int64
}

// cacheWatcher is what the feed drives: the auth cache.
type cacheWatcher interface {
	dropToken(d [32]byte)
	dropUser(id int64)
	// bypass(true) empties the cache and stops it answering until
	// bypass(false): the feed is down, so nothing it holds can be trusted.
	bypass(on bool)
}

// watch registers a cache to be told of every change, local or from
// another replica.
func (db *DB) watch(w cacheWatcher) {
	if w == nil {
		return
	}
	db.mu.Lock()
	db.watchers = append(db.watchers, w)
	if db.d.name == "sqlite" && db.stopOthers == nil {
		db.stopOthers = db.watchOtherProcesses(dataVersionEvery)
	}
	db.mu.Unlock()
	if db.feed != nil && !db.feed.up() {
		w.bypass(true)
	}
}

// apply passes changes to the caches of this process.
func (db *DB) apply(cs []change) {
	if len(cs) == 0 {
		return
	}
	db.mu.Lock()
	ws := db.watchers
	db.mu.Unlock()
	for _, w := range ws {
		for _, c := range cs {
			if c.isToken {
				w.dropToken(c.token)
			} else {
				w.dropUser(c.user)
			}
		}
	}
}

// setBypass tells every cache the feed went down (true) or is back (false).
func (db *DB) setBypass(on bool) {
	db.mu.Lock()
	ws := db.watchers
	db.mu.Unlock()
	for _, w := range ws {
		w.bypass(on)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
