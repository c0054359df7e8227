package boot_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views/email"
)

// testWebhookSecret is a whsec_ secret of 32 bytes.
const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="

// hookEvent is one delivery as the receiver saw it.
type hookEvent struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
	raw       string
}

// receiver is a webhook endpoint that verifies every delivery with the
// Standard Webhooks library and records the ones it accepts; fail makes it
// answer 503 without recording.
type receiver struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	events  []hookEvent
	bad     []string
	fail    bool
	attempt int
	arrived chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	wh, err := standardwebhooks.NewWebhook(testWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, arrived: make(chan struct{}, 1000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempt++
		if r.fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if err := wh.Verify(body, req.Header); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get("webhook-id") {
			r.bad = append(r.bad, "body "+string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ev.raw = string(body)
		r.events = append(r.events, ev)
		w.WriteHeader(http.StatusNoContent)
		r.arrived <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setFail(on bool) {
	r.mu.Lock()
	r.fail = on
	r.mu.Unlock()
}

func (r *receiver) snapshot() ([]hookEvent, []string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookEvent(nil), r.events...), append([]string(nil), r.bad...), r.attempt
}

// waitFor waits until an event of type typ has arrived and returns the
// last one.
func (r *receiver) waitFor(typ string) hookEvent {
	r.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		evs, _, _ := r.snapshot()
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Type == typ {
				return evs[i]
			}
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("no %s delivered; got %v", typ, types(evs))
		}
	}
}

func types(evs []hookEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// serveApp builds the app with env and serves it (worker included) until
// the test ends; it returns the app and its base URL.
func serveApp(t testing.TB, env map[string]string) (*boot.App, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	env["LATCHKEY_BASE_URL"] = base
	app := newTestApp(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return app, base
}

// request sends a JSON request to the served app.
func request(t testing.TB, method, u, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// TestWebhookJourney: a scripted journey (sign-up, verify, login, password
// change, email change by PATCH, logout, identity link and unlink,
// disable and enable, login, delete) delivers every event exactly once,
// each signed (checked with the Standard Webhooks Go library), with the
// user as the API shows it and no password, hash or token in any body.
// The verification link comes by webhook (LATCHKEY_RESET_DELIVERY=webhook)
// and no mail is queued for it.
func TestWebhookJourney(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	app, base := serveApp(t, map[string]string{
		"LATCHKEY_WEBHOOK_URL":    rcv.srv.URL + "/hooks?tenant=a",
		"LATCHKEY_WEBHOOK_SECRET": testWebhookSecret,
		"LATCHKEY_RESET_DELIVERY": "webhook",
	})
	ctx := context.Background()
	meta := models.ClientMeta{IP: "192.0.2.1"}

	st, u := request(t, "POST", base+"/api/users", `{"email":"ann@example.com","password":"ann-secret-1"}`)
	if st != 200 {
		t.Fatalf("sign-up %d %v", st, u)
	}
	id := int64(u["id"].(float64))
	uid := strconv.FormatInt(id, 10)
	login := func(pw string) string {
		st, tok := request(t, "POST", base+"/api/users/login", `{"email":"ann@example.com","password":"`+pw+`"}`)
		if st != 200 {
			t.Fatalf("login %d %v", st, tok)
		}
		return tok["id"].(string)
	}
	tok := login("ann-secret-1")
	if st, _ := request(t, "POST", base+"/api/users/"+uid+"/verify", "", "Authorization", tok); st != 204 {
		t.Fatalf("verify %d", st)
	}
	link := rcv.waitFor(boot.EventVerificationRequested).Data["link"].(string)
	if !strings.HasPrefix(link, base+"/api/users/confirm?uid="+uid) {
		t.Fatalf("verification link %q", link)
	}
	if st, _ := request(t, "GET", link, ""); st != http.StatusFound && st != http.StatusSeeOther {
		t.Fatalf("confirm %d", st)
	}
	if st, _ := request(t, "POST", base+"/api/users/change-password", `{"oldPassword":"ann-secret-1","newPassword":"ann-secret-2"}`, "Authorization", tok); st != 204 {
		t.Fatalf("change-password %d", st)
	}
	if st, b := request(t, "PATCH", base+"/api/users/"+uid, `{"email":"ann.new@example.com"}`, "Authorization", tok); st != 200 {
		t.Fatalf("patch %d %v", st, b)
	}
	if st, _ := request(t, "POST", base+"/api/users/logout", "", "Authorization", tok); st != 204 {
		t.Fatalf("logout %d", st)
	}
	if err := app.Users.LinkIdentity(ctx, id, models.ExternalAccount{Provider: "github", Subject: "4242"}, meta); err != nil {
		t.Fatal(err)
	}
	ids, err := app.Users.IdentitiesOf(ctx, id)
	if err != nil || len(ids) != 1 {
		t.Fatalf("identities %v %v", ids, err)
	}
	if _, err := app.Users.UnlinkIdentity(ctx, id, ids[0].ID, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Users.DisableUser(ctx, id, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Users.EnableUser(ctx, id, meta); err != nil {
		t.Fatal(err)
	}
	st, tok2 := request(t, "POST", base+"/api/users/login", `{"email":"ann.new@example.com","password":"ann-secret-2"}`)
	if st != 200 {
		t.Fatalf("login after enable %d", st)
	}
	if st, _ := request(t, "DELETE", base+"/api/users/"+uid, "", "Authorization", tok2["id"].(string)); st != 200 {
		t.Fatalf("delete %d", st)
	}
	rcv.waitFor(models.EventUserDeleted)

	want := []string{"user.created", "session.created", "user.verification_requested", "user.email_verified",
		"user.password_changed", "user.email_changed", "session.ended", "identity.linked", "identity.unlinked",
		"user.disabled", "user.enabled", "session.created", "user.deleted"}
	// Let a duplicate, if any, arrive: the worker polls every second.
	var evs []hookEvent
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, h := request(t, "GET", base+"/healthz", ""); st == 200 && h["webhooks"].(map[string]any)["pending"] == float64(0) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	evs, bad, _ := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatalf("deliveries the library refused: %v", bad)
	}
	if got := strings.Join(types(evs), " "); got != strings.Join(want, " ") {
		t.Fatalf("events\n got %s\nwant %s", got, strings.Join(want, " "))
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] {
			t.Errorf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		user, _ := e.Data["user"].(map[string]any)
		if user["id"] != float64(id) {
			t.Errorf("%s: user %v", e.Type, e.Data["user"])
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
			t.Errorf("%s: timestamp %q", e.Type, e.Timestamp)
		}
		for _, secret := range []string{"ann-secret", `"password":`, "passwordHash", "$2", tok, tok2["id"].(string)} {
			if strings.Contains(e.raw, secret) {
				t.Errorf("%s carries %q: %s", e.Type, secret, e.raw)
			}
		}
		if e.Type != boot.EventVerificationRequested && strings.Contains(e.raw, "token") {
			t.Errorf("%s mentions a token: %s", e.Type, e.raw)
		}
	}
	if m := evs[1].Data["method"]; m != "password" {
		t.Errorf("session.created method %v", m)
	}
	if evs[5].Data["oldEmail"] != "ann@example.com" || evs[5].Data["user"].(map[string]any)["email"] != "ann.new@example.com" {
		t.Errorf("email_changed %s", evs[5].raw)
	}
	if evs[7].Data["provider"] != "github" || evs[6].Data["reason"] != "logout" {
		t.Errorf("identity.linked %s / session.ended %s", evs[7].raw, evs[6].raw)
	}
	if evs[3].Data["user"].(map[string]any)["emailVerified"] != true {
		t.Errorf("email_verified %s", evs[3].raw)
	}
	// No confirmation mail was queued: the link went to the app.
	if st, h := request(t, "GET", base+"/healthz", ""); st != 200 || h["webhooks"].(map[string]any)["dead"] != float64(0) {
		t.Errorf("healthz %v", h)
	}
	var n int
	if err := app.DB.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE kind IN ('verify-email', 'reset-password')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("link mail queued: %d %v", n, err)
	}
}

// TestWebhookResetJourney: with LATCHKEY_RESET_DELIVERY=webhook a reset
// request reaches the receiver with the link, no reset mail is queued,
// and the receiver's POST of a new password with the link's token works.
func TestWebhookResetJourney(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	app, base := serveApp(t, map[string]string{
		"LATCHKEY_WEBHOOK_URL":    rcv.srv.URL,
		"LATCHKEY_WEBHOOK_SECRET": testWebhookSecret,
		"LATCHKEY_RESET_DELIVERY": "webhook",
		"LATCHKEY_WEBHOOK_EVENTS": "user.password_changed",
	})
	if st, _ := request(t, "POST", base+"/api/users", `{"email":"bob@example.com","password":"bob-secret-1"}`); st != 200 {
		t.Fatalf("sign-up %d", st)
	}
	if st, _ := request(t, "POST", base+"/api/users/reset", `{"email":"bob@example.com"}`); st != 204 {
		t.Fatalf("reset %d", st)
	}
	ev := rcv.waitFor(boot.EventResetRequested)
	link, _ := ev.Data["link"].(string)
	if ev.Data["user"].(map[string]any)["email"] != "bob@example.com" || ev.Data["expires"] == nil {
		t.Fatalf("reset event %s", ev.raw)
	}
	lu, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, base+"/reset-password?") {
		t.Fatalf("link %q", link)
	}
	// The app's own page would ask for the password; the receiver posts it.
	token := lu.Query().Get("access_token")
	if st, b := request(t, "POST", base+"/api/users/reset-password?access_token="+url.QueryEscape(token), `{"newPassword":"bob-secret-2"}`); st != 204 {
		t.Fatalf("reset-password %d %v", st, b)
	}
	if st, _ := request(t, "POST", base+"/api/users/login", `{"email":"bob@example.com","password":"bob-secret-2"}`); st != 200 {
		t.Fatalf("login with the new password %d", st)
	}
	if got := rcv.waitFor(models.EventUserPasswordChanged); got.Data["reason"] != "reset" {
		t.Errorf("password_changed %s", got.raw)
	}
	// LATCHKEY_WEBHOOK_EVENTS left out user.created and session.created.
	evs, _, _ := rcv.snapshot()
	if got := strings.Join(types(evs), " "); got != "user.reset_requested user.password_changed" {
		t.Errorf("events %s", got)
	}
	var n int
	if err := app.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE kind = 'reset-password'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("reset mail queued: %d %v", n, err)
	}
}

// TestSlowReceiverDoesNotDelayMail: webhook deliveries have their own
// worker, so with a receiver taking 5 s per delivery and five deliveries
// queued ahead of it, a reset mail still reaches the mail server at once.
func TestSlowReceiverDoesNotDelayMail(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	stop := make(chan struct{})
	var (
		mu   sync.Mutex
		hits int
	)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		select {
		case <-time.After(5 * time.Second):
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	_, base := serveApp(t, map[string]string{
		"LATCHKEY_LOGIN_LIMIT":    "off",
		"LATCHKEY_SMTP_HOST":      "127.0.0.1",
		"LATCHKEY_SMTP_PORT":      strconv.Itoa(sink.Port()),
		"LATCHKEY_SMTP_TLS":       "none",
		"LATCHKEY_WEBHOOK_URL":    slow.URL,
		"LATCHKEY_WEBHOOK_SECRET": testWebhookSecret,
		"LATCHKEY_WEBHOOK_EVENTS": "user.created,session.created",
	})
	t.Cleanup(func() { close(stop) }) // runs before the app stops: no send in flight holds it up

	if st, _ := request(t, "POST", base+"/api/users", `{"email":"ivy@example.com","password":"ivy-secret-1"}`); st != 200 {
		t.Fatalf("sign-up %d", st)
	}
	for range 4 {
		if st, _ := request(t, "POST", base+"/api/users/login", `{"email":"ivy@example.com","password":"ivy-secret-1"}`); st != 200 {
			t.Fatalf("login %d", st)
		}
	}
	// The receiver is busy with the first delivery; four more wait.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := hits
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the receiver got no delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	asked := time.Now()
	if st, _ := request(t, "POST", base+"/api/users/reset", `{"email":"ivy@example.com"}`); st != 204 {
		t.Fatalf("reset %d", st)
	}
	m := sink.WaitFor(t, "ivy@example.com", email.ResetSubject, 3*time.Second)
	took := m.At.Sub(asked)
	t.Logf("reset mail at the SMTP server %v after the request, with 5 webhook deliveries queued ahead", took.Round(time.Millisecond))
	if took > 2*time.Second { // ~1 s in practice; the bound leaves room for a loaded machine, far below the 5 s a delivery takes
		t.Fatalf("the reset mail took %v: it waited for the webhooks", took)
	}
}
