package boot

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/latchkey/latchkey/models"
)

// TestWebhookSignSpecVector: our signature is the Standard Webhooks
// spec's published test vector, and the library verifies what we send.
func TestWebhookSignSpecVector(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := webhookSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	s := NewWebhookSender(key, nil)
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want the spec's %s", got, want)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", got)
	if err := wh.VerifyIgnoringTimestamp([]byte(`{"test": 2432232314}`), h); err != nil {
		t.Fatalf("library refuses our signature: %v", err)
	}
	if key.String() != "[redacted]" || WebhookSecret(nil).String() != "" {
		t.Errorf("secret prints as %q", key.String())
	}
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string // error substring; "" for none
	}{
		{map[string]string{}, ""},
		{map[string]string{"LATCHKEY_WEBHOOK_URL": "https://app.example.com/hooks"}, "LATCHKEY_WEBHOOK_SECRET: required"},
		{map[string]string{"LATCHKEY_WEBHOOK_URL": "http://app.example.com/hooks", "LATCHKEY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "want https"},
		{map[string]string{"LATCHKEY_WEBHOOK_URL": "https://a.example.com,http://127.0.0.1:9/h", "LATCHKEY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, ""},
		{map[string]string{"LATCHKEY_WEBHOOK_URL": "https://a.example.com", "LATCHKEY_WEBHOOK_SECRET": "hunter2-hunter2-hunter2-hunter2"}, "want whsec_"},
		{map[string]string{"LATCHKEY_WEBHOOK_URL": "https://a.example.com", "LATCHKEY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "LATCHKEY_WEBHOOK_EVENTS": "user.created,user.exploded"}, "unknown event \"user.exploded\""},
		{map[string]string{"LATCHKEY_RESET_DELIVERY": "webhook"}, "needs LATCHKEY_WEBHOOK_URL"},
		{map[string]string{"LATCHKEY_RESET_DELIVERY": "pigeon"}, "want one of mail, webhook"},
	}
	for _, c := range cases {
		cfg, err := LoadConfig(nil, func(k string) string { return c.env[k] }, io.Discard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: %v, want %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the secret: %v", err)
		}
		if c.want == "" && len(c.env) > 0 && (len(cfg.Webhook.URLs) != 2 || len(cfg.Webhook.Secret) != 24) {
			t.Errorf("parsed %+v", cfg.Webhook)
		}
	}
}

// flakyReceiver answers 503 while down, else verifies with the library and
// counts each webhook-id.
type flakyReceiver struct {
	mu       sync.Mutex
	down     bool
	attempts int
	got      map[string]int
	bad      int
}

func (f *flakyReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wh, _ := standardwebhooks.NewWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if wh.Verify(body, r.Header) != nil {
		f.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.got[r.Header.Get("webhook-id")]++
	w.WriteHeader(http.StatusOK)
}

// TestWebhookOutage: while the receiver answers 503 the delivery is retried
// with the outbox's backoff (the change itself committed at once); once
// the receiver is back it is delivered exactly once, with the same
// webhook-id. A receiver that never comes back makes the delivery dead
// after MaxAttempts, counted apart from mail in the outbox stats.
func TestWebhookOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWorkerDB(t)
	clk := newClock()
	rcv := &flakyReceiver{down: true, got: map[string]int{}}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	users := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 10}), nil, models.Config{Now: clk.Now})
	key, _ := webhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	registerWebhooks(users, WebhookConfig{URLs: []string{srv.URL}, Secret: key, ResetDelivery: "mail"}, "https://id.example.com", nil)
	ob := models.NewOutbox(db, models.OutboxConfig{Now: clk.Now, MaxAttempts: 4, BaseDelay: time.Second, Jitter: -1})
	w := NewOutboxWorker(ob, withWebhooks(nil, WebhookConfig{Secret: key}, nil), nil, WorkerConfig{})

	u, err := users.CreateAccount(ctx, models.NewAccount{Email: "cat@example.com", Password: "cat-secret-1"}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	stats := func() models.WebhookStats {
		st, err := ob.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending+st.Sent+st.Dead != 0 {
			t.Errorf("webhooks counted as mail: %+v", st)
		}
		return st.Webhooks
	}
	for i := range 2 {
		if n, err := w.RunOnce(ctx); n != 1 || err != nil {
			t.Fatalf("round %d: %d %v", i, n, err)
		}
		if st := stats(); st.Pending != 1 || st.Retrying != 1 {
			t.Fatalf("during the outage %+v", st)
		}
		if n, _ := w.RunOnce(ctx); n != 0 {
			t.Fatalf("retried before its backoff")
		}
		clk.Advance(time.Duration(1<<i) * time.Second)
	}
	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	if n, err := w.RunOnce(ctx); n != 1 || err != nil {
		t.Fatalf("after recovery: %d %v", n, err)
	}
	clk.Advance(time.Hour)
	if n, _ := w.RunOnce(ctx); n != 0 {
		t.Fatal("sent again after it was delivered")
	}
	if st := stats(); st.Pending != 0 || st.Sent != 1 {
		t.Fatalf("after recovery %+v", st)
	}
	rcv.mu.Lock()
	if len(rcv.got) != 1 || rcv.attempts != 3 || rcv.bad != 0 {
		t.Errorf("receiver saw %v in %d attempts, %d refused", rcv.got, rcv.attempts, rcv.bad)
	}
	rcv.down = true
	rcv.mu.Unlock()

	// Never back: dead after MaxAttempts (4 attempts, 1+2+4 s of backoff).
	if _, err := users.DisableUser(ctx, u.ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if n, _ := w.RunOnce(ctx); n != 1 {
			t.Fatal("not retried")
		}
		clk.Advance(time.Minute)
	}
	if st := stats(); st.Dead != 1 || st.Pending != 0 {
		t.Fatalf("after giving up %+v", st)
	}
}
