package boot

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// fakeSender is a Sender whose behaviour each test sets.
type fakeSender struct {
	mu      sync.Mutex
	sent    []models.Email
	started chan models.Email // receives each message as its send begins (if not nil)
	release chan struct{}     // when not nil, a send waits for it (or its ctx)
	err     error
}

func (f *fakeSender) Send(ctx context.Context, e models.Email) error {
	if f.started != nil {
		f.started <- e
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, e)
	return nil
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func openWorkerDB(t *testing.T) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), testdb.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func enqueue(t *testing.T, db *models.DB, now time.Time, e models.Email) {
	t.Helper()
	if err := db.Write(context.Background(), now, func(tx *models.Tx) error { return tx.EnqueueEmail(context.Background(), e) }); err != nil {
		t.Fatal(err)
	}
}

func TestOutboxWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("NotifyWakesAtOnce", func(t *testing.T) {
		t.Parallel()
		db := openWorkerDB(t)
		clk := newClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		fs := &fakeSender{started: make(chan models.Email, 1)}
		w := NewOutboxWorker(ob, fs, nil, WorkerConfig{Poll: time.Hour})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { w.Run(rctx); close(done) }()
		defer func() { cancel(); <-done }()
		start := time.Now()
		// Wake the worker once the row is committed, as the subscribers do.
		err := db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
			if err := tx.EnqueueEmail(ctx, models.Email{Kind: "k", To: "a@example.com", Subject: "s", Text: "t"}); err != nil {
				return err
			}
			tx.AfterCommit(w.Notify)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-fs.started:
		case <-time.After(2 * time.Second):
			t.Fatal("not sent within 2s although the poll interval is 1h")
		}
		t.Logf("sending %v after the enqueuing transaction began", time.Since(start).Round(time.Microsecond))
	})

	t.Run("ShutdownFinishesTheSendInFlight", func(t *testing.T) {
		t.Parallel()
		db := openWorkerDB(t)
		clk := newClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		enqueue(t, db, clk.Now(), models.Email{Kind: "k", To: "a@example.com", Subject: "1", Text: "t"})
		enqueue(t, db, clk.Now(), models.Email{Kind: "k", To: "b@example.com", Subject: "2", Text: "t"})
		fs := &fakeSender{started: make(chan models.Email, 2), release: make(chan struct{})}
		w := NewOutboxWorker(ob, fs, nil, WorkerConfig{SendTimeout: 5 * time.Second})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { w.Run(rctx); close(done) }()
		first := <-fs.started
		cancel()
		select {
		case <-done:
			t.Fatal("Run returned while a send was in flight")
		case <-time.After(50 * time.Millisecond):
		}
		close(fs.release)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after the in-flight send finished")
		}
		e, err := ob.FindEmail(ctx, first.ID)
		if err != nil || e.SentAt.IsZero() {
			t.Fatalf("in-flight message not recorded as sent: %+v %v", e, err)
		}
		if st, _ := ob.Stats(ctx); st.Pending != 1 || st.Sent != 1 || fs.count() != 1 {
			t.Fatalf("stats %+v, sent %d: the second message must wait for the next start", st, fs.count())
		}
	})

	t.Run("ShutdownBoundsAHungSend", func(t *testing.T) {
		t.Parallel()
		db := openWorkerDB(t)
		clk := newClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		enqueue(t, db, clk.Now(), models.Email{Kind: "k", To: "a@example.com", Subject: "1", Text: "t"})
		fs := &fakeSender{started: make(chan models.Email, 1), release: make(chan struct{})} // never released
		w := NewOutboxWorker(ob, fs, nil, WorkerConfig{SendTimeout: 100 * time.Millisecond})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { w.Run(rctx); close(done) }()
		<-fs.started
		cancel()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			t.Fatal("a hung send held shutdown beyond SendTimeout")
		}
		if st, _ := ob.Stats(ctx); st.Retrying != 1 {
			t.Fatalf("timed-out send not recorded as a failure: %+v", st)
		}
	})

	t.Run("RetriesThenDeadAndLogsNoSecrets", func(t *testing.T) {
		t.Parallel()
		db := openWorkerDB(t)
		clk := newClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now, MaxAttempts: 3})
		tok := models.NewTokenID()
		link := testBaseURL + "/reset-password?access_token=" + tok
		enqueue(t, db, clk.Now(), models.Email{Kind: KindResetPassword, To: "victim@example.com", Subject: "s", Text: link, HTML: link})
		fs := &fakeSender{err: errors.New("550 5.1.1 <victim@example.com>: mailbox unavailable; body was " + link)}
		logs := &testkit.SyncBuffer{}
		w := NewOutboxWorker(ob, fs, slog.New(slog.NewTextHandler(logs, nil)), WorkerConfig{})
		for i := 1; i <= 3; i++ {
			n, err := w.RunOnce(ctx)
			if err != nil || n != 1 {
				t.Fatalf("round %d: %d, %v", i, n, err)
			}
			if n, _ := w.RunOnce(ctx); n != 0 {
				t.Fatalf("round %d: retried before the backoff", i)
			}
			clk.Advance(time.Hour)
		}
		if n, _ := w.RunOnce(ctx); n != 0 {
			t.Fatal("a dead message was tried again")
		}
		st, _ := ob.Stats(ctx)
		if st.Dead != 1 || st.Pending != 0 {
			t.Fatalf("stats %+v, want one dead", st)
		}
		out := logs.String()
		if strings.Count(out, "will retry") != 2 || !strings.Contains(out, "mail dead") || !strings.Contains(out, "attempts=3") ||
			!strings.Contains(out, "kind="+KindResetPassword) {
			t.Fatalf("log:\n%s", out)
		}
		if strings.Contains(out, tok) || strings.Contains(out, "victim@example.com") {
			t.Fatalf("the log holds the token or the address:\n%s", out)
		}
		var stored string
		_ = db.QueryRow(context.Background(), `SELECT last_error FROM outbox`).Scan(&stored)
		if strings.Contains(stored, tok) {
			t.Fatalf("last_error holds the token: %s", stored)
		}
	})
}

