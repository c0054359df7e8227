package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres connects to PostgreSQL through pgx (database/sql), migrates
// under an advisory lock and starts the change feed. Reads and writes share
// one pool: PostgreSQL has many writers.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: say only what is wrong.
		return nil, fmt.Errorf("models: the PostgreSQL URL is not valid: %s", redactDSNError(err.Error(), dsn))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "latchkey"
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	pool := stdlib.OpenDB(*cfg)
	n := 4*runtime.GOMAXPROCS(0) + 4
	pool.SetMaxOpenConns(n)
	pool.SetMaxIdleConns(n)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	pool.SetConnMaxLifetime(30 * time.Minute)

	scope := cfg.RuntimeParams["search_path"]
	db := &DB{w: pool, r: pool, d: postgresDialect(scope)}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("models: cannot reach PostgreSQL at %s: %w", where, err)
	}
	if err := db.d.migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	fcfg := cfg.Copy()
	fcfg.RuntimeParams["application_name"] = "latchkey-feed"
	db.feed = newFeed(db, fcfg, scope)
	go db.feed.run()
	// Serve from the cache only once the feed listens; until then (and
	// whenever it is down) every request reads the database.
	db.feed.waitUp(ctx, cfg.ConnectTimeout)
	return db, nil
}

// RedactDSN is dsn fit for a log: a PostgreSQL URL without its password.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return dsn
}

// redactDSNError removes the password of dsn from msg.
func redactDSNError(msg, dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			userinfo := dsn[i+3 : at]
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
	}
	return msg
}

// feed is the change feed on PostgreSQL: a write that ends sessions or
// changes a user sends NOTIFY inside its transaction, and every replica
// LISTENs on a connection of its own and drops those entries from its auth
// cache. While the listening connection is down nothing says what other
// replicas changed, so the caches are emptied and bypassed until it is
// listening again.
type feed struct {
	db      *DB
	cfg     *pgx.ConnConfig
	channel string
	origin  string // this process, so it can tell its own notifications

	seq     atomic.Uint64
	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	isUp    atomic.Bool
	upCh    chan struct{} // closed once the feed first listens

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// Timing knobs, fixed at construction (tests shorten them).
	idle    time.Duration // how long to wait for a notification before pinging the connection
	echoMax time.Duration // how long a write waits for its own notification
}

func newFeed(db *DB, cfg *pgx.ConnConfig, scope string) *feed {
	var b [6]byte
	_, _ = rand.Read(b[:])
	h := fnv.New64a()
	io.WriteString(h, scope)
	ctx, cancel := context.WithCancel(context.Background())
	return &feed{
		db: db, cfg: cfg,
		channel: "latchkey_" + strconv.FormatUint(h.Sum64(), 36),
		origin:  hex.EncodeToString(b[:]),
		waiting: map[uint64]chan struct{}{},
		upCh:    make(chan struct{}),
		ctx:     ctx, cancel: cancel, done: make(chan struct{}),
		idle: 10 * time.Second, echoMax: 2 * time.Second,
	}
}

func (f *feed) up() bool { return f.isUp.Load() }

// FeedUp reports whether this process hears other replicas' changes: always
// true on SQLite (one process per file), and on PostgreSQL while the
// LISTEN connection is up.
func (db *DB) FeedUp() bool { return db.feed == nil || db.feed.up() }

func (f *feed) waitUp(ctx context.Context, max time.Duration) {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-f.upCh:
	case <-t.C:
	case <-ctx.Done():
	}
}

func (f *feed) close() {
	f.cancel()
	<-f.done
}

// run keeps a LISTEN connection open, reconnecting with backoff.
func (f *feed) run() {
	defer close(f.done)
	first := true
	backoff := 50 * time.Millisecond
	for f.ctx.Err() == nil {
		conn, err := f.listen()
		if err != nil {
			if !sleepCtx(f.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		f.isUp.Store(true)
		f.db.setBypass(false)
		if first {
			close(f.upCh)
			first = false
		}
		f.receive(conn)
		f.isUp.Store(false)
		f.db.setBypass(true)
		f.release()
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
	}
}

func (f *feed) listen() (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.ConnectTimeout+time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, f.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{f.channel}.Sanitize()); err != nil {
		_ = conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// receive handles notifications until the connection fails or the feed
// closes. A quiet connection is pinged now and then, so a cut that sends
// no reset is noticed too.
func (f *feed) receive(conn *pgx.Conn) {
	for f.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(f.ctx, f.idle)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		if err == nil {
			f.handle(n.Payload)
			continue
		}
		if f.ctx.Err() != nil || !pgconnTimeout(err) {
			return
		}
		pctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return
		}
	}
}

func pgconnTimeout(err error) bool {
	return strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "deadline")
}

// A payload is "origin seq kind value": kind t with a token digest in hex,
// or u with a user id.
func (f *feed) handle(payload string) {
	parts := strings.Fields(payload)
	if len(parts) != 4 {
		return
	}
	var c change
	switch parts[2] {
	case "t":
		b, err := hex.DecodeString(parts[3])
		if err != nil || len(b) != 32 {
			return
		}
		copy(c.token[:], b)
		c.isToken = true
	case "u":
		id, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil {
			return
		}
		c.user = id
	default:
		return
	}
	f.db.apply([]change{c})
	if parts[0] == f.origin {
		if seq, err := strconv.ParseUint(parts[1], 10, 64); err == nil {
			f.mu.Lock()
			if ch, ok := f.waiting[seq]; ok {
				close(ch)
				delete(f.waiting, seq)
			}
			f.mu.Unlock()
		}
	}
}

// publish sends the changes inside tx and returns a channel closed when the
// last of them came back through this process's own LISTEN connection
// (nil when the feed is down: nothing to wait for).
func (f *feed) publish(ctx context.Context, tx *Tx, cs []change) (*echo, error) {
	var last uint64
	for _, c := range cs {
		last = f.seq.Add(1)
		p := f.origin + " " + strconv.FormatUint(last, 10) + " "
		if c.isToken {
			p += "t " + hex.EncodeToString(c.token[:])
		} else {
			p += "u " + strconv.FormatInt(c.user, 10)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify(?, ?)`, f.channel, p); err != nil {
			return nil, err
		}
	}
	if !f.up() {
		return nil, nil
	}
	e := &echo{seq: last, ch: make(chan struct{})}
	f.mu.Lock()
	f.waiting[last] = e.ch
	f.mu.Unlock()
	return e, nil
}

// echo is a published change this process waits to hear back.
type echo struct {
	seq uint64
	ch  chan struct{}
}

// await waits, a bounded time, for a published change to come back. When
// it came back here, PostgreSQL has signalled every listening replica.
func (f *feed) await(ctx context.Context, e *echo) {
	t := time.NewTimer(f.echoMax)
	defer t.Stop()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, e.seq)
		f.mu.Unlock()
	}()
	select {
	case <-e.ch:
	case <-t.C:
	case <-ctx.Done():
	case <-f.ctx.Done():
	}
}

// release frees every writer waiting for an echo (the feed went down).
func (f *feed) release() {
	f.mu.Lock()
	for seq, ch := range f.waiting {
		close(ch)
		delete(f.waiting, seq)
	}
	f.mu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
