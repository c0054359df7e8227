package models

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Mail kinds limited per address.
const (
	MailReset  = "reset"
	MailVerify = "verify"
)

// ErrThrottled is the answer to an attempt made too soon: 429 with
// Retry-After. It reads the same whether the account exists or not and
// whether the account or the client IP is being held back.
var ErrThrottled = &Error{Kind: KindTooMany, Code: "TOO_MANY_REQUESTS",
	Message: "Too many failed login attempts. Wait and try again, or reset your password."}

func throttled(wait time.Duration, by string) error {
	e := *ErrThrottled
	e.throttledBy = by
	e.RetryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return &e
}

// LimitConfig configures throttling. The zero value throttles nothing;
// DefaultLimitConfig is what the server runs with.
type LimitConfig struct {
	Login        bool          // throttle logins per account and per client IP
	FreeFailures int           // consecutive failures of one account before delays start
	Delay        time.Duration // the first delay; each further failure doubles it
	MaxDelay     time.Duration // the cap on the delay: never a hard lock
	IPBurst      int           // failed logins one client IP may make at once...
	IPPerMinute  float64       // ...and per minute after that (successes cost nothing)

	Mail            bool          // limit reset and verification mail
	MailInterval    time.Duration // at most one mail of a kind per address per interval
	MailIPBurst     int           // reset/verify requests one client IP may make at once...
	MailIPPerMinute float64       // ...and per minute after that

	// InflightWait bounds how long an attempt waits for a slot that attempts
	// in flight hold, before it is answered 429 after all; default 10 s.
	InflightWait time.Duration

	Now func() time.Time
}

// DefaultLimitConfig: 5 free failures, then 1 s doubling up to 15 min
// (about 100 guesses on the first day, 96 a day after: NIST 800-63B's
// ceiling of 100 consecutive failures is met by the delay, not a lock);
// per IP a burst of 20 failures and 10 a minute; one reset and one
// verification mail per address per minute, 20 requests at once and 10 a
// minute per IP.
func DefaultLimitConfig() LimitConfig {
	return LimitConfig{
		Login: true, FreeFailures: 5, Delay: time.Second, MaxDelay: 15 * time.Minute,
		IPBurst: 20, IPPerMinute: 10,
		Mail: true, MailInterval: time.Minute, MailIPBurst: 20, MailIPPerMinute: 10,
		InflightWait: 10 * time.Second,
	}
}

// Limiter limits login guessing and reset and verification mail. Users
// takes one in NewUsers; a nil *Limiter limits nothing. It keeps its
// counters in the throttle table, so a restart does not hand out a fresh
// allowance:
//   - per account (the identifier tried, existing or not): consecutive
//     failures beyond FreeFailures wait Delay·2^k, capped at MaxDelay; a
//     success or a completed password reset clears them;
//   - per client IP: a token bucket that only failed logins spend, so many
//     real users behind one NAT are not held back by each other's logins;
//   - per address and per IP for reset and verification mail.
//
// Those counters are shared by every replica on the database. Attempts in
// flight are also counted in memory, per process (inflight.go), so a burst
// of parallel guesses cannot all pass before the first failure is written.
//
// A password attempt is three steps, always in this order, and
// Users.verifyAttempt is the one place that takes them: BeforeLogin may
// refuse the attempt (ErrThrottled with the seconds to wait); RecordLogin
// stores its outcome inside the transaction the login writes anyway (the
// audit row of a failure, the token of a success), so throttling costs no
// write of its own; EndLogin always follows a BeforeLogin that let an
// attempt through, whatever became of it. The key is the account's
// (accountKey), or for an unknown account the normalised identifier tried,
// so a throttled unknown account looks like a throttled real one.
type Limiter struct {
	db       *DB
	cfg      LimitConfig
	inflight *inflight // this process's attempts under way
}

