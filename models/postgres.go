package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// tcpUserTimeout bounds how long data sent to PostgreSQL may go
// unacknowledged before the connection is given up.
const tcpUserTimeout = 10 * time.Second

// openPostgres connects to PostgreSQL through pgx (database/sql), migrates
// under an advisory lock and starts the change feed. Reads and writes share
// one pool: PostgreSQL has many writers.
func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	return openPostgresFeedAt(ctx, dsn, "")
}

// openPostgresFeedAt is openPostgres with the change feed's connection sent
// to feedAddr (host:port) when it is not "": tests put a proxy there to
// cut the feed alone.
func openPostgresFeedAt(ctx context.Context, dsn, feedAddr string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included: say only what is wrong.
		return nil, fmt.Errorf("models: the PostgreSQL URL is not valid: %s", redactDSNError(err.Error(), dsn))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	// Find a dead peer in seconds, also on an idle connection (keepalives)
	// and on one waiting for an answer (TCP_USER_TIMEOUT, on Linux).
	cfg.DialFunc = (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 5 * time.Second, Control: dialControl}).DialContext
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

	// The scope of locks and of the change feed is the database and schema
	// as the server names them, however the DSN spelt them (search_path=,
	// options=-c search_path=…, the role's default), so every replica of a
	// deployment agrees and two deployments on one server stay apart.
	var dbName, schema string
	if err := pool.QueryRowContext(ctx, `SELECT current_database(), coalesce(current_schema(), '')`).Scan(&dbName, &schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("models: cannot reach PostgreSQL at %s: %w", where, err)
	}
	scope := dbName + "/" + schema
	db := &DB{w: pool, r: pool, d: postgresDialect(scope)}
	if err := db.d.migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	fcfg := cfg.Copy()
	if feedAddr != "" {
		host, port, err := net.SplitHostPort(feedAddr)
		if err != nil {
			pool.Close()
			return nil, err
		}
		p, _ := strconv.ParseUint(port, 10, 16)
		fcfg.Host, fcfg.Port, fcfg.Fallbacks = host, uint16(p), nil
	}
	db.feed = newFeed(db, fcfg, scope)
	go db.feed.run()
	// Serve from the cache only once the feed listens; until then (and
	// whenever it is down) every request reads the database.
	db.feed.waitUp(ctx, cfg.ConnectTimeout)
	return db, nil
}

// RedactDSN is dsn fit for a log or a terminal: a database URL without its
// password, whether in user:password@ or in a password= parameter; a file
// path as it is.
func RedactDSN(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
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

// feed is the change feed on PostgreSQL. A write that ends sessions or
// changes a user sends NOTIFY inside its transaction; every replica LISTENs
// on a connection of its own, drops those entries from its auth cache and
// acknowledges to the writer. The writer answers its client only once every
// replica whose feed is connected has acknowledged (or a bound has passed):
// so "logged out" means the token fails on whichever replica is asked next.
//
// While a replica's listening connection is down it cannot hear the others'
// changes, so its cache is emptied and bypassed until it listens again.
type feed struct {
	db      *DB
	cfg     *pgx.ConnConfig
	channel string // the changes, heard by every replica of this store
	origin  string // this process: its notifications and its acknowledgements
	ackCh   string // acknowledgements to this process
	name    string // this feed's application_name, which lets writers count the listeners

	seq     atomic.Uint64
	mu      sync.Mutex
	waiting map[uint64]*echo
	isUp    atomic.Bool
	upCh    chan struct{} // closed once the feed first listens

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	ackMax time.Duration // how long a write waits for the other replicas

	// heard is when the server last spoke on the LISTEN connection (a
	// notification or a ping's answer), in unix nanoseconds. The feed pings
	// every ackMax/4 and the cache is trusted only while the server was
	// heard within ackMax/2: a replica whose connection stalls without
	// breaking stops answering from its cache before a writer that waited
	// ackMax for it gives up and answers its own client.
	heard   atomic.Int64
	staleMu sync.Mutex
	stale   bool // the cache is bypassed because the server went quiet
}

// feedPrefix starts the application_name of every feed connection of one
// store (database and schema), followed by the process's origin.
func feedPrefix(channel string) string { return "latchkey-feed " + channel + " " }

func newFeed(db *DB, cfg *pgx.ConnConfig, scope string) *feed {
	var b [6]byte
	_, _ = rand.Read(b[:])
	h := fnv.New64a()
	io.WriteString(h, scope)
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{
		db: db, cfg: cfg,
		channel: "latchkey_" + strconv.FormatUint(h.Sum64(), 36),
		origin:  hex.EncodeToString(b[:]),
		waiting: map[uint64]*echo{},
		upCh:    make(chan struct{}),
		ctx:     ctx, cancel: cancel, done: make(chan struct{}),
		ackMax: time.Second,
	}
	f.ackCh = f.channel + "_" + f.origin
	f.name = feedPrefix(f.channel) + f.origin
	cfg.RuntimeParams["application_name"] = f.name
	return f
}

func (f *feed) up() bool { return f.isUp.Load() }

// FeedUp reports whether this process hears other replicas' changes: always
// true on SQLite (other processes' writes are polled for: sqlite.go), and on PostgreSQL while the
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
		f.hear()
		f.isUp.Store(true)
		f.db.setBypass(false)
		if first {
			close(f.upCh)
			first = false
		}
		stopWatch := f.watch()
		f.receive(conn)
		stopWatch()
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
	for _, ch := range []string{f.channel, f.ackCh} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			_ = conn.Close(ctx)
			return nil, err
		}
	}
	return conn, nil
}

