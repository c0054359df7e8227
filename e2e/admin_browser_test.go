package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// adminStartApp is browserStartApp with setup run on the app's store
// before it serves (so before its mail worker runs).
func adminStartApp(t *testing.T, setup func(*boot.App)) (string, *smtptest.Server) {
	t.Helper()
	mails := smtptest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := boot.DefaultConfig()
	cfg.Addr = ln.Addr().String()
	cfg.DB = testdb.DSN(t)
	cfg.BaseURL = base
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS = "127.0.0.1", mails.Port(), "none"
	cfg.ShutdownTimeout = 5 * time.Second
	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := boot.New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	setup(app)
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

// adminSetup fills the store as an operator would find it: an admin, a
// few dozen accounts in every state, a session and CLI actions on one,
// and two dead messages (one that failed, one whose link expired).
func adminSetup(t *testing.T, app *boot.App) {
	t.Helper()
	ctx := context.Background()
	cli := models.ClientMeta{Actor: models.ActorCLI}
	create := func(email, pw string, admin bool) *models.User {
		u, err := app.Users.CreateAccount(ctx, models.NewAccount{Email: email, Password: pw, Admin: admin}, cli)
		if err != nil {
			t.Fatalf("create %s: %v", email, err)
		}
		return u
	}
	create("root@example.com", "correct horse battery admin", true)
	ann := create("ann.lovelace@example.com", "ann secret password", false)
	for i := range 56 {
		u := create(fmt.Sprintf("member%02d@example.org", i), "", i%9 == 0)
		if i%7 == 3 {
			if _, err := app.Users.DisableUser(ctx, u.ID, cli); err != nil {
				t.Fatal(err)
			}
		}
	}
	browser := models.ClientMeta{IP: "203.0.113.7",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}
	for range 2 {
		if _, _, err := app.Users.Login(ctx, models.Credentials{Email: ann.Email, Password: "ann secret password"}, browser); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := app.Users.SendResetLink(ctx, ann.ID, cli); err != nil {
		t.Fatal(err)
	}

	ob := models.NewOutbox(app.DB, models.OutboxConfig{MaxAttempts: 1})
	dead := func(e models.Email, fail func(id int64) error) {
		if err := app.DB.Write(ctx, time.Now(), func(tx *models.Tx) error { return tx.EnqueueEmail(ctx, e) }); err != nil {
			t.Fatal(err)
		}
		due, err := ob.Claim(ctx, 1000) // the set-password links are queued too
		if err != nil {
			t.Fatal(err)
		}
		var released []int64
		for _, m := range due {
			if m.To == e.To && m.Subject == e.Subject {
				if err := fail(m.ID); err != nil {
					t.Fatal(err)
				}
			} else {
				released = append(released, m.ID)
			}
		}
		if err := ob.Release(ctx, released); err != nil {
			t.Fatal(err)
		}
	}
	dead(models.Email{Kind: "password-changed", To: ann.Email, Subject: "Your password was changed (retried)",
		HTML: "<p>Your password was changed.</p>", Text: "Your password was changed."}, func(id int64) error {
		_, err := ob.MarkFailed(ctx, id, errors.New("550 5.1.1 <ann.lovelace@example.com>: Recipient address rejected: mailbox full"))
		return err
	})
	dead(models.Email{Kind: "reset-password", To: "member05@example.org", Subject: "Reset your password (expired)", HTML: "x", Text: "x"}, func(id int64) error {
		return ob.MarkDead(ctx, id, "expired before it could be delivered")
	})
}

// TestBrowserAdminPages: an admin opens Admin from the nav, searches the
// list, opens an account, is refused with a wrong password, logs the
// account out everywhere with the right one, sees their own name in the
// audit, and retries a dead message, which the mail server then gets.
// The list, the detail and the outbox are shot at 1024 px; the list also
// at 375 px (no sideways overflow: the tables scroll in their box).
func TestBrowserAdminPages(t *testing.T) {
	browserChromium(t)
	base, mails := adminStartApp(t, func(app *boot.App) { adminSetup(t, app) })
	b := browserOpen(t, base, 1024, 900)
	b.do("log in as the admin", chromedp.Navigate(base+"/login"), b.on("page-login"),
		chromedp.SendKeys(chromedp.ID("email"), "root@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery admin"),
		chromedp.Click(css("login-submit")),
		b.on("nav-admin"))
	b.do("open Admin", chromedp.Click(css("nav-admin")), b.on("page-admin-users"))
	if got := b.text("admin-count"); got != "1–50 of 58" {
		t.Errorf("count %q", got)
	}
	b.shot("admin-users")
	b.do("next page", chromedp.Click(css("admin-next")), b.on("admin-prev"))
	if got := b.text("admin-count"); got != "51–58 of 58" {
		t.Errorf("page 2 count %q", got)
	}
	b.do("search", chromedp.SendKeys(css("admin-q"), "lovelace\n"), b.on("admin-clear"))
	if n := b.present("admin-user"); n != 1 {
		t.Fatalf("search found %d", n)
	}
	b.do("open the account", chromedp.Click(css("admin-user-link")), b.on("page-admin-user"))
	if n := b.present("admin-session"); n != 2 {
		t.Errorf("%d sessions listed", n)
	}
	b.shot("admin-user")
	b.do("a wrong password", chromedp.SendKeys(chromedp.ID("revoke-sessions-password"), "not my password"),
		chromedp.Click(css("revoke-sessions-submit")), b.on("page-response"))
	if got := b.text("response-title"); got != "Wrong password" {
		t.Errorf("wrong password page: %q", got)
	}
	b.shot("admin-wrong-password")
	b.do("back", chromedp.Click(css("response-link")), b.on("page-admin-user"))
	b.do("log the account out everywhere", chromedp.SendKeys(chromedp.ID("revoke-sessions-password"), "correct horse battery admin"),
		chromedp.Click(css("revoke-sessions-submit")), b.on("flash"))
	if got := b.text("flash"); !strings.Contains(got, "logged out") {
		t.Errorf("flash %q", got)
	}
	if n := b.present("admin-session"); n != 0 {
		t.Errorf("%d sessions after the revoke", n)
	}
	if actor := b.text("audit-actor"); actor != "root@example.com" {
		t.Errorf("newest actor %q", actor)
	}
	b.shot("admin-user-revoked")

	b.do("open the dead mail", chromedp.Click(css("tab-outbox")), b.on("page-admin-outbox"))
	if n := b.present("outbox-mail"); n != 2 {
		t.Fatalf("%d dead messages", n)
	}
	b.shot("admin-outbox")
	b.do("retry", chromedp.SendKeys(`[data-testid="outbox-retry-form"] input[name="password"]`, "correct horse battery admin"),
		chromedp.Click(css("outbox-retry")), b.on("flash"))
	if n := b.present("outbox-mail"); n != 1 {
		t.Errorf("%d dead messages after the retry", n)
	}
	mails.WaitFor(t, "ann.lovelace@example.com", "retried", 15*time.Second)
	b.shot("admin-outbox-retried")

	phone := browserOpen(t, base, 375, 812)
	phone.do("log in on a phone", chromedp.Navigate(base+"/login"), phone.on("page-login"),
		chromedp.SendKeys(chromedp.ID("email"), "root@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "correct horse battery admin"),
		chromedp.Click(css("login-submit")),
		phone.on("nav-admin"))
	phone.do("Admin on a phone", chromedp.Navigate(base+"/admin"), phone.on("page-admin-users"))
	phone.shot("admin-users-phone")
}