// NewLimiter returns a limiter over db, filling unset numbers from
// DefaultLimitConfig (the on/off switches are taken as given).
func NewLimiter(db *DB, cfg LimitConfig) *Limiter {
	d := DefaultLimitConfig()
	if cfg.FreeFailures <= 0 {
		cfg.FreeFailures = d.FreeFailures
	}
	if cfg.Delay <= 0 {
		cfg.Delay = d.Delay
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = d.MaxDelay
	}
	cfg.MaxDelay = max(cfg.MaxDelay, cfg.Delay)
	if cfg.IPBurst <= 0 {
		cfg.IPBurst = d.IPBurst
	}
	if cfg.IPPerMinute <= 0 {
		cfg.IPPerMinute = d.IPPerMinute
	}
	if cfg.MailInterval <= 0 {
		cfg.MailInterval = d.MailInterval
	}
	if cfg.MailIPBurst <= 0 {
		cfg.MailIPBurst = d.MailIPBurst
	}
	if cfg.MailIPPerMinute <= 0 {
		cfg.MailIPPerMinute = d.MailIPPerMinute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InflightWait <= 0 {
		cfg.InflightWait = d.InflightWait
	}
	return &Limiter{db: db, cfg: cfg, inflight: newInflight(cfg.InflightWait)}
}

// Config returns the limits in force.
func (l *Limiter) Config() LimitConfig { return l.cfg }

// Key kinds: each counter's key is a digest of kind + identifier.
const (
	keyAccount = "login-account"
	keyLoginIP = "login-ip"
	keyDevice  = "login-device"
	keyMailIP  = "mail-ip"
	keyMail    = "mail-"
)

// throttleKey is the stored key: a digest, so the table never holds what
// was typed into the login field (sometimes a password).
func throttleKey(kind, id string) []byte {
	d := sha256.Sum256([]byte(kind + "\x00" + id))
	return d[:16]
}

// IPKey is the unit a client IP is limited by: the address, or its /64 for
// IPv6, since one subscriber usually holds a whole /64.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// delayAfter is how long an account waits after n consecutive failures.
func (l *Limiter) delayAfter(n int) time.Duration {
	if n <= l.cfg.FreeFailures {
		return 0
	}
	d := l.cfg.Delay
	for i := l.cfg.FreeFailures + 1; i < n && d < l.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxDelay)
}

// forget is how long after its last failure an account's count is kept.
func (l *Limiter) forget() time.Duration { return max(24*time.Hour, 4*l.cfg.MaxDelay) }

// counter is one row of the throttle table.
type counter struct {
	n       float64
	at      time.Time
	expires time.Time
	found   bool
}

func (c counter) live(now time.Time) bool { return c.found && now.Before(c.expires) }

// tokens is what a bucket holds at now: full when there is no live row.
func (c counter) tokens(burst int, perMinute float64, now time.Time) float64 {
	if !c.live(now) {
		return float64(burst)
	}
	return min(float64(burst), c.n+max(0, now.Sub(c.at).Minutes())*perMinute)
}

type queryRowFunc func(ctx context.Context, query string, args ...any) *sql.Row