// receive handles notifications until the connection fails or the feed
// closes. A quiet connection is pinged every ackMax/4, so the server is
// heard from regularly and a cut that sends no reset is noticed; the ping
// also keeps this listener's state_change fresh in pg_stat_activity, by
// which writers tell live listeners from gone ones.
func (f *feed) receive(conn *pgx.Conn) {
	for f.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(f.ctx, f.ackMax/4)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		if err == nil {
			f.hear()
			if !f.handle(conn, n.Channel, n.Payload) {
				return
			}
			continue
		}
		if f.ctx.Err() != nil || !pgconn.Timeout(err) {
			return
		}
		pctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return
		}
		f.hear()
	}
}

// hear records that the server spoke, and trusts the cache again if it
// had gone quiet (emptying it: what it missed meanwhile is unknown).
func (f *feed) hear() {
	f.heard.Store(time.Now().UnixNano())
	f.setStale(false)
}

// setStale turns the quiet-server bypass on or off, once per change.
func (f *feed) setStale(on bool) {
	f.staleMu.Lock()
	defer f.staleMu.Unlock()
	if f.stale != on {
		f.stale = on
		f.db.setBypass(on)
	}
}

// watch bypasses the cache while the server has not been heard from
// within ackMax/2, until receive hears it again or ends. It returns the
// function that stops it.
func (f *feed) watch() (stop func()) {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(f.ackMax / 20)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.Sub(time.Unix(0, f.heard.Load())) > f.ackMax/2 {
					f.setStale(true)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
		f.staleMu.Lock()
		f.stale = false // the caller bypasses the cache for the feed being down
		f.staleMu.Unlock()
	}
}

// handle applies one notification. On the changes channel a payload is
// "origin seq kind value" (kind t with a token digest in hex, or u with a
// user id), and another replica's change is acknowledged to it; on this
// process's acknowledgement channel it is "seq replica". It reports false
// when the connection failed.
func (f *feed) handle(conn *pgx.Conn, channel, payload string) bool {
	parts := strings.Fields(payload)
	if channel == f.ackCh {
		if len(parts) == 2 {
			if seq, err := strconv.ParseUint(parts[0], 10, 64); err == nil {
				f.acked(seq, parts[1])
			}
		}
		return true
	}
	if len(parts) != 4 {
		return true
	}
	var c change
	switch parts[2] {
	case "t":
		b, err := hex.DecodeString(parts[3])
		if err != nil || len(b) != 32 {
			return true
		}
		copy(c.token[:], b)
		c.isToken = true
	case "u":
		id, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil {
			return true
		}
		c.user = id
	default:
		return true
	}
	f.db.apply([]change{c})
	if parts[0] == f.origin {
		return true
	}
	ctx, cancel := context.WithTimeout(f.ctx, 3*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", f.channel+"_"+parts[0], parts[1]+" "+f.origin)
	return err == nil
}

// echo is a published change whose acknowledgements a writer waits for.
type echo struct {
	seq  uint64
	acks map[string]bool // replicas that acknowledged
	want map[string]bool // replicas that must; nil until the writer knows them
	ch   chan struct{}   // closed when every wanted replica acknowledged
}

func (e *echo) check() {
	if e.want == nil {
		return
	}
	for r := range e.want {
		if !e.acks[r] {
			return
		}
	}
	select {
	case <-e.ch:
	default:
		close(e.ch)
	}
}

func (f *feed) acked(seq uint64, replica string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.waiting[seq]; ok {
		e.acks[replica] = true
		e.check()
	}
}

// publish sends the changes inside tx. The returned echo (nil while the
// feed is down: the others' caches are then not ours to wait for) is
// waited on with await once the transaction has committed.
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
	// Registered before the commit: acknowledgements may come back before
	// the writer has learnt whom to expect them from.
	e := &echo{seq: last, acks: map[string]bool{}, ch: make(chan struct{})}
	f.mu.Lock()
	f.waiting[last] = e
	f.mu.Unlock()
	return e, nil
}

// await waits, at most ackMax, until every other replica whose feed is
// connected has acknowledged the last change of a committed write. A
// replica that does not answer in time (stopped, overloaded, a stalled
// connection) only delays the writer: it has not heard its server for
// longer than ackMax/2 by then, so it no longer answers from its cache.
// One whose feed is down is not waited for: its cache is bypassed.
func (f *feed) await(ctx context.Context, e *echo) {
	defer func() {
		f.mu.Lock()
		delete(f.waiting, e.seq)
		f.mu.Unlock()
	}()
	want, err := f.listeners(ctx)
	if err != nil {
		return
	}
	f.mu.Lock()
	e.want = want
	e.check()
	f.mu.Unlock()

	t := time.NewTimer(f.ackMax)
	defer t.Stop()
	select {
	case <-e.ch:
	case <-t.C:
	case <-ctx.Done():
	case <-f.ctx.Done():
	}
}

// listeners are the other replicas of this store (database and channel)
// whose feed pinged within the last two seconds: one whose host died is
// still listed until TCP gives up on it, but its pings stopped, and it has
// stopped trusting its cache.
func (f *feed) listeners(ctx context.Context) (map[string]bool, error) {
	rows, err := f.db.Query(ctx, `SELECT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE ?
			AND state_change > now() - interval '2 seconds'`,
		feedPrefix(f.channel)+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if r := strings.TrimPrefix(name, feedPrefix(f.channel)); r != f.origin {
			want[r] = true
		}
	}
	return want, rows.Err()
}

// forget drops a writer's entry whose transaction did not commit.
func (f *feed) forget(e *echo) {
	f.mu.Lock()
	delete(f.waiting, e.seq)
	f.mu.Unlock()
}

// release frees every writer waiting for acknowledgements (the feed went
// down: they would not be heard).
func (f *feed) release() {
	f.mu.Lock()
	for _, e := range f.waiting {
		select {
		case <-e.ch:
		default:
			close(e.ch)
		}
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
