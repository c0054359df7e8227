package models_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// newOutboxClock is a settable clock for outbox tests, at a fixed date.
func newOutboxClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
}

func enqueueAt(t *testing.T, db *models.DB, now time.Time, e models.Email) {
	t.Helper()
	err := db.Write(context.Background(), now, func(tx *models.Tx) error { return tx.EnqueueEmail(context.Background(), e) })
	if err != nil {
		t.Fatal(err)
	}
}

func openOutboxDB(t *testing.T) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), testdb.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ClaimClassSeparatesMailFromWebhooks", func(t *testing.T) {
		t.Parallel()
		db := openOutboxDB(t)
		clk := newOutboxClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		for i, k := range []string{"webhook.user.created", "webhook.session.created", "reset-password", "webhook.user.deleted", "verify-email"} {
			enqueueAt(t, db, clk.Now(), models.Email{Kind: k, To: "x", Subject: strconv.Itoa(i), Text: "t"})
			clk.Advance(time.Millisecond)
		}
		subjects := func(es []models.Email) string {
			var s []string
			for _, e := range es {
				s = append(s, e.Subject)
			}
			return strings.Join(s, ",")
		}
		// The oldest are webhooks; the mail sender still gets the mail at once.
		mail, err := ob.ClaimClass(ctx, models.MailKinds, 1)
		if err != nil || subjects(mail) != "2" {
			t.Fatalf("mail claim = %q, %v; want 2 (the reset)", subjects(mail), err)
		}
		hooks, err := ob.ClaimClass(ctx, models.WebhookKinds, 10)
		if err != nil || subjects(hooks) != "0,1,3" {
			t.Fatalf("webhook claim = %q, %v; want 0,1,3", subjects(hooks), err)
		}
		if d, _ := ob.ClaimClass(ctx, models.WebhookKinds, 10); len(d) != 0 {
			t.Fatalf("claimed webhooks claimed again: %q", subjects(d))
		}
		if d, _ := ob.Claim(ctx, 10); subjects(d) != "4" {
			t.Fatalf("claim of all kinds = %q, want the one unclaimed (4)", subjects(d))
		}
	})

	t.Run("ClaimOldestFirstLeaseAndSent", func(t *testing.T) {
		t.Parallel()
		db := openOutboxDB(t)
		clk := newOutboxClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "reset-password", To: "a@example.com", Subject: "A", HTML: "<p>a</p>", Text: "a"})
		clk.Advance(time.Second)
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "verify-email", To: "b@example.com", Subject: "B", HTML: "<p>b</p>", Text: "b"})

		due, err := ob.Claim(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 2 || due[0].Subject != "A" || due[1].Subject != "B" {
			t.Fatalf("due = %+v, want A then B", due)
		}
		if due[0].HTML != "<p>a</p>" || due[0].Text != "a" || due[0].To != "a@example.com" || due[0].Kind != "reset-password" {
			t.Fatalf("due[0] = %+v", due[0])
		}
		bCreated := clk.Now().Truncate(time.Millisecond)
		if d, _ := ob.Claim(ctx, 10); len(d) != 0 {
			t.Fatalf("claimed messages were claimed again: %+v", d)
		}
		clk.Advance(2 * time.Minute) // the claims lapse: the sender died
		if d, _ := ob.Claim(ctx, 1); len(d) != 1 || d[0].Subject != "A" {
			t.Fatalf("limit 1 after the lease gave %+v, want A", d)
		}
		if err := ob.MarkSent(ctx, due[0].ID); err != nil {
			t.Fatal(err)
		}
		e, err := ob.FindEmail(ctx, due[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if e.SentAt.IsZero() || e.HTML != "" || e.Text != "" {
			t.Fatalf("after MarkSent: %+v, want sent_at set and bodies cleared", e)
		}
		clk.Advance(2 * time.Minute)
		due, _ = ob.Claim(ctx, 10)
		if len(due) != 1 || due[0].Subject != "B" {
			t.Fatalf("due after sent = %+v", due)
		}
		st, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 1 || st.Sent != 1 || st.Dead != 0 || st.Retrying != 0 || !st.OldestPending.Equal(bCreated) {
			t.Fatalf("stats = %+v", st)
		}
	})

	t.Run("BackoffThenDead", func(t *testing.T) {
		t.Parallel()
		db := openOutboxDB(t)
		clk := newOutboxClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now, MaxAttempts: 4, Rand: func() float64 { return 0.5 }})
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "reset-password", To: "a@example.com", Subject: "A", HTML: "h", Text: "t"})
		due, _ := ob.Claim(ctx, 10)
		id := due[0].ID
		for i, want := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
			f, err := ob.MarkFailed(ctx, id, errors.New("dial tcp 127.0.0.1:1025: connection refused"))
			if err != nil {
				t.Fatal(err)
			}
			if f.Dead || f.Attempts != i+1 || f.NextAttemptAt.Sub(clk.Now()) != want {
				t.Fatalf("failure %d = %+v, want next in %v", i+1, f, want)
			}
			if d, _ := ob.Claim(ctx, 10); len(d) != 0 {
				t.Fatalf("failure %d: due at once, want after the backoff", i+1)
			}
			clk.Advance(want - time.Millisecond)
			if d, _ := ob.Claim(ctx, 10); len(d) != 0 {
				t.Fatalf("failure %d: due 1ms early", i+1)
			}
			clk.Advance(time.Millisecond)
			if d, _ := ob.Claim(ctx, 10); len(d) != 1 {
				t.Fatalf("failure %d: not due after the backoff", i+1)
			}
		}
		if st, _ := ob.Stats(ctx); st.Retrying != 1 || st.Pending != 1 {
			t.Fatalf("stats while retrying = %+v", st)
		}
		f, err := ob.MarkFailed(ctx, id, errors.New("still down"))
		if err != nil {
			t.Fatal(err)
		}
		if !f.Dead || f.Attempts != 4 {
			t.Fatalf("4th failure = %+v, want dead", f)
		}
		e, _ := ob.FindEmail(ctx, id)
		// A dead message keeps its bodies for an operator's retry (RetryDead).
		if e.DeadAt.IsZero() || e.HTML != "h" || e.Text != "t" || e.LastError != "still down" || e.Attempts != 4 {
			t.Fatalf("dead row = %+v", e)
		}
		if d, _ := ob.Claim(ctx, 10); len(d) != 0 {
			t.Fatal("a dead message is due")
		}
		if _, err := ob.MarkFailed(ctx, id, errors.New("x")); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("MarkFailed on a dead message: %v, want ErrNotFound", err)
		}
		if st, _ := ob.Stats(ctx); st.Dead != 1 || st.Pending != 0 || !st.OldestPending.IsZero() {
			t.Fatalf("stats after dead = %+v", st)
		}
	})

	t.Run("BackoffCapAndJitter", func(t *testing.T) {
		lo := models.NewOutbox(nil, models.OutboxConfig{Rand: func() float64 { return 0 }})
		hi := models.NewOutbox(nil, models.OutboxConfig{Rand: func() float64 { return 0.999999 }})
		mid := models.NewOutbox(nil, models.OutboxConfig{Rand: func() float64 { return 0.5 }})
		if got := mid.Backoff(1); got != 5*time.Second {
			t.Errorf("Backoff(1) = %v", got)
		}
		if got := mid.Backoff(9); got != 15*time.Minute {
			t.Errorf("Backoff(9) = %v, want the 15m cap", got)
		}
		if got := mid.Backoff(1000); got != 15*time.Minute {
			t.Errorf("Backoff(1000) = %v", got)
		}
		if got := lo.Backoff(1); got != 4*time.Second {
			t.Errorf("Backoff(1) with jitter -20%% = %v", got)
		}
		if got := hi.Backoff(20); got < 17*time.Minute+59*time.Second || got > 18*time.Minute {
			t.Errorf("capped Backoff with jitter +20%% = %v", got)
		}
	})

	t.Run("ErrorIsSanitized", func(t *testing.T) {
		t.Parallel()
		db := openOutboxDB(t)
		clk := newOutboxClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "reset-password", To: "a@example.com", Subject: "A", HTML: "h", Text: "t"})
		due, _ := ob.Claim(ctx, 10)
		tok := models.NewTokenID()
		f, err := ob.MarkFailed(ctx, due[0].ID, errors.New("554 rejected\r\nhttp://x/reset-password?access_token="+tok+" "+strings.Repeat("é", 400)))
		if err != nil {
			t.Fatal(err)
		}
		e, _ := ob.FindEmail(ctx, due[0].ID)
		if strings.Contains(e.LastError, tok) || !strings.Contains(e.LastError, "access_token=[REDACTED]") ||
			strings.ContainsAny(e.LastError, "\r\n") || len(e.LastError) > 500 || e.LastError != f.LastError {
			t.Fatalf("last_error = %q", e.LastError)
		}
	})

	t.Run("PruneSent", func(t *testing.T) {
		t.Parallel()
		db := openOutboxDB(t)
		clk := newOutboxClock()
		ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now})
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "k", To: "a@example.com", Subject: "A"})
		enqueueAt(t, db, clk.Now(), models.Email{Kind: "k", To: "b@example.com", Subject: "B"})
		due, _ := ob.Claim(ctx, 10)
		_ = ob.MarkSent(ctx, due[0].ID)
		clk.Advance(time.Hour)
		n, err := ob.PruneSent(ctx, clk.Now(), 100)
		if err != nil || n != 1 {
			t.Fatalf("PruneSent = %d, %v; want 1", n, err)
		}
		if st, _ := ob.Stats(ctx); st.Pending != 1 || st.Sent != 0 {
			t.Fatalf("stats after prune = %+v", st)
		}
	})
}

