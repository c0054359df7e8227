package models

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Email is a message in the outbox. It is written in the same transaction as
// the change that caused it, so it is never lost and never sent for a change
// that rolled back.
type Email struct {
	ID            int64
	Kind          string // reset-password, password-changed, verify-email
	To            string
	Subject       string
	HTML          string
	Text          string
	Created       time.Time
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	SentAt        time.Time
	DeadAt        time.Time
}

// EnqueueEmail adds a message to the outbox inside tx, due at once.
func (t *Tx) EnqueueEmail(ctx context.Context, e Email) error {
	_, err := t.Exec(ctx, `INSERT INTO outbox(kind, to_addr, subject, html, text, created, next_attempt_at)
		VALUES (?,?,?,?,?,?,?)`, e.Kind, e.To, e.Subject, e.HTML, e.Text, ms(t.now), ms(t.now))
	return err
}

// OutboxConfig is the retry policy of the outbox.
type OutboxConfig struct {
	MaxAttempts int              // failed attempts after which a message is dead; default 10
	BaseDelay   time.Duration    // delay after the first failure; default 5s, doubled per failure
	MaxDelay    time.Duration    // cap on the delay; default 15 min
	Jitter      float64          // ± fraction of the delay; default 0.2, negative for none
	Now         func() time.Time // default time.Now
	Rand        func() float64   // uniform in [0,1); default math/rand/v2
	// Lease is how long a claimed message is left to its sender before
	// another may send it; default 1 min. It must be longer than a send
	// may take (the worker's SendTimeout).
	Lease time.Duration
}

// Outbox is the queue of mail to send, over the outbox table.
//
// Delivery is at least once: a message is marked sent only after the SMTP
// server accepted it, so a crash (or a failed database write) between the
// server's "250 OK" and MarkSent sends it again on the next attempt. The
// worker sets a Message-ID derived from the row so a receiving system can
// spot the duplicate. Messages are never lost: they stay in the table, due,
// until sent or dead, across restarts and SMTP outages.
//
// With several replicas each message is sent by one of them: a sender
// claims due messages under a lease (Claim) and only then sends them. A
// replica that dies mid-send leaves its claim to lapse, and another sends
// the message again (at least once, never lost).
type Outbox struct {
	db  *DB
	cfg OutboxConfig
}

// NewOutbox returns the outbox over db, filling in the default policy.
func NewOutbox(db *DB, cfg OutboxConfig) *Outbox {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 5 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 15 * time.Minute
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.2
	} else if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	return &Outbox{db: db, cfg: cfg}
}

// Config returns the policy in force.
func (o *Outbox) Config() OutboxConfig { return o.cfg }

func (o *Outbox) now() time.Time { return o.cfg.Now().UTC() }

const emailColumns = `id, kind, to_addr, subject, html, text, created, attempts, next_attempt_at, last_error, sent_at, dead_at`

