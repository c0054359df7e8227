package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// totpPeriod is RFC 6238's time step: a code is accepted once per step.
const totpPeriod = 30

// TestBrowserTOTP: sign up, turn on two-step verification from /account
// with the current password, read the key off the enrolment page, confirm
// with a code computed here, see the ten recovery codes; log out, log in
// with the password → the second step → a recovery code → signed in; log
// out, the same recovery code again is refused, a code from the app (of a
// later step than the one that confirmed) → signed in. At 1024 and 375 px,
// with shots of /account, the enrolment, the codes and the second step.
func TestBrowserTOTP(t *testing.T) {
	browserChromium(t)
	base, _ := browserStartApp(t)
	const password = "correct horse battery"
	for _, size := range []struct{ w, h int }{{1024, 900}, {375, 812}} {
		b := browserOpen(t, base, size.w, size.h)
		email := "totp.user@example.com"
		if size.w < 500 {
			email = "phone.totp.user.with.a.long.address@example-company.com"
		}
		b.do("sign up", chromedp.Navigate(base+"/signup"), b.on("page-signup"),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(css("signup-submit")),
			b.on("page-check-email"))
		b.do("open the account page", chromedp.Click(css("nav-account")), b.on("page-account"), b.on("totp-off-state"))
		b.shot("account")

		b.do("turn on two-step verification",
			chromedp.SendKeys(chromedp.ID("totp-password"), password),
			chromedp.Click(css("totp-start")),
			b.on("page-totp-enrol"), b.on("totp-qr"))
		b.shot("totp-enrol")
		b.checkQR()
		secret := strings.ReplaceAll(b.text("totp-secret"), " ", "")
		if len(secret) != 32 {
			t.Fatalf("the key on the page is %q: want 32 base32 characters", secret)
		}

		now := time.Now()
		code, err := totp.GenerateCode(secret, now)
		if err != nil {
			t.Fatal(err)
		}
		usedStep := now.Unix() / totpPeriod
		b.do("confirm with a code",
			chromedp.SendKeys(chromedp.ID("code"), code),
			chromedp.Click(css("totp-confirm")),
			b.on("page-recovery-codes"), b.on("totp-enabled"))
		codes, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('[data-testid="recovery-codes"] li')].map(li => li.textContent.trim())`))
		if err != nil {
			t.Fatalf("reading the recovery codes: %v", err)
		}
		if len(codes) != 10 {
			t.Fatalf("recovery codes shown: %d (%q), want 10", len(codes), codes)
		}
		b.shot("recovery-codes")
		b.do("back to the account", chromedp.Click(css("codes-done")), b.on("page-account"), b.on("totp-on"))
		if got := b.text("recovery-left"); !strings.HasSuffix(got, ": 10") {
			t.Errorf("account page: %q", got)
		}
		b.shot("account-totp-on")

		// The password alone now leads to the second step; a recovery code
		// finishes it.
		b.do("log out", chromedp.Click(css("nav-logout")), b.on("page-login"))
		b.login(email, password)
		if u := b.location(); u != base+"/login/verify" {
			t.Errorf("after the password the URL is %s", u)
		}
		if b.present("nav-account") != 0 {
			t.Error("signed in after the password alone")
		}
		b.shot("second-step")
		b.do("a recovery code",
			chromedp.SendKeys(chromedp.ID("code"), codes[0]),
			chromedp.Click(css("second-step-submit")),
			b.on("page-home"))
		b.do("the account page", chromedp.Navigate(base+"/account"), b.on("page-account"))
		if got := b.text("recovery-left"); !strings.HasSuffix(got, ": 9") {
			t.Errorf("after using one: %q", got)
		}

		// The used recovery code is refused; a code from the app, of a
		// step later than the one that confirmed, signs in.
		b.do("log out again", chromedp.Click(css("nav-logout")), b.on("page-login"))
		b.login(email, password)
		b.do("the used recovery code",
			chromedp.SendKeys(chromedp.ID("code"), codes[0]),
			chromedp.Click(css("second-step-submit")),
			b.on("error-code"))
		b.shot("second-step-error")
		for time.Now().Unix()/totpPeriod <= usedStep { // each step is accepted once
			time.Sleep(100 * time.Millisecond)
		}
		code, err = totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b.do("a code from the app",
			chromedp.Clear(chromedp.ID("code")),
			chromedp.SendKeys(chromedp.ID("code"), code),
			chromedp.Click(css("second-step-submit")),
			b.on("page-home"))
		if got := b.text("account-email"); got != email {
			t.Errorf("home shows %q", got)
		}
	}
}

// login submits the login form and waits for the second step.
func (b *browserSession) login(email, password string) {
	b.t.Helper()
	b.do("log in with the password",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(css("login-submit")),
		b.on("page-second-step"))
}

// checkQR: the QR code is drawn square, at least 160 px, and its dark
// modules leave a quiet zone of four modules inside the white square.
func (b *browserSession) checkQR() {
	b.t.Helper()
	type geometry struct {
		W, H, N          float64 // drawn size in px; modules across (viewBox)
		X, Y, BoxW, BoxH float64 // the dark modules' bounding box, in modules
		Fill             string  // the background square
	}
	g, err := chromedp.Run(b.ctx, chromedp.Evaluate[geometry](`(() => {
		const svg = document.querySelector('[data-testid="totp-qr"] svg');
		const r = svg.getBoundingClientRect(), bb = svg.querySelector('path').getBBox();
		return {W: r.width, H: r.height, N: svg.viewBox.baseVal.width,
			X: bb.x, Y: bb.y, BoxW: bb.width, BoxH: bb.height, Fill: svg.querySelector('rect').getAttribute('fill')};
	})()`))
	if err != nil {
		b.t.Fatalf("measuring the QR code: %v", err)
	}
	if g.W != g.H || g.W < 160 {
		b.t.Errorf("the QR code is drawn %gx%g px: want a square of at least 160", g.W, g.H)
	}
	if g.X < 4 || g.Y < 4 || g.X+g.BoxW > g.N-4 || g.Y+g.BoxH > g.N-4 || g.Fill != "#fff" {
		b.t.Errorf("the QR code's quiet zone: modules at %g,%g size %gx%g in %g (fill %s): want 4 white modules around",
			g.X, g.Y, g.BoxW, g.BoxH, g.N, g.Fill)
	}
}
