package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/pquerna/otp/totp"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// ---- the app, served for real ----------------------------------------------

const testBaseURL = "https://latchkey.example"

type testApp struct {
	t      *testing.T
	app    *App
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *testkit.SyncBuffer
	outbox *models.Outbox
	once   sync.Once
}

// startApp builds the app as Run does (boot.New) on dbPath with SMTP at
// 127.0.0.1:smtpPort and serves it on a loopback port.
func startApp(t *testing.T, dbPath string, smtpPort int, clk *testkit.Clock) *testApp {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DB = dbPath
	cfg.BaseURL = testBaseURL
	cfg.SMTP.Host = "127.0.0.1"
	cfg.SMTP.Port = smtpPort
	cfg.SMTP.From = "Latchkey <noreply@latchkey.example>"
	cfg.BcryptCost = 4 // the cost itself is tested in models
	cfg.ShutdownTimeout = 5 * time.Second
	logs := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := New(ctx, cfg, log, clk.Now)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ta := &testApp{t: t, app: app, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1), logs: logs,
		outbox: models.NewOutbox(app.DB, models.OutboxConfig{Now: clk.Now})}
	go func() { ta.done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		ta.stop()
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	return ta
}

// stop shuts the app down as SIGTERM does and waits for it (idempotent).
func (a *testApp) stop() {
	a.once.Do(func() {
		a.cancel()
		select {
		case err := <-a.done:
			if err != nil {
				a.t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			a.t.Error("app did not stop within 20s")
		}
	})
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

// do sends a real HTTP request; headers are "Name: value", "Host: x" sets the Host.
func (a *testApp) do(method, path, body string, headers ...string) httpResult {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpResult{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (a *testApp) must(status int, method, path, body string, headers ...string) httpResult {
	a.t.Helper()
	r := a.do(method, path, body, headers...)
	if r.status != status {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, status)
	}
	return r
}

func (a *testApp) signup(email, password string) int64 {
	a.t.Helper()
	r := a.must(200, "POST", "/api/users", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	var u struct{ ID int64 }
	if err := json.Unmarshal([]byte(r.body), &u); err != nil {
		a.t.Fatal(err)
	}
	return u.ID
}

func (a *testApp) login(email, password string) string {
	a.t.Helper()
	r := a.must(200, "POST", "/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	var tok struct{ ID string }
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil {
		a.t.Fatal(err)
	}
	return tok.ID
}

// waitOutbox polls the outbox until cond holds (bounded).
func (a *testApp) waitOutbox(cond func(models.OutboxStats) bool, within time.Duration) models.OutboxStats {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := a.outbox.Stats(context.Background())
		if err != nil {
			a.t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("outbox never reached the wanted state; last %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newClock is a settable clock shared by the app and the worker, starting now
// (to the millisecond).
func newClock() *testkit.Clock { return testkit.NewClock(time.Now().UTC().Truncate(time.Millisecond)) }

var (
	resetLinkRE = regexp.MustCompile(regexp.QuoteMeta(testBaseURL) + `/reset-password\?access_token=([A-Za-z0-9]{64})`)
	secretRunRE = regexp.MustCompile(`[A-Za-z0-9]{32,}`)
	confirmRE   = regexp.MustCompile(regexp.QuoteMeta(testBaseURL) + `/api/users/confirm\?uid=(\d+)&redirect=%2Fverified&token=([0-9a-f]{128})`)
)

// resetToken checks a reset mail and returns the token of its link.
func resetToken(t *testing.T, m smtptest.Message, to string) string {
	t.Helper()
	if len(m.To) != 1 || m.To[0] != to {
		t.Fatalf("RCPT TO %v, want %s", m.To, to)
	}
	if got := m.Header.Get("To"); !strings.Contains(got, to) {
		t.Fatalf("To: %q", got)
	}
	if m.From != `"Latchkey" <noreply@latchkey.example>` && m.From != "Latchkey <noreply@latchkey.example>" {
		t.Fatalf("From: %q", m.From)
	}
	if m.Subject != "Reset your password" {
		t.Fatalf("Subject: %q", m.Subject)
	}
	if m.Text == "" || m.HTML == "" {
		t.Fatalf("want both parts; text %d bytes, html %d bytes", len(m.Text), len(m.HTML))
	}
	tm := resetLinkRE.FindStringSubmatch(m.Text)
	hm := resetLinkRE.FindStringSubmatch(html.UnescapeString(m.HTML))
	if tm == nil || hm == nil || tm[1] != hm[1] {
		t.Fatalf("reset link not found in both parts:\n%s\n%s", m.Text, m.HTML)
	}
	if !strings.Contains(m.HTML, `href="`+tm[0]+`"`) {
		t.Fatalf("HTML has no clickable link to %s", tm[0])
	}
	if !strings.Contains(m.Text, "15 minutes") || !strings.Contains(m.Text, "did not ask") {
		t.Fatalf("text body misses the expiry or the ignore note:\n%s", m.Text)
	}
	if m.MessageID == "" {
		t.Fatal("no Message-ID")
	}
	return tm[1]
}

// TestResetJourneyOverSMTP follows the reset link from a mail that go-mail
// delivered over TCP to an SMTP server.
func TestResetJourneyOverSMTP(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	id := a.signup("bob@example.com", "bob-pw-1-long")
	userPath := fmt.Sprintf("/api/users/%d", id)
	s1 := a.login("bob@example.com", "bob-pw-1-long")
	s2 := a.login("Bob@Example.com", "bob-pw-1-long")

	start := time.Now()
	r := a.must(204, "POST", "/api/users/reset", `{"email":"bob@example.com"}`,
		"Host: evil.test", "X-Forwarded-Host: evil.test", "X-Forwarded-Proto: http", "Origin: http://evil.test")
	answered := time.Since(start)
	if r.body != "" {
		t.Fatalf("reset body %q, want empty", r.body)
	}
	m1 := sink.Next(t, 5*time.Second)
	t.Logf("POST /reset answered in %v; mail received %v after the request", answered.Round(time.Microsecond), m1.At.Sub(start).Round(time.Microsecond))
	tok1 := resetToken(t, m1, "bob@example.com")
	if strings.Contains(m1.Text+m1.HTML, "evil.test") {
		t.Fatal("the Host header leaked into the mail")
	}
	if !strings.HasPrefix(m1.MessageID, "<latchkey.") || !strings.HasSuffix(m1.MessageID, "@latchkey.example>") {
		t.Fatalf("Message-ID %q", m1.MessageID)
	}

	// The reset token is not a session.
	a.must(401, "GET", userPath, "", "Authorization: "+tok1)
	// A newer request makes the older link useless (a minute later: one
	// reset mail per address per minute, SECURITY R8).
	clk.Advance(time.Minute)
	a.must(204, "POST", "/api/users/reset", `{"email":"BOB@example.com"}`)
	tok2 := resetToken(t, sink.Next(t, 5*time.Second), "bob@example.com")
	if tok2 == tok1 {
		t.Fatal("same token twice")
	}
	a.must(401, "POST", "/api/users/reset-password?access_token="+tok1, `{"newPassword":"bob-pw-2-long"}`)

	// Follow the newest link.
	a.must(204, "POST", "/api/users/reset-password?access_token="+tok2, `{"newPassword":"bob-pw-2-long"}`)
	a.must(401, "POST", "/api/users/reset-password?access_token="+tok2, `{"newPassword":"bob-pw-3-long"}`) // single use
	for _, s := range []string{s1, s2} {
		a.must(401, "GET", userPath, "", "Authorization: "+s)
	}
	a.must(401, "POST", "/api/users/login", `{"email":"bob@example.com","password":"bob-pw-1-long"}`)
	s3 := a.login("bob@example.com", "bob-pw-2-long")
	a.must(200, "GET", userPath, "", "Authorization: "+s3)

	// The notice: no token, no secret link, a way to start a reset.
	n := sink.Next(t, 5*time.Second)
	if n.Subject != "Your password was changed" || len(n.To) != 1 || n.To[0] != "bob@example.com" || n.Text == "" || n.HTML == "" {
		t.Fatalf("notice: subject %q to %v, text %d bytes, html %d bytes", n.Subject, n.To, len(n.Text), len(n.HTML))
	}
	for _, part := range []string{n.Text, n.HTML} {
		if strings.Contains(part, tok2) || strings.Contains(part, "access_token") || secretRunRE.MatchString(part) {
			t.Fatalf("notice carries something secret-shaped:\n%s", part)
		}
		if !strings.Contains(part, testBaseURL+"/request-password-reset") || !strings.Contains(part, "wasn't you") {
			t.Fatalf("notice lacks the way back:\n%s", part)
		}
	}
	if !strings.Contains(n.Text, "reset with an emailed link") {
		t.Fatalf("notice does not say why:\n%s", n.Text)
	}
	sink.NoMore(t, 100*time.Millisecond)

	// Sent mail keeps no body; nothing is pending.
	st := a.waitOutbox(func(s models.OutboxStats) bool { return s.Sent == 3 }, 5*time.Second)
	if st.Pending != 0 || st.Dead != 0 {
		t.Fatalf("outbox %+v", st)
	}
	var bodies int
	if err := a.app.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE html != '' OR text != ''`).Scan(&bodies); err != nil || bodies != 0 {
		t.Fatalf("%d sent messages still hold a body (%v)", bodies, err)
	}

	// Nothing secret in the log, at any level.
	logs := a.logs.String()
	for _, secret := range []string{tok1, tok2, s1, s2, s3, "bob-pw-1-long", "bob-pw-2-long"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds a secret %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "mail sent") {
		t.Fatalf("no 'mail sent' line in the log:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=INFO") && strings.Contains(line, "mail") && strings.Contains(line, "bob@example.com") {
			t.Fatalf("recipient at info level: %s", line)
		}
	}
}

// TestResetTokenExpiresOverSMTP: the mailed link stops working after the reset TTL.
func TestResetTokenExpiresOverSMTP(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	a.signup("carol@example.com", "lorac-pw-1-long")
	a.must(204, "POST", "/api/users/reset", `{"email":"carol@example.com"}`)
	tok := resetToken(t, sink.Next(t, 5*time.Second), "carol@example.com")
	clk.Advance(15 * time.Minute)
	a.must(401, "POST", "/api/users/reset-password", `{"newPassword":"lorac-pw-2-long"}`, "Authorization: "+tok)
	a.must(200, "POST", "/api/users/login", `{"email":"carol@example.com","password":"lorac-pw-1-long"}`)
	sink.NoMore(t, 100*time.Millisecond) // no "changed" notice
}

// TestVerifyMailOverSMTP: the confirm link from the mail verifies the address.
func TestVerifyMailOverSMTP(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	id := a.signup("dave@example.com", "evad-pw-1-long")
	s := a.login("dave@example.com", "evad-pw-1-long")
	a.must(204, "POST", fmt.Sprintf("/api/users/%d/verify", id), "", "Authorization: "+s, "Host: evil.test")
	m := sink.Next(t, 5*time.Second)
	if m.Subject != "Thanks for Registering" || len(m.To) != 1 || m.To[0] != "dave@example.com" || m.Text == "" || m.HTML == "" {
		t.Fatalf("verify mail: %q to %v", m.Subject, m.To)
	}
	tm := confirmRE.FindStringSubmatch(m.Text)
	hm := confirmRE.FindStringSubmatch(html.UnescapeString(m.HTML))
	if tm == nil || hm == nil || tm[0] != hm[0] || tm[1] != strconv.FormatInt(id, 10) {
		t.Fatalf("confirm link not in both parts:\n%s\n%s", m.Text, m.HTML)
	}
	link := strings.TrimPrefix(tm[0], testBaseURL)
	r := a.must(302, "GET", link, "")
	if r.header.Get("Location") != DefaultVerifyRedirect {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	u := a.must(200, "GET", fmt.Sprintf("/api/users/%d", id), "", "Authorization: "+s)
	if !strings.Contains(u.body, `"emailVerified":true`) {
		t.Fatalf("user after confirm: %s", u.body)
	}
	a.must(400, "GET", link, "") // single use
	if strings.Contains(a.logs.String(), tm[2]) {
		t.Fatal("the verification token is in the log")
	}
}

// TestEmailChangeNoticeOverSMTP: SECURITY L8 — after an address change the
// old address is told, with the new one named and no link or token in it;
// the new address gets nothing unasked.
func TestEmailChangeNoticeOverSMTP(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	a := startApp(t, testdb.DSN(t), sink.Port(), newClock())
	id := a.signup("gina@example.com", "anig-pw-1-long")
	s := a.login("gina@example.com", "anig-pw-1-long")
	a.must(200, "PATCH", fmt.Sprintf("/api/users/%d", id), `{"email":"gina.new@example.com"}`, "Authorization: "+s)
	m := sink.WaitFor(t, "gina@example.com", "email address was changed", 5*time.Second)
	for _, part := range []string{m.Text, html.UnescapeString(m.HTML)} {
		if !strings.Contains(part, "gina.new@example.com") || strings.Contains(part, "http") || strings.Contains(part, s) {
			t.Fatalf("notice should name the new address and carry no link or token:\n%s", part)
		}
	}
	sink.NoMore(t, 200*time.Millisecond)
	// A PATCH that leaves the address alone sends nothing.
	a.must(200, "PATCH", fmt.Sprintf("/api/users/%d", id), `{"nickname":"gi"}`, "Authorization: "+s)
	sink.NoMore(t, 200*time.Millisecond)
}

// TestMailSurvivesSMTPOutage: with the mail server down the API answers the
// same, the message waits in the outbox with its failures counted, and it is
// delivered when the server comes back — also after the app restarts.
func TestMailSurvivesSMTPOutage(t *testing.T) {
	t.Parallel()
	// A port with nobody listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := ln.Addr().String()
	ln.Close()
	_, p, _ := net.SplitHostPort(smtpAddr)
	port, _ := strconv.Atoi(p)

	dbPath := testdb.DSN(t)
	clk := newClock()
	a := startApp(t, dbPath, port, clk)
	a.signup("erin@example.com", "nire-pw-1-long")
	a.signup("frank@example.com", "knarf-pw-1-long")

	start := time.Now()
	r := a.must(204, "POST", "/api/users/reset", `{"email":"erin@example.com"}`)
	unknown := a.must(204, "POST", "/api/users/reset", `{"email":"nobody@example.com"}`)
	if r.body != "" || unknown.body != "" || r.header.Get("Content-Type") != unknown.header.Get("Content-Type") {
		t.Fatalf("known and unknown answers differ while SMTP is down: %q %q", r.body, unknown.body)
	}
	t.Logf("POST /reset with SMTP down answered in %v", time.Since(start).Round(time.Microsecond))
	st := a.waitOutbox(func(s models.OutboxStats) bool { return s.Retrying == 1 }, 5*time.Second)
	if st.Pending != 1 || st.Sent != 0 {
		t.Fatalf("outbox %+v", st)
	}
	var e models.Email
	if err := a.app.DB.QueryRow(context.Background(), `SELECT id, attempts, last_error, html FROM outbox`).Scan(&e.ID, &e.Attempts, &e.LastError, &e.HTML); err != nil {
		t.Fatal(err)
	}
	if e.Attempts < 1 || e.LastError == "" || e.HTML == "" {
		t.Fatalf("queued row: attempts %d, last_error %q, html kept %v", e.Attempts, e.LastError, e.HTML != "")
	}
	t.Logf("stored error: %s", e.LastError)
	// The warning is written after the row; the log is flushed in batches.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(a.logs.String(), "will retry"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no retry warning in the log:\n%s", a.logs.String())
		}
	}

	t.Run("delivered when the server comes back", func(t *testing.T) {
		sink := smtptest.StartAt(t, smtpAddr)
		clk.Advance(time.Minute) // past the backoff (5s ± 20%)
		tok := resetToken(t, sink.Next(t, 5*time.Second), "erin@example.com")
		a.must(204, "POST", "/api/users/reset-password", `{"newPassword":"nire-pw-2-long"}`, "X-Access-Token: "+tok)
		sink.Next(t, 5*time.Second) // the notice
		// Close only once both are recorded as sent: closing between the
		// server's receipt and its "250" would (rightly, at least once)
		// send the notice again to the next server.
		a.waitOutbox(func(s models.OutboxStats) bool { return s.Pending == 0 && s.Sent == 2 }, 5*time.Second)
		sink.Close()
	})

	t.Run("delivered after a restart", func(t *testing.T) {
		a.must(204, "POST", "/api/users/reset", `{"email":"frank@example.com"}`)
		a.waitOutbox(func(s models.OutboxStats) bool { return s.Retrying == 1 }, 5*time.Second)
		a.stop() // as SIGTERM: the message is still pending in the file

		sink := smtptest.StartAt(t, smtpAddr)
		clk.Advance(time.Minute)
		b := startApp(t, dbPath, port, clk)
		tok := resetToken(t, sink.Next(t, 5*time.Second), "frank@example.com")
		b.must(204, "POST", "/api/users/reset-password", `{"newPassword":"knarf-pw-2-long"}`, "X-Access-Token: "+tok)
		b.login("frank@example.com", "knarf-pw-2-long")
		sink.Next(t, 5*time.Second) // the notice
		b.waitOutbox(func(s models.OutboxStats) bool { return s.Pending == 0 && s.Sent == 4 }, 5*time.Second)
	})
}

// TestM6FactorNoticesOverSMTP: turning two-step verification on and off
// mails the account's address a notice naming the change, with no secret
// of the factor (the TOTP key, a recovery code) in it. (Asking for the
// current password first is tested with the pages.)
func TestM6FactorNoticesOverSMTP(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sink := smtptest.Start(t)
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	a.signup("mona@example.com", "anom-pw-1-long")
	sess, err := a.app.Users.Authenticate(ctx, a.login("mona@example.com", "anom-pw-1-long"), models.ScopeSession)
	if err != nil || sess == nil {
		t.Fatal(err)
	}
	e, err := a.app.Users.BeginTOTP(ctx, sess, "Latchkey")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(e.Secret, clk.Now())
	codes, err := a.app.Users.ConfirmTOTP(ctx, sess, code, models.ClientMeta{IP: "192.0.2.66"})
	if err != nil {
		t.Fatal(err)
	}
	on := sink.WaitFor(t, "mona@example.com", "was added", 5*time.Second)
	if err := a.app.Users.DisableTOTP(ctx, sess, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	off := sink.WaitFor(t, "mona@example.com", "was removed", 5*time.Second)
	for _, m := range []smtptest.Message{on, off} {
		for _, part := range []string{m.Text, html.UnescapeString(m.HTML)} {
			if !strings.Contains(part, "Two-step verification with an authenticator app") || strings.Contains(part, e.Secret) ||
				strings.Contains(part, codes[0]) || strings.Contains(part, "otpauth://") {
				t.Fatalf("a factor notice should name the change and carry no secret:\n%s", part)
			}
		}
	}
	if !strings.Contains(on.Text, "192.0.2.66") {
		t.Errorf("the notice does not say where the change came from:\n%s", on.Text)
	}
}