func scanEmail(row rowScanner) (*Email, error) {
	var (
		e              Email
		created, next  int64
		sentAt, deadAt sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.Kind, &e.To, &e.Subject, &e.HTML, &e.Text, &created, &e.Attempts, &next, &e.LastError, &sentAt, &deadAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.Created, e.NextAttemptAt = fromMS(created), fromMS(next)
	e.SentAt, e.DeadAt = nullMS(sentAt), nullMS(deadAt)
	return &e, nil
}

// OutboxClass picks which kinds a sender claims, so mail and webhook
// deliveries each have their own sender and neither waits for the other.
type OutboxClass int

const (
	AllKinds     OutboxClass = iota // every kind
	MailKinds                       // kinds not starting WebhookKindPrefix
	WebhookKinds                    // kinds starting WebhookKindPrefix
)

func (c OutboxClass) filter() string {
	switch c {
	case MailKinds:
		return ` AND kind NOT LIKE '` + WebhookKindPrefix + `%'`
	case WebhookKinds:
		return ` AND kind LIKE '` + WebhookKindPrefix + `%'`
	}
	return ""
}

// Claim takes up to limit messages that are neither sent nor dead, whose
// next attempt is due and that no live claim holds, oldest first, and
// claims them for the Lease: until then no other sender (another replica)
// takes them. MarkSent, MarkFailed and MarkDead end the claim.
func (o *Outbox) Claim(ctx context.Context, limit int) ([]Email, error) {
	return o.ClaimClass(ctx, AllKinds, limit)
}

// ClaimClass is Claim over the kinds of one class only: the mail sender
// and the webhook sender claim from the same table under the same leases,
// each its own rows, so a slow receiver never holds up a reset mail.
func (o *Outbox) ClaimClass(ctx context.Context, class OutboxClass, limit int) ([]Email, error) {
	if limit <= 0 {
		limit = 10
	}
	var out []Email
	now := o.now()
	err := o.db.Write(ctx, now, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `UPDATE outbox SET claimed_until = ? WHERE id IN (
			SELECT id FROM outbox
			WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?
				AND (claimed_until IS NULL OR claimed_until <= ?)`+class.filter()+`
			ORDER BY next_attempt_at, id LIMIT ?`+o.db.d.skipLocked+`)
			RETURNING `+emailColumns, ms(now.Add(o.cfg.Lease)), ms(now), ms(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEmail(rows)
			if err != nil {
				return err
			}
			out = append(out, *e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("models: outbox claim: %w", err)
	}
	slices.SortFunc(out, func(a, b Email) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// FindEmail returns one message by id.
func (o *Outbox) FindEmail(ctx context.Context, id int64) (*Email, error) {
	return scanEmail(o.db.QueryRow(ctx, `SELECT `+emailColumns+` FROM outbox WHERE id = ?`, id))
}

// Release ends the claims on messages a sender took but will not send
// now, so any sender may take them at once.
func (o *Outbox) Release(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return o.db.Write(ctx, o.now(), func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outbox SET claimed_until = NULL
			WHERE sent_at IS NULL AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
		return err
	})
}

// MarkSent records that the SMTP server accepted the message and clears its
// bodies (a reset mail carries a live token; the row is kept as a record).
func (o *Outbox) MarkSent(ctx context.Context, id int64) error {
	now := o.now()
	return o.db.Write(ctx, now, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outbox SET sent_at = ?, html = '', text = '', last_error = '', claimed_until = NULL
			WHERE id = ? AND sent_at IS NULL`, ms(now), id)
		return err
	})
}

// Failure is what MarkFailed decided for a message.
type Failure struct {
	Attempts      int
	NextAttemptAt time.Time // zero when dead
	Dead          bool
	LastError     string // as stored: truncated, tokens redacted
}

// MarkFailed records a failed attempt: attempts+1, the error (truncated, with
// anything shaped like a token redacted) and the next attempt after an
// exponential backoff with jitter. A permanent failure (PermanentMailError)
// is dead at the first attempt. After MaxAttempts failures the message is
// dead: it is never tried again unless an operator retries it (RetryDead),
// so it keeps its bodies. A link in them holds no more than it did while
// the message was pending: it expires on its own (ResetTTL, VerifyTTL), and
// PruneSent deletes the row after the worker's KeepSent.
func (o *Outbox) MarkFailed(ctx context.Context, id int64, cause error) (Failure, error) {
	now := o.now()
	var f Failure
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	f.LastError = SanitizeError(msg, 500)
	err := o.db.Write(ctx, now, func(tx *Tx) error {
		if err := tx.QueryRow(ctx, `SELECT attempts FROM outbox WHERE id = ? AND sent_at IS NULL AND dead_at IS NULL`, id).Scan(&f.Attempts); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		f.Attempts++
		if f.Attempts >= o.cfg.MaxAttempts || IsPermanentMailError(cause) { // a 5xx: dead at once
			f.Dead = true
			_, err := tx.Exec(ctx, `UPDATE outbox SET attempts = ?, last_error = ?, dead_at = ?, claimed_until = NULL WHERE id = ?`,
				f.Attempts, f.LastError, ms(now), id)
			return err
		}
		f.NextAttemptAt = now.Add(o.Backoff(f.Attempts)).Truncate(time.Millisecond)
		_, err := tx.Exec(ctx, `UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ?`,
			f.Attempts, f.LastError, ms(f.NextAttemptAt), id)
		return err
	})
	if err != nil {
		return Failure{}, fmt.Errorf("models: outbox mark failed %d: %w", id, err)
	}
	return f, nil
}

// MarkDead gives up on a message without another attempt (a reset link
// that expired while the mail server was down is not worth sending) and
// clears its bodies: it can never be retried.
func (o *Outbox) MarkDead(ctx context.Context, id int64, reason string) error {
	now := o.now()
	return o.db.Write(ctx, now, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outbox SET dead_at = ?, last_error = ?, html = '', text = '', claimed_until = NULL
			WHERE id = ? AND sent_at IS NULL AND dead_at IS NULL`, ms(now), SanitizeError(reason, 500), id)
		return err
	})
}

// ErrMailCleared: a dead message whose bodies are gone (its link had
// expired) cannot be sent again.
var ErrMailCleared = &Error{Kind: KindUnprocessable, Code: "MAIL_CLEARED",
	Message: "This message expired before it could be delivered and its text is gone, so it cannot be sent again: ask for a new one (a new reset link, say)"}

// DeadEmail is a message the outbox gave up on, as an operator sees it: who
// it was for and why it died, never its bodies (they hold links).
type DeadEmail struct {
	ID        int64
	Kind      string
	To        string
	Created   time.Time
	DeadAt    time.Time
	Attempts  int
	LastError string // as stored: truncated, tokens redacted
	// Retryable: the message still has its bodies (it died of failed
	// attempts, not of an expired link), so RetryDead can queue it again.
	Retryable bool
}

// ListDead returns up to limit dead messages, most recently dead first.
func (o *Outbox) ListDead(ctx context.Context, limit int) ([]DeadEmail, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := o.db.Query(ctx, `SELECT id, kind, to_addr, created, dead_at, attempts, last_error, html != '' OR text != ''
		FROM outbox WHERE dead_at IS NOT NULL AND sent_at IS NULL ORDER BY dead_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("models: outbox list dead: %w", err)
	}
	defer rows.Close()
	var out []DeadEmail
	for rows.Next() {
		var (
			e             DeadEmail
			created, dead int64
		)
		if err := rows.Scan(&e.ID, &e.Kind, &e.To, &created, &dead, &e.Attempts, &e.LastError, &e.Retryable); err != nil {
			return nil, err
		}
		e.Created, e.DeadAt = fromMS(created), fromMS(dead)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RetryDead puts a dead message back in the queue, due at once with a fresh
// count of attempts (its last error stays until it is sent), and audits it
// as mail.retried on the recipient's account when there is one (meta.Actor
// names the operator). It returns the message as it was, ErrNotFound when
// there is no dead message with that id, or ErrMailCleared. A link that has
// expired since is given up again by the worker (its MaxAge).
func (o *Outbox) RetryDead(ctx context.Context, id int64, meta ClientMeta) (*Email, error) {
	var e *Email
	err := o.db.Write(ctx, o.now(), func(tx *Tx) error {
		var err error
		e, err = scanEmail(tx.QueryRow(ctx, `SELECT `+emailColumns+` FROM outbox WHERE id = ? AND dead_at IS NOT NULL AND sent_at IS NULL`, id))
		if err != nil {
			return err
		}
		if e.HTML == "" && e.Text == "" {
			return ErrMailCleared
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET dead_at = NULL, attempts = 0, next_attempt_at = ?, claimed_until = NULL WHERE id = ?`,
			ms(tx.now), id); err != nil {
			return err
		}
		var uid int64
		err = tx.QueryRow(ctx, `SELECT id FROM users WHERE email_key = ?`, EmailKey(e.To)).Scan(&uid)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return tx.Audit(ctx, "mail.retried", uid, meta, fmt.Sprintf("message %d (%s)", e.ID, e.Kind))
	})
	if err != nil {
		return nil, err
	}
	e.HTML, e.Text = "", ""
	return e, nil
}