// TestOutboxWorkerExpiredLinks: a reset mail whose link expired during an
// outage is given up, not sent; other kinds are still delivered.
func TestOutboxWorkerExpiredLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWorkerDB(t)
	clk := newClock()
	ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
	enqueue(t, db, clk.Now(), models.Email{Kind: KindResetPassword, To: "a@example.com", Subject: "reset", Text: "t", HTML: "h"})
	enqueue(t, db, clk.Now(), models.Email{Kind: KindPasswordChanged, To: "a@example.com", Subject: "changed", Text: "t"})
	clk.Advance(15 * time.Minute)
	fs := &fakeSender{}
	logs := &testkit.SyncBuffer{}
	w := NewOutboxWorker(ob, fs, slog.New(slog.NewTextHandler(logs, nil)),
		WorkerConfig{MaxAge: map[string]time.Duration{KindResetPassword: 15 * time.Minute}})
	if n, err := w.RunOnce(ctx); err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if fs.count() != 1 || fs.sent[0].Kind != KindPasswordChanged {
		t.Fatalf("sent %+v, want only the notice", fs.sent)
	}
	st, _ := ob.Stats(ctx)
	if st.Dead != 1 || st.Sent != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
	var html, text, lastErr string
	_ = db.QueryRow(context.Background(), `SELECT html, text, last_error FROM outbox WHERE kind = ?`, KindResetPassword).Scan(&html, &text, &lastErr)
	if html != "" || text != "" || !strings.Contains(lastErr, "expired") {
		t.Fatalf("expired row: html %q text %q last_error %q", html, text, lastErr)
	}
	if !strings.Contains(logs.String(), "expired before it could be delivered") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func TestSMTPSenderConfig(t *testing.T) {
	base := SMTPConfig{Host: "127.0.0.1", Port: 1025, From: "Latchkey <noreply@example.com>"}
	for _, tls := range []string{"", "none", "starttls", "tls"} {
		c := base
		c.TLS = tls
		if _, err := NewSMTPSender(c); err != nil {
			t.Errorf("TLS %q: %v", tls, err)
		}
	}
	for name, c := range map[string]SMTPConfig{
		"bad tls":   {Host: "h", Port: 25, TLS: "ssl", From: base.From},
		"no host":   {Port: 25, From: base.From},
		"bad port":  {Host: "h", Port: 0, From: base.From},
		"bad from":  {Host: "h", Port: 25, From: "nobody"},
		"auth+none": {Host: "h", Port: 25, From: base.From, User: "u", Password: "p"}, // allowed: go-mail never sends PLAIN in clear
	} {
		_, err := NewSMTPSender(c)
		if (err == nil) != (name == "auth+none") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestSMTPSenderTLSPolicies: with "starttls" a server without STARTTLS is
// refused (never falls back to plain text); with "none" the same server works.
func TestSMTPSenderTLSPolicies(t *testing.T) {
	sink := smtptest.Start(t)
	e := models.Email{ID: 1, Created: time.Now(), To: "a@example.com", Subject: "s", Text: "t", HTML: "<p>t</p>"}
	cfg := SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), From: "Latchkey <noreply@example.com>", TLS: "starttls"}
	s, err := NewSMTPSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), e); err == nil {
		t.Fatal("starttls policy sent over a server without STARTTLS")
	}
	cfg.TLS = "none"
	s, _ = NewSMTPSender(cfg)
	if err := s.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if m := sink.Next(t, 5*time.Second); m.Subject != "s" || m.Text != "t" || m.HTML != "<p>t</p>" {
		t.Fatalf("got %+v", m)
	}
}

