// Package e2e runs the real latchkey binary against real services.
//
// TestMailpitResetJourney needs a running Mailpit:
//
//	LATCHKEY_MAILPIT_SMTP=127.0.0.1:1025 LATCHKEY_MAILPIT_API=http://127.0.0.1:8025 go test -run Mailpit ./e2e/
//
// Without them the test is skipped, unless LATCHKEY_E2E_REQUIRE=1 (CI), when
// it fails.
package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/internal/webtest"
)

// mailpitEnv returns the Mailpit SMTP address and API URL, skipping (or,
// with LATCHKEY_E2E_REQUIRE=1, failing) when they are not set.
func mailpitEnv(t *testing.T) (smtpHost, smtpPort, api string) {
	t.Helper()
	smtpAddr, api := os.Getenv("LATCHKEY_MAILPIT_SMTP"), strings.TrimRight(os.Getenv("LATCHKEY_MAILPIT_API"), "/")
	if smtpAddr == "" || api == "" {
		if os.Getenv("LATCHKEY_E2E_REQUIRE") == "1" {
			t.Fatal("Mailpit not configured: set LATCHKEY_MAILPIT_SMTP and LATCHKEY_MAILPIT_API (LATCHKEY_E2E_REQUIRE=1)")
		}
		t.Skip("Mailpit not configured: set LATCHKEY_MAILPIT_SMTP and LATCHKEY_MAILPIT_API")
	}
	host, port, err := net.SplitHostPort(smtpAddr)
	if err != nil {
		t.Fatalf("LATCHKEY_MAILPIT_SMTP=%q: want host:port", smtpAddr)
	}
	return host, port, api
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is the latchkey binary, running.
type server struct {
	base string
	cmd  *exec.Cmd
	out  *testkit.SyncBuffer // the binary's output
	done chan error
	once sync.Once
}

// startServer builds ./cmd/latchkey and runs it with env, waiting for /healthz.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	build := exec.Command("go", "build", "-o", bin, "github.com/latchkey/latchkey/cmd/latchkey")
	build.Stderr = os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	t.Logf("built the binary in %v", time.Since(start).Round(time.Millisecond))

	addr := freePort(t)
	s := &server{base: "http://" + addr, out: &testkit.SyncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(os.Environ(), "LATCHKEY_ADDR="+addr, "LATCHKEY_BASE_URL="+s.base)
	for k, v := range env {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("latchkey output:\n%s", s.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(s.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-s.done:
			s.done <- err // for stop
			t.Fatalf("latchkey exited during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("latchkey not healthy within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// stop sends SIGTERM and waits (then kills); idempotent.
func (s *server) stop(t *testing.T) {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("latchkey exited with %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			t.Error("latchkey did not stop within 20s of SIGTERM")
		}
	})
}

func call(t *testing.T, method, u, body string, headers ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mailpitMessage is the part of Mailpit's GET /api/v1/message/{ID} we read.
type mailpitMessage struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	HTML    string
	Text    string
}

// waitMail polls Mailpit (bounded) for a message to addr with subject and
// returns it in full.
func waitMail(t *testing.T, api, addr, subject string, within time.Duration) mailpitMessage {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get(api + "/api/v1/messages?limit=200")
		if err != nil {
			t.Fatalf("Mailpit API: %v", err)
		}
		var list struct {
			Messages []struct {
				ID      string
				Subject string
				To      []struct{ Address string }
			}
		}
		err = json.NewDecoder(res.Body).Decode(&list)
		res.Body.Close()
		if err != nil {
			t.Fatalf("Mailpit list: %v", err)
		}
		for _, m := range list.Messages {
			if m.Subject == subject && len(m.To) == 1 && strings.EqualFold(m.To[0].Address, addr) {
				res, err := http.Get(api + "/api/v1/message/" + url.PathEscape(m.ID))
				if err != nil {
					t.Fatal(err)
				}
				var full mailpitMessage
				err = json.NewDecoder(res.Body).Decode(&full)
				res.Body.Close()
				if err != nil {
					t.Fatalf("Mailpit message: %v", err)
				}
				return full
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q mail to %s in Mailpit within %v", subject, addr, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMailpitResetJourney: sign up, ask for a reset, read the mail in
// Mailpit, follow its link to set a new password, log in with it.
func TestMailpitResetJourney(t *testing.T) {
	smtpHost, smtpPort, api := mailpitEnv(t)
	s := startServer(t, map[string]string{
		"LATCHKEY_DB":        filepath.Join(t.TempDir(), "latchkey.db"),
		"LATCHKEY_SMTP_HOST": smtpHost,
		"LATCHKEY_SMTP_PORT": smtpPort,
		"LATCHKEY_SMTP_TLS":  "none",
	})
	// Mailpit may hold other runs' mail: a fresh address each time.
	addr := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	const oldPw, newPw = "e2e-old-password", "e2e-new-password"

	if st, body := call(t, "POST", s.base+"/api/users", fmt.Sprintf(`{"email":%q,"password":%q}`, addr, oldPw)); st != 200 {
		t.Fatalf("signup: %d %s", st, body)
	}
	start := time.Now()
	if st, body := call(t, "POST", s.base+"/api/users/reset", fmt.Sprintf(`{"email":%q}`, addr), "Host", "evil.test"); st != 204 || body != "" {
		t.Fatalf("reset: %d %q", st, body)
	}
	m := waitMail(t, api, addr, "Reset your password", 15*time.Second)
	t.Logf("reset mail visible in Mailpit %v after POST /api/users/reset", time.Since(start).Round(time.Millisecond))
	if m.From.Address != "noreply@localhost" || m.Text == "" || m.HTML == "" {
		t.Fatalf("mail: from %q, text %d bytes, html %d bytes", m.From.Address, len(m.Text), len(m.HTML))
	}
	linkRE := regexp.MustCompile(regexp.QuoteMeta(s.base) + `/reset-password\?access_token=([A-Za-z0-9]{64})`)
	tm, hm := linkRE.FindStringSubmatch(m.Text), linkRE.FindStringSubmatch(html.UnescapeString(m.HTML))
	if tm == nil || hm == nil || tm[1] != hm[1] {
		t.Fatalf("no reset link to %s in both parts:\n%s\n%s", s.base, m.Text, m.HTML)
	}
	link, err := url.Parse(tm[0])
	if err != nil {
		t.Fatal(err)
	}
	token := link.Query().Get("access_token")

	// The API call a LoopBack client makes with the mailed token.
	if st, body := call(t, "POST", s.base+"/api/users/reset-password?access_token="+url.QueryEscape(token), fmt.Sprintf(`{"newPassword":%q}`, newPw)); st != 204 {
		t.Fatalf("reset-password: %d %s", st, body)
	}
	if st, body := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, addr, newPw)); st != 200 {
		t.Fatalf("login with the new password: %d %s", st, body)
	}
	if st, _ := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, addr, oldPw)); st != 401 {
		t.Fatalf("login with the old password: %d, want 401", st)
	}
	if st, _ := call(t, "POST", s.base+"/api/users/reset-password?access_token="+url.QueryEscape(token), `{"newPassword":"e2e-third-password"}`); st != 401 {
		t.Fatalf("second use of the reset token: %d, want 401", st)
	}

	n := waitMail(t, api, addr, "Your password was changed", 15*time.Second)
	if strings.Contains(n.Text+n.HTML, token) || strings.Contains(n.Text+n.HTML, "access_token") {
		t.Fatal("the password-changed notice carries the token")
	}

	s.stop(t)
	if out := s.out.String(); strings.Contains(out, token) || strings.Contains(out, newPw) || strings.Contains(out, oldPw) {
		t.Fatalf("a secret is in the server's log:\n%s", out)
	}
}

// TestMailpitEmailChangeJourney: the account page's address change through
// a real mail server (SECURITY R10, L8): the link goes to the new address,
// the old one is told with a way to cancel and no secret of the account,
// the login keeps the old address until the link is used, and then the
// new one logs in and the old address is told it happened.
func TestMailpitEmailChangeJourney(t *testing.T) {
	smtpHost, smtpPort, api := mailpitEnv(t)
	s := startServer(t, map[string]string{
		"LATCHKEY_DB":        filepath.Join(t.TempDir(), "latchkey.db"),
		"LATCHKEY_SMTP_HOST": smtpHost,
		"LATCHKEY_SMTP_PORT": smtpPort,
		"LATCHKEY_SMTP_TLS":  "none",
	})
	stamp := time.Now().UnixNano()
	oldAddr, newAddr := fmt.Sprintf("e2e-old-%d@example.com", stamp), fmt.Sprintf("e2e-new-%d@example.com", stamp)
	const pw = "e2e-change-password"
	if st, body := call(t, "POST", s.base+"/api/users", fmt.Sprintf(`{"email":%q,"password":%q}`, oldAddr, pw)); st != 200 {
		t.Fatalf("signup: %d %s", st, body)
	}
	b := webtest.New(t, s.base)
	b.Submit(b.Get("/login").Is(200, "page-login"), `form[action="/login"]`, url.Values{"email": {oldAddr}, "password": {pw}}).Redirects("/")
	acct := b.Get("/account").Is(200, "page-account")
	b.Submit(acct, `form[data-testid="email-form"]`, url.Values{"newEmail": {newAddr}, "emailPassword": {pw}})

	confirm := waitMail(t, api, newAddr, "Confirm your new email address", 15*time.Second)
	notice := waitMail(t, api, oldAddr, "A change of your email address was requested", 15*time.Second)
	linkRE := regexp.MustCompile(regexp.QuoteMeta(s.base) + `/account/email/(confirm|cancel)\?token=[A-Za-z0-9_-]+`)
	confirmLink := linkRE.FindString(confirm.Text)
	if confirmLink == "" || !strings.Contains(confirmLink, "/confirm?") {
		t.Fatalf("no confirm link in the mail to the new address:\n%s", confirm.Text)
	}
	cancelLink := linkRE.FindString(notice.Text)
	if !strings.Contains(cancelLink, "/cancel?") || strings.Contains(notice.Text, pw) || strings.Contains(notice.Text, "/confirm?") {
		t.Fatalf("the old address's notice: want a cancel link and no secret:\n%s", notice.Text)
	}
	// Until the link is used, the old address logs in and the new one does not.
	if st, _ := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, newAddr, pw)); st != 401 {
		t.Fatalf("the new address logged in before confirming: %d", st)
	}
	if st, _ := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, oldAddr, pw)); st != 200 {
		t.Fatalf("the old address no longer logs in before confirming: %d", st)
	}
	// Opening the link only shows a page (mail scanners open links); its button confirms.
	page := b.Get(strings.TrimPrefix(confirmLink, s.base)).Is(200, "page-email-change")
	b.Submit(page, `form[action="/account/email/confirm"]`, nil)
	if st, _ := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, newAddr, pw)); st != 200 {
		t.Fatalf("the new address after confirming: %d", st)
	}
	if st, _ := call(t, "POST", s.base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, oldAddr, pw)); st != 401 {
		t.Fatalf("the old address still logs in after the change: %d", st)
	}
	done := waitMail(t, api, oldAddr, "Your email address was changed", 15*time.Second)
	if !strings.Contains(done.Text, newAddr) || strings.Contains(done.Text, "token=") {
		t.Fatalf("the change notice:\n%s", done.Text)
	}
}