// Backoff is the delay before the next attempt after attempts failures:
// BaseDelay·2^(attempts-1), capped at MaxDelay, then ± Jitter.
func (o *Outbox) Backoff(attempts int) time.Duration {
	d := float64(o.cfg.MaxDelay)
	if attempts < 1 {
		attempts = 1
	}
	if attempts <= 62 {
		d = math.Min(float64(o.cfg.BaseDelay)*math.Pow(2, float64(attempts-1)), float64(o.cfg.MaxDelay))
	}
	d *= 1 + o.cfg.Jitter*(2*o.cfg.Rand()-1)
	return time.Duration(d)
}

// OutboxStats counts messages for health checks and metrics: the mail, and
// apart from it the webhook deliveries (kinds starting "webhook.").
type OutboxStats struct {
	Pending       int64     // not sent, not dead (due or waiting for a retry)
	Retrying      int64     // pending with at least one failed attempt
	Sent          int64     // accepted by the SMTP server
	Dead          int64     // given up after MaxAttempts
	OldestPending time.Time // created time of the oldest pending message; zero when none
	Webhooks      WebhookStats
}

// WebhookStats counts webhook deliveries as OutboxStats counts mail.
type WebhookStats struct {
	Pending, Retrying, Sent, Dead int64
}

// WebhookKindPrefix starts the outbox kind of every webhook delivery
// ("webhook.user.created"); the worker sends those over HTTP, not SMTP.
const WebhookKindPrefix = "webhook."

