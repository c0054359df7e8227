package models

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// openSQLite opens (creating if needed) the database file at path: one
// writer connection (SQLite has a single writer; serialising writes in Go
// avoids SQLITE_BUSY storms) and a pool of readers, with WAL so the readers
// run while the writer writes.
func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("models: create database folder: %w", err)
		}
	}
	pragmas := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(5000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		pragmas.Add("_pragma", p)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("models: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	db := &DB{path: path, w: w, d: sqliteDialect()}
	if err := db.d.migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	// One process owns a SQLite file, so a claim on a message that is still
	// there was made by a process that died mid-send: hand it back now
	// rather than when its lease runs out (at least once, never late).
	if _, err := w.ExecContext(ctx, `UPDATE outbox SET claimed_until = NULL WHERE claimed_until IS NOT NULL`); err != nil {
		w.Close()
		return nil, fmt.Errorf("models: release outbox claims: %w", err)
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
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("models: ping %s: %w", path, err)
	}
	return db, nil
}

// dataVersionEvery is how often a SQLite store with an auth cache looks
// for commits made by another process, so a change by latchkey user …
// (disable, delete, revoke) beside a running server fails its sessions
// there within this time (SECURITY A2 asks for 1 s). One PRAGMA on an idle
// connection costs a few microseconds.
const dataVersionEvery = 250 * time.Millisecond

// watchOtherProcesses is SQLite's change feed, for processes beside the
// server on the same file (the CLI, an import, a sqlite3 shell): every
// interval it reads PRAGMA data_version on the writer connection, and
// when the number moved, empties every cache of this process. The number
// moves only when another connection committed, and this process writes
// through that connection alone (the readers are query_only), so its own
// writes, which drop exactly what they change, never empty the cache.
// What another process changed is not known, so everything goes; such
// writes are rare. A load that raced the drop is not stored (the cache's
// generation). It returns the function that stops the watch.
//
// The first reading is taken before it returns, while the cache is still
// empty, so no commit of another process is missed.
func (db *DB) watchOtherProcesses(every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	read := func() (int64, bool) {
		var v int64
		err := db.w.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
		return v, err == nil
	}
	last, ok := read()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			v, got := read()
			if !got {
				// Unreadable (closing, or the file went): trust nothing
				// until a reading succeeds again.
				ok = false
				db.dropAll()
				continue
			}
			if !ok || v != last {
				db.dropAll()
			}
			last, ok = v, true
		}
	}()
	return func() { cancel(); <-done }
}

// dropAll empties every cache of this process.
func (db *DB) dropAll() {
	db.setBypass(true)
	db.setBypass(false)
}