// TestOutboxRetryDead: the dead list shows why each message died and
// whether it can be sent again; a retry puts a message that died of failed
// attempts back in the queue, due at once with a fresh count, audited on
// the recipient's account with the actor; one whose link expired
// (MarkDead cleared it) cannot be retried, nor can a pending one.
func TestOutboxRetryDead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, db, clk := newUsersDB(t, models.Config{})
	ann := mustCreate(t, u, "email", "Ann@example.com", "password", "ann-secret-1")
	ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now, MaxAttempts: 2})
	enqueueAt(t, db, clk.Now(), models.Email{Kind: "password-changed", To: "ann@example.com", Subject: "A", HTML: "<p>a</p>", Text: "a"})
	enqueueAt(t, db, clk.Now(), models.Email{Kind: "reset-password", To: "nobody@example.com", Subject: "B", HTML: "<p>b</p>", Text: "b"})
	enqueueAt(t, db, clk.Now(), models.Email{Kind: "verify-email", To: "ann@example.com", Subject: "C", HTML: "<p>c</p>", Text: "c"})
	due, err := ob.Claim(ctx, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("claim: %v %v", due, err)
	}
	failed, expired, pending := due[0].ID, due[1].ID, due[2].ID
	for range 2 {
		if _, err := ob.MarkFailed(ctx, failed, errors.New("550 mailbox unavailable")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
	}
	if err := ob.MarkDead(ctx, expired, "expired before it could be delivered"); err != nil {
		t.Fatal(err)
	}
	if err := ob.Release(ctx, []int64{pending}); err != nil {
		t.Fatal(err)
	}

	dead, err := ob.ListDead(ctx, 10)
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead list: %+v %v", dead, err)
	}
	if d := dead[0]; d.ID != expired || d.Retryable || d.LastError != "expired before it could be delivered" || d.Kind != "reset-password" {
		t.Errorf("newest dead = %+v", d)
	}
	if d := dead[1]; d.ID != failed || !d.Retryable || d.Attempts != 2 || d.LastError != "550 mailbox unavailable" ||
		d.To != "ann@example.com" || d.DeadAt.IsZero() || d.Created.IsZero() {
		t.Errorf("older dead = %+v", d)
	}

	t.Run("ErrMailCleared", func(t *testing.T) {
		if _, err := ob.RetryDead(ctx, expired, cli); !errors.Is(err, models.ErrMailCleared) {
			t.Fatalf("retry of a cleared message: %v", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []int64{pending, 9999} {
			if _, err := ob.RetryDead(ctx, id, cli); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("retry of %d: %v, want ErrNotFound", id, err)
			}
		}
	})
	t.Run("OK", func(t *testing.T) {
		admin := models.ClientMeta{IP: "192.0.2.9", Actor: models.AdminActor(42)}
		e, err := ob.RetryDead(ctx, failed, admin)
		if err != nil || e.ID != failed || e.HTML != "" || e.Text != "" {
			t.Fatalf("retry: %+v %v", e, err)
		}
		if a := lastAudit(t, u, ann.ID); a.Kind != "mail.retried" || a.Actor != "admin:42" || !strings.Contains(a.Detail, "password-changed") {
			t.Errorf("audit = %+v", a)
		}
		got, err := ob.Claim(ctx, 10)
		if err != nil || len(got) != 2 || got[1].ID != failed || got[1].Attempts != 0 || got[1].HTML != "<p>a</p>" {
			t.Fatalf("after the retry, due: %+v %v", got, err)
		}
		if st, _ := ob.Stats(ctx); st.Dead != 1 || st.Pending != 2 {
			t.Errorf("stats = %+v", st)
		}
		if _, err := ob.RetryDead(ctx, failed, admin); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("second retry: %v", err)
		}
	})
}

func TestSanitizeError(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"dial tcp: connection refused", "dial tcp: connection refused"},
		{"a\nb\tc\x00d", "a b cd"},
		{strings.Repeat("f", 128) + " token", "[REDACTED] token"},
		{"short abc123 ok", "short abc123 ok"},
	} {
		if got := models.SanitizeError(c.in, 100); got != c.want {
			t.Errorf("SanitizeError(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := models.SanitizeError("ééé", 3); got != "é" {
		t.Errorf("cut inside a rune: %q", got)
	}
}