// Stats counts the outbox.
func (o *Outbox) Stats(ctx context.Context) (OutboxStats, error) {
	var (
		s      OutboxStats
		oldest sql.NullInt64
	)
	err := o.db.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE NOT hook AND sent_at IS NULL AND dead_at IS NULL),
		count(*) FILTER (WHERE NOT hook AND sent_at IS NULL AND dead_at IS NULL AND attempts > 0),
		count(*) FILTER (WHERE NOT hook AND sent_at IS NOT NULL),
		count(*) FILTER (WHERE NOT hook AND dead_at IS NOT NULL),
		min(CASE WHEN NOT hook AND sent_at IS NULL AND dead_at IS NULL THEN created END),
		count(*) FILTER (WHERE hook AND sent_at IS NULL AND dead_at IS NULL),
		count(*) FILTER (WHERE hook AND sent_at IS NULL AND dead_at IS NULL AND attempts > 0),
		count(*) FILTER (WHERE hook AND sent_at IS NOT NULL),
		count(*) FILTER (WHERE hook AND dead_at IS NOT NULL)
		FROM (SELECT sent_at, dead_at, attempts, created, kind LIKE '`+WebhookKindPrefix+`%' AS hook FROM outbox) o`).Scan(
		&s.Pending, &s.Retrying, &s.Sent, &s.Dead, &oldest,
		&s.Webhooks.Pending, &s.Webhooks.Retrying, &s.Webhooks.Sent, &s.Webhooks.Dead)
	if err != nil {
		return s, fmt.Errorf("models: outbox stats: %w", err)
	}
	s.OldestPending = nullMS(oldest)
	return s, nil
}

// PruneSent deletes up to limit sent or dead messages older than before
// (the rows are only a record: a sent one has no bodies, a dead one's
// links have long expired).
func (o *Outbox) PruneSent(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := o.db.Write(ctx, o.now(), func(tx *Tx) error {
		if ok, err := tx.tryLock(ctx, "prune-outbox"); !ok || err != nil {
			return err // another replica is pruning
		}
		res, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
			WHERE (sent_at IS NOT NULL AND sent_at < ?) OR (dead_at IS NOT NULL AND dead_at < ?) LIMIT ?)`,
			ms(before), ms(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// SanitizeError makes an error message safe to store and log: one line, at
// most max bytes (cut on a character boundary), and every run of 32 or more
// letters and digits — the shape of our tokens (64 base62, 128 hex) —
// replaced by [REDACTED], so a server echoing a link never puts a secret in
// the table or the log.
func SanitizeError(s string, max int) string {
	var b strings.Builder
	run := 0
	start := 0
	flush := func(end int) {
		if run >= 32 {
			b.WriteString("[REDACTED]")
		} else {
			b.WriteString(s[start:end])
		}
		run = 0
	}
	for i, r := range s {
		alnum := r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		if alnum {
			if run == 0 {
				start = i
			}
			run++
			continue
		}
		if run > 0 {
			flush(i)
		}
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			b.WriteByte(' ')
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	if run > 0 {
		flush(len(s))
	}
	out := strings.TrimSpace(b.String())
	if max > 0 && len(out) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut]
	}
	return out
}
