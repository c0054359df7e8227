package e2e

// Real-browser tests: the whole app (boot.New + Serve on 127.0.0.1:0, real
// SQLite, real SMTP over TCP to an in-process go-smtp server) driven by
// Chromium through chromedp v0.23's typed API. Every page visited is saved
// as a PNG in a folder the test logs.
//
// Without Chromium the tests skip; LATCHKEY_E2E_REQUIRE=1 turns that into a
// failure (CI installs chromium and sets it).

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
)

// browserChromium finds Chromium or skips (fails under LATCHKEY_E2E_REQUIRE=1).
func browserChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("LATCHKEY_E2E_REQUIRE") == "1" {
		t.Fatal("Chromium not found in PATH and LATCHKEY_E2E_REQUIRE=1: install it (apt-get install -y chromium)")
	}
	t.Skip("Chromium not found in PATH: skipping the browser tests (apt-get install -y chromium; LATCHKEY_E2E_REQUIRE=1 makes this a failure)")
	return ""
}

// ---- the app ------------------------------------------------------------------

// browserStartApp serves the real app on a loopback port and returns its
// base URL and the SMTP server its mail goes to.
func browserStartApp(t *testing.T) (string, *smtptest.Server) {
	t.Helper()
	return browserStartAppAs(t, "")
}

// browserStartAppAs is browserStartApp with the base URL's host named
// host ("localhost": a WebAuthn RP ID, which an IP address is not); ""
// keeps the listener's address.
func browserStartAppAs(t *testing.T, host string) (string, *smtptest.Server) {
	t.Helper()
	return browserStartAppWith(t, host, nil)
}

// browserStartAppWith is browserStartAppAs with adjust (may be nil)
// changing the configuration before the app starts.
func browserStartAppWith(t *testing.T, host string, adjust func(*boot.Config)) (string, *smtptest.Server) {
	t.Helper()
	mails := smtptest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if host != "" {
		base = "http://" + host + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	cfg := boot.DefaultConfig()
	cfg.Addr = ln.Addr().String()
	cfg.DB = testdb.DSN(t) // SQLite, or PostgreSQL with LATCHKEY_TEST_STORE=postgres
	cfg.BaseURL = base
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = "127.0.0.1", mails.Port(), "none"
	cfg.ShutdownTimeout = 5 * time.Second
	if adjust != nil {
		adjust(&cfg)
	}
	logs := &testkit.SyncBuffer{} // the app's log, kept for a failing test
	ctx, cancel := context.WithCancel(context.Background())
	app, err := boot.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	for i := 0; ; i++ {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			t.Fatalf("app not healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, mails
}

// ---- the browser --------------------------------------------------------------

// browserSession is one Chromium tab plus a folder of screenshots.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	n     int
}

func browserOpen(t *testing.T, base string, width, height int) *browserSession {
	t.Helper()
	exe := browserChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	shots, err := os.MkdirTemp("", "latchkey-e2e-"+strconv.Itoa(width)+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots (%dx%d) in %s", width, height, shots)
	return &browserSession{t: t, ctx: ctx, base: base, shots: shots}
}

// do runs actions, failing the test with what was tried.
func (b *browserSession) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// on waits for an element by its data-testid. After a click that submits,
// wait for something only the next page has: the page being left may still
// be there.
func (b *browserSession) on(page string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`[data-testid="` + page + `"]`))
}

func (b *browserSession) text(testid string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(`[data-testid="`+testid+`"]`)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", testid, err)
	}
	return strings.TrimSpace(s)
}

// present counts the elements with a data-testid right now, without waiting.
func (b *browserSession) present(testid string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="`+testid+`"]').length`))
	if err != nil {
		b.t.Fatalf("counting %s: %v", testid, err)
	}
	return n
}

func (b *browserSession) location() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// shot saves a full-page PNG and checks that nothing overflows sideways.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	b.n++
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Error(err)
	}
	if strings.HasPrefix(name, "failed-") {
		return
	}
	over, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err == nil && over {
		b.t.Errorf("%s: the page is wider than the viewport", name)
	}
}

