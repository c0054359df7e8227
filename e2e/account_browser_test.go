package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAccountPage: sign up, open /account from the nav, change the
// password there (a wrong current password first), log out and in with
// the new one; /account is shot at 1024 and at 375 px (every shot also
// checks nothing overflows sideways).
func TestBrowserAccountPage(t *testing.T) {
	browserChromium(t)
	base, mails := browserStartApp(t)
	const email, password, newPassword = "ada.account@example.com", "correct horse battery", "new staple horse battery"
	for _, size := range []struct{ w, h int }{{1024, 900}, {375, 812}} {
		b := browserOpen(t, base, size.w, size.h)
		addr := email
		if size.w < 500 {
			addr = "phone." + email
		}
		b.do("sign up", chromedp.Navigate(base+"/signup"), b.on("page-signup"),
			chromedp.SendKeys(chromedp.ID("email"), addr),
			chromedp.SendKeys(chromedp.ID("username"), "ada"+strings.Repeat("x", size.w%7)),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(css("signup-submit")),
			b.on("page-check-email"))
		b.do("open the account page", chromedp.Click(css("nav-account")), b.on("page-account"))
		if got := b.text("account-email"); got != addr {
			t.Errorf("account page shows %q", got)
		}
		b.shot("account")
		b.do("wrong current password",
			chromedp.SendKeys(chromedp.ID("current-password"), "not my password"),
			chromedp.SendKeys(chromedp.ID("new-password"), newPassword),
			chromedp.Click(css("password-submit")),
			b.on("error-currentPassword"))
		b.shot("account-wrong-password")
		b.do("change the password",
			chromedp.SendKeys(chromedp.ID("current-password"), password),
			chromedp.SendKeys(chromedp.ID("new-password"), newPassword),
			chromedp.Click(css("password-submit")),
			b.on("flash"))
		if got := b.text("flash"); !strings.Contains(got, "password is changed") {
			t.Errorf("flash after the change: %q", got)
		}
		b.shot("account-password-changed")
		mails.WaitFor(t, addr, "password was changed", 15e9)
		b.do("log out", chromedp.Click(css("nav-logout")), b.on("page-login"))
		b.do("log in with the new password",
			chromedp.SendKeys(chromedp.ID("email"), addr),
			chromedp.SendKeys(chromedp.ID("password"), newPassword),
			chromedp.Click(css("login-submit")),
			b.on("page-home"))
		b.do("the account page again", chromedp.Click(css("link-account")), b.on("page-account"))
	}
}