func readCounter(ctx context.Context, q queryRowFunc, key []byte) (counter, error) {
	var (
		c           counter
		at, expires int64
	)
	err := q(ctx, `SELECT n, at, expires FROM throttle WHERE key = ?`, key).Scan(&c.n, &at, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	c.at, c.expires, c.found = fromMS(at), fromMS(expires), true
	return c, nil
}

// loginKeys are the counters an attempt is held to: the account's (key)
// and the client IP's bucket; or, from a browser whose device cookie holds
// a valid entry for the account (meta.device, Users.trustDevice), that
// entry's own counter alone (SECURITY N1). The list is what the in-flight
// guard reserves.
func loginKeys(key string, meta ClientMeta) (acct, ip []byte, all [][]byte) {
	if meta.device != "" {
		acct = throttleKey(keyDevice, key+"\x00"+meta.device)
		return acct, nil, [][]byte{acct}
	}
	acct, ip = throttleKey(keyAccount, key), throttleKey(keyLoginIP, IPKey(meta.IP))
	return acct, ip, [][]byte{acct, ip}
}

// BeforeLogin refuses an attempt on an account that is waiting out its
// delay, or from a client IP whose bucket is empty, with ErrThrottled and
// the seconds to wait. An attempt it lets through must be ended (EndLogin).
func (l *Limiter) BeforeLogin(ctx context.Context, key string, meta ClientMeta) error {
	if l == nil || !l.cfg.Login {
		return nil
	}
	ak, ik, all := loginKeys(key, meta)
	// When the allowance is there but attempts in flight hold it, take
	// waits for one to end rather than refuse a login nothing has failed
	// yet (many real users behind one NAT log in at once).
	return l.inflight.take(ctx, all, func(held func([]byte) int) (bool, error) {
		return l.loginRoom(ctx, ak, ik, held)
	})
}

// loginRoom refuses an attempt on account ak from client IP ik that must
// wait (ErrThrottled), or says whether the attempts in flight (held) leave
// room for it. ik is nil for an attempt from a known device (ak is then
// the device's counter): no bucket applies. It runs under the in-flight guard's lock, so reading the
// counters and taking a slot are one step; logins are bounded by hashing
// (tens a second), so that lock is never the bottleneck.
func (l *Limiter) loginRoom(ctx context.Context, ak, ik []byte, held func([]byte) int) (bool, error) {
	now := l.cfg.Now()
	acct, err := readCounter(ctx, l.db.QueryRow, ak)
	if err != nil {
		return false, err
	}
	n := 0
	if acct.live(now) {
		n = int(acct.n)
	}
	if wait := acct.at.Add(l.delayAfter(n)).Sub(now); n > l.cfg.FreeFailures && wait > 0 {
		if ik == nil {
			return false, throttled(wait, "device")
		}
		return false, throttled(wait, "account")
	}
	if ik == nil {
		return held(ak) < max(1, l.cfg.FreeFailures-n), nil
	}
	ip, err := readCounter(ctx, l.db.QueryRow, ik)
	if err != nil {
		return false, err
	}
	t := ip.tokens(l.cfg.IPBurst, l.cfg.IPPerMinute, now)
	if t < 1 {
		return false, throttled(time.Duration((1-t)/l.cfg.IPPerMinute*float64(time.Minute)), "ip")
	}
	// While failures are free, at most the free ones left may be in flight
	// (after that, one at a time), and no more than the IP's tokens: so a
	// burst of parallel guesses gets no more than one after another would.
	return held(ak) < max(1, l.cfg.FreeFailures-n) && t-float64(held(ik)) >= 1, nil
}

// EndLogin releases what BeforeLogin reserved for an attempt.
func (l *Limiter) EndLogin(key string, meta ClientMeta) {
	if l == nil || !l.cfg.Login {
		return
	}
	_, _, all := loginKeys(key, meta)
	l.inflight.release(all...)
}

// RecordLogin stores an attempt's outcome inside tx: a failure counts
// against the account and spends a token of the client IP (from a known
// device: against the device's counter only); a success clears the
// account's failures, and the device's (and spends nothing).
func (l *Limiter) RecordLogin(ctx context.Context, tx *Tx, key string, meta ClientMeta, ok bool) error {
	if l == nil || !l.cfg.Login {
		return nil
	}
	now := l.cfg.Now()
	ak, ik, _ := loginKeys(key, meta)
	if ok {
		_, err := tx.Exec(ctx, `DELETE FROM throttle WHERE key IN (?, ?)`, ak, throttleKey(keyAccount, key))
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO throttle(key, n, at, expires) VALUES (?, 1, ?, ?)
		ON CONFLICT(key) DO UPDATE SET n = CASE WHEN throttle.expires <= excluded.at THEN 1 ELSE throttle.n + 1 END,
			at = excluded.at, expires = excluded.expires`, ak, ms(now), ms(now.Add(l.forget()))); err != nil {
		return err
	}
	if ik == nil {
		return nil
	}
	if err := tx.lock(ctx, "throttle:"+string(ik)); err != nil {
		return err
	}
	c, err := readCounter(ctx, tx.QueryRow, ik)
	if err != nil {
		return err
	}
	return writeBucket(ctx, tx, ik, c.tokens(l.cfg.IPBurst, l.cfg.IPPerMinute, now)-1, l.cfg.IPBurst, l.cfg.IPPerMinute, now)
}

// writeBucket stores a bucket's tokens; the row expires when it is full again.
func writeBucket(ctx context.Context, tx *Tx, key []byte, tokens float64, burst int, perMinute float64, now time.Time) error {
	tokens = max(0, tokens)
	full := now.Add(time.Duration((float64(burst) - tokens) / perMinute * float64(time.Minute)))
	_, err := tx.Exec(ctx, `INSERT INTO throttle(key, n, at, expires) VALUES (?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET n = excluded.n, at = excluded.at, expires = excluded.expires`,
		key, tokens, ms(now), ms(full))
	return err
}

// AllowMail decides inside tx whether a reset or verification mail may go
// to addressKey for a request from meta.IP: at most one per MailInterval
// per address and kind, and a token bucket per client IP. Both are spent
// only when the mail is allowed. The caller answers the same either way.
func (l *Limiter) AllowMail(ctx context.Context, tx *Tx, kind, addressKey string, meta ClientMeta) (bool, error) {
	if l == nil || !l.cfg.Mail {
		return true, nil
	}
	now := l.cfg.Now()
	perAddr := 1 / l.cfg.MailInterval.Minutes()
	ak, ik := throttleKey(keyMail+kind, addressKey), throttleKey(keyMailIP, IPKey(meta.IP))
	// Read, decide and write each bucket as one step on every replica.
	for _, k := range [][]byte{ak, ik} {
		if err := tx.lock(ctx, "throttle:"+string(k)); err != nil {
			return false, err
		}
	}
	a, err := readCounter(ctx, tx.QueryRow, ak)
	if err != nil {
		return false, err
	}
	ip, err := readCounter(ctx, tx.QueryRow, ik)
	if err != nil {
		return false, err
	}
	at, it := a.tokens(1, perAddr, now), ip.tokens(l.cfg.MailIPBurst, l.cfg.MailIPPerMinute, now)
	if at < 1 || it < 1 {
		return false, nil
	}
	if err := writeBucket(ctx, tx, ak, at-1, 1, perAddr, now); err != nil {
		return false, err
	}
	return true, writeBucket(ctx, tx, ik, it-1, l.cfg.MailIPBurst, l.cfg.MailIPPerMinute, now)
}

// Prune deletes up to limit counters that no longer mean anything (full
// buckets, accounts whose failures are forgotten) and returns how many went.
func (l *Limiter) Prune(ctx context.Context, limit int) (int64, error) {
	var n int64
	now := l.cfg.Now()
	err := l.db.Write(ctx, now, func(tx *Tx) error {
		if ok, err := tx.tryLock(ctx, "prune-throttle"); !ok || err != nil {
			return err // another replica is pruning
		}
		res, err := tx.Exec(ctx, `DELETE FROM throttle WHERE key IN (
			SELECT key FROM throttle WHERE expires <= ? LIMIT ?)`, ms(now), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// clearLoginThrottle forgets the failed logins of every identifier of u:
// a completed password reset proves the owner is back, so the throttle an
// attacker caused must not keep them out.
func (t *Tx) clearLoginThrottle(ctx context.Context, u *User) error {
	keys := []any{throttleKey(keyAccount, accountKey(u)), throttleKey(keyAccount, EmailKey(u.Email))}
	if u.Username != "" {
		keys = append(keys, throttleKey(keyAccount, UsernameKey(u.Username)),
			throttleKey(keyAccount, strings.ToLower(strings.TrimSpace(u.Username))))
	}
	_, err := t.Exec(ctx, `DELETE FROM throttle WHERE key IN (?`+strings.Repeat(", ?", len(keys)-1)+`)`, keys...)
	return err
}