func css(testid string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + testid + `"]`) }

// ---- the journeys ---------------------------------------------------------------

// TestBrowserAccountJourney: sign up, log out, fail to log in, log in,
// reload, GET /logout changes nothing, log out, Back shows no private page;
// then forgot password → mail → link → new password → log in with it.
func TestBrowserAccountJourney(t *testing.T) {
	browserChromium(t)
	base, mails := browserStartApp(t)
	b := browserOpen(t, base, 1024, 768)
	const email, password, newPassword = "eve@example.com", "correct horse battery", "new staple horse"

	b.do("open home", chromedp.Navigate(base+"/"), b.on("page-login"))
	b.shot("home-signed-out")

	b.do("open sign-up", chromedp.Click(css("nav-signup")), b.on("page-signup"))
	b.shot("signup")

	b.do("sign up with a short password",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "short"),
		chromedp.Click(css("signup-submit")),
		b.on("error-password"))
	if got := b.text("error-password"); !strings.Contains(got, "too short") {
		t.Errorf("password error: %q", got)
	}
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("email"))); v != email {
		t.Errorf("the email was not kept: %q", v)
	}
	b.shot("signup-error")

	b.do("sign up",
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(css("signup-submit")),
		b.on("page-check-email"))
	if got := b.text("check-email-address"); got != email {
		t.Errorf("check-email shows %q", got)
	}
	b.shot("check-email")
	verify := mails.WaitFor(t, email, "", 15*time.Second)
	if !strings.Contains(verify.Text, base+"/api/users/confirm?") {
		t.Errorf("no confirm link in the first mail (%q):\n%s", verify.Subject, verify.Text)
	}

	b.do("continue home", chromedp.Click(css("check-email-continue")), b.on("page-home"))
	if got := b.text("account-email"); got != email {
		t.Errorf("home shows %q", got)
	}
	b.shot("home-signed-in")

	// Follow the confirmation link: it lands on /verified.
	if m := regexp.MustCompile(regexp.QuoteMeta(base) + `/api/users/confirm\?\S+`).FindString(verify.Text); m != "" {
		b.do("confirm the address", chromedp.Navigate(m), b.on("page-verified"))
		b.shot("verified")
		b.do("home after confirming", chromedp.Click(css("verified-continue")), b.on("page-home"), b.on("email-verified"))
	}

	b.do("log out", chromedp.Click(css("nav-logout")), b.on("page-login"), b.on("flash"))
	b.shot("logged-out")

	b.do("log in with a wrong password",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "wrong horse battery"),
		chromedp.Click(css("login-submit")),
		b.on("page-response"))
	if got := b.text("response-title"); got != "Login failed" {
		t.Errorf("failed login page title %q", got)
	}
	b.shot("login-failed")
	b.do("try again", chromedp.Click(css("response-link")), b.on("page-login"))

	b.do("log in",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(css("login-submit")),
		b.on("page-home"))
	if u := b.location(); u != base+"/" {
		t.Errorf("after login the URL is %s, want / (PRG)", u)
	}
	b.do("reload", chromedp.Reload(), b.on("page-home"))
	b.shot("home-after-reload")

	b.do("GET /logout", chromedp.Navigate(base+"/logout"), b.on("page-logout"))
	b.shot("logout-confirm")
	b.do("stay signed in", chromedp.Click(css("logout-cancel")), b.on("page-home"))

	b.do("log out from home", chromedp.Click(css("home-logout")), b.on("page-login"))
	b.do("back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.CSS("main")))
	if b.present("page-home") != 0 || b.present("account-email") != 0 {
		t.Error("Back after logout shows the signed-in page")
	}
	b.shot("back-after-logout")

	// Forgot password → mail → link → new password → log in with it.
	b.do("forgot password", chromedp.Navigate(base+"/"), b.on("page-login"),
		chromedp.Click(css("link-forgot")), b.on("page-forgot"))
	b.shot("forgot-password")
	b.do("request a reset",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(css("forgot-submit")),
		b.on("page-response"))
	if got := b.text("response-title"); got != "Password reset requested" {
		t.Errorf("reset requested page: %q", got)
	}
	b.shot("reset-requested")
	m := mails.WaitFor(t, email, "Reset", 15*time.Second)
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/reset-password\?access_token=[A-Za-z0-9]{64}`).FindString(m.Text)
	if link == "" {
		t.Fatalf("no reset link in the mail:\n%s", m.Text)
	}
	b.do("open the link", chromedp.Navigate(link), b.on("page-reset"))
	if u := b.location(); u != base+"/reset-password" {
		t.Errorf("the reset form's URL still has the token: %s", u)
	}
	b.shot("reset-form")
	b.do("mismatched passwords",
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("confirmation"), newPassword+"x"),
		chromedp.Click(css("reset-submit")),
		b.on("error-confirmation"))
	b.shot("reset-mismatch")
	b.do("set the new password",
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("confirmation"), newPassword),
		chromedp.Click(css("reset-submit")),
		b.on("page-response"))
	if got := b.text("response-title"); got != "Password reset success" {
		t.Fatalf("after the reset: %q", got)
	}
	b.shot("reset-success")
	b.do("log in after the reset", chromedp.Click(css("response-link")), b.on("page-login"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.Click(css("login-submit")),
		b.on("page-home"))
	b.do("the link again", chromedp.Navigate(link), b.on("page-response"))
	if got := b.text("response-title"); !strings.Contains(got, "can't be used") {
		t.Errorf("a used link says %q", got)
	}
	b.shot("reset-link-used")
	b.do("a missing page", chromedp.Navigate(base+"/no-such-page"), b.on("page-error"))
	b.shot("not-found")
}

// TestBrowserPhone runs the pages in a 375 px wide viewport: nothing
// overflows sideways (checked by every shot) and the forms work.
func TestBrowserPhone(t *testing.T) {
	browserChromium(t)
	base, _ := browserStartApp(t)
	b := browserOpen(t, base, 375, 812)
	const email, password = "phone.user.with.a.long.address@example-company.com", "correct horse battery"

	b.do("home", chromedp.Navigate(base+"/"), b.on("page-login"))
	b.shot("home-signed-out")
	b.do("sign-up page", chromedp.Navigate(base+"/signup"), b.on("page-signup"))
	b.do("sign up with errors",
		chromedp.SendKeys(chromedp.ID("email"), "not-an-email@x"),
		chromedp.SendKeys(chromedp.ID("password"), "short"),
		chromedp.Click(css("signup-submit")),
		// Not page-signup: the page being left has it too.
		b.on("error-email"), b.on("error-password"))
	b.shot("signup-errors")
	b.do("sign up",
		chromedp.Clear(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("username"), "phone"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(css("signup-submit")),
		b.on("page-check-email"))
	b.shot("check-email")
	b.do("home", chromedp.Click(css("check-email-continue")), b.on("page-home"))
	b.shot("home-signed-in")
	b.do("logout page", chromedp.Navigate(base+"/logout"), b.on("page-logout"))
	b.shot("logout-confirm")
	b.do("log out", chromedp.Click(css("logout-confirm")), b.on("page-login"))
	b.do("wrong password",
		chromedp.SendKeys(chromedp.ID("email"), "phone"),
		chromedp.SendKeys(chromedp.ID("password"), "nope nope nope"),
		chromedp.Click(css("login-submit")),
		b.on("page-response"))
	b.shot("login-failed")
	b.do("forgot", chromedp.Navigate(base+"/request-password-reset"), b.on("page-forgot"))
	b.shot("forgot-password")
	b.do("bad reset link", chromedp.Navigate(base+"/reset-password?access_token=nope"), b.on("page-response"))
	b.shot("reset-link-invalid")
	b.do("not found", chromedp.Navigate(base+"/nope"), b.on("page-error"))
	b.shot("not-found")
}