// slowSender is a healthy but slow mail server: each send takes d.
type slowSender struct {
	d     time.Duration
	mu    sync.Mutex
	count map[int64]int
}

func (s *slowSender) Send(ctx context.Context, e models.Email) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.count[e.ID]++
	s.mu.Unlock()
	return nil
}

func (s *slowSender) sends() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.count {
		distinct++
		total += c
	}
	return distinct, total
}

// TestOutboxSlowServerTwoReplicas: two replicas' workers on one PostgreSQL
// outbox, a mail server slow enough that a whole batch would outlast the
// claim's lease. Each message is still sent exactly once: a worker starts
// a message only while it can finish before its lease ends, and hands the
// rest of the batch back. (Review finding 3: 6 of 10 went twice before.)
func TestOutboxSlowServerTwoReplicas(t *testing.T) {
	dsn := testdb.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *models.DB {
		db, err := models.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	for range 10 {
		enqueue(t, a, time.Now(), models.Email{Kind: "password-changed", To: "x@example.com", Subject: "s", Text: "t"})
	}
	s := &slowSender{d: 100 * time.Millisecond, count: map[int64]int{}}
	// The defaults scaled down: a 30 s send timeout against a 1 min lease
	// becomes 300 ms against 5.6 s (bookkeeping's 5 s is not scaled).
	wc := WorkerConfig{Poll: 50 * time.Millisecond, SendTimeout: 300 * time.Millisecond, Batch: 10}
	oc := models.OutboxConfig{Lease: 5600 * time.Millisecond}
	var done []chan struct{}
	for _, db := range []*models.DB{a, b} {
		w := NewOutboxWorker(models.NewOutbox(db, oc), s, nil, wc)
		ch := make(chan struct{})
		done = append(done, ch)
		go func() { w.Run(ctx); close(ch) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := s.sends(); n == 10 {
			break
		}
		if time.Now().After(deadline) {
			n, _ := s.sends()
			t.Fatalf("%d of 10 messages sent within 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	for _, ch := range done {
		<-ch // each worker finishes the send it has in flight
	}
	if distinct, total := s.sends(); total != distinct {
		t.Fatalf("%d sends for %d messages: some went twice with no crash and no failure", total, distinct)
	}
}
