package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// dialect is the little that differs between the stores. The SQL in this
// package is written once, with ? placeholders, in the common subset of
// SQLite and PostgreSQL (integers for times and flags, ON CONFLICT,
// RETURNING, FILTER); what cannot be said the same way is here.
type dialect struct {
	name  string // "sqlite" or "postgres"
	goose goose.Dialect
	// scope makes lock ids and the feed's channel unique to one schema,
	// so tests (and tenants) sharing a PostgreSQL database stay apart.
	scope string

	// skipLocked ends a SELECT that claims rows: on PostgreSQL, rows another
	// replica is claiming are passed over instead of waited for.
	skipLocked string

	numbered bool     // $1, $2… instead of ?
	queries  sync.Map // ? query → numbered query
}

func sqliteDialect() *dialect { return &dialect{name: "sqlite", goose: goose.DialectSQLite3} }

func postgresDialect(scope string) *dialect {
	return &dialect{name: "postgres", goose: goose.DialectPostgres, scope: scope,
		skipLocked: " FOR UPDATE SKIP LOCKED", numbered: true}
}

// rebind turns ? placeholders into $n where the dialect wants them. Our
// queries are constants, so each is rewritten once and remembered.
func (d *dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	if v, ok := d.queries.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	d.queries.Store(q, out)
	return out
}

// migrations are the dialect's goose files.
func (d *dialect) migrations() (fs.FS, error) {
	return fs.Sub(migrationFS, "migrations/"+d.name)
}

// lockID is the advisory lock number of a named lock in this scope.
func (d *dialect) lockID(name string) int64 {
	h := fnv.New64a()
	io.WriteString(h, "latchkey\x00"+d.scope+"\x00"+name)
	return int64(h.Sum64())
}

// migrate brings the schema up to date with goose. On PostgreSQL the run
// holds an advisory lock, so replicas starting together migrate once: the
// first applies the files, the others wait and find nothing to do.
func (d *dialect) migrate(ctx context.Context, db *sql.DB) error {
	sub, err := d.migrations()
	if err != nil {
		return err
	}
	var opts []goose.ProviderOption
	if d.name == "postgres" {
		opts = append(opts, goose.WithSessionLocker(blockingLocker{id: d.lockID("migrate")}))
	}
	p, err := goose.NewProvider(d.goose, db, sub, opts...)
	if err != nil {
		return fmt.Errorf("models: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("models: migrate: %w", err)
	}
	return nil
}

// blockingLocker is goose's session lock as a blocking pg_advisory_lock:
// goose's own locker polls every few seconds, which would hold a replica
// that starts beside another for that long.
type blockingLocker struct{ id int64 }

var _ lock.SessionLocker = blockingLocker{}

func (l blockingLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.id)
	return err
}

func (l blockingLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", l.id)
	return err
}

// isUnique reports whether err is a UNIQUE (or primary key) violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// IsUnavailable reports whether err says the database could not be reached
// or went away mid-request (PostgreSQL down, restarted, a network cut), as
// opposed to a fault of the request or a bug: the answer is then 503 with
// Retry-After, and the same request may work in a moment.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		ce *pgconn.ConnectError
		pe *pgconn.PgError
		ne net.Error
	)
	switch {
	case errors.As(err, &ce), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne), pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return true
	case errors.As(err, &pe):
		// 08: connection exception; 57P01-03: the server is shutting down
		// or starting; 53300: too many connections; 40P01 and 40001: a
		// deadlock or serialisation failure between concurrent requests,
		// which the same request would pass when tried again.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300" ||
			pe.Code == "40P01" || pe.Code == "40001"
	}
	// pgx reports a connection it closed after a failure as "conn closed".
	// database/sql's own "sql: database is closed" (shutting down).
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "conn busy") ||
		strings.Contains(msg, "failed to connect") || strings.Contains(msg, "sql: database is closed")
}
