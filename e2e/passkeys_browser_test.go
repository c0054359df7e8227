package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// browserAuthenticator adds a CDP virtual authenticator to the tab: a
// platform authenticator (ctap2, internal) that keeps passkeys
// (resident keys) and verifies its user, answering at once.
func (b *browserSession) browserAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	var id webauthn.AuthenticatorID
	b.do("add a virtual authenticator", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		id = res.AuthenticatorID
		return err
	}))
	return id
}

// presence turns the virtual authenticator's automatic user presence on
// or off: off, a request waits (the login page's autofill request stays
// pending, so a password can be typed).
func (b *browserSession) presence(id webauthn.AuthenticatorID, on bool) {
	b.t.Helper()
	b.do("user presence", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.SetAutomaticPresenceSimulation,
			webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: id, Enabled: on})
		return err
	}))
}

// passkeysOf counts the passkeys the virtual authenticator holds.
func (b *browserSession) passkeysOf(id webauthn.AuthenticatorID) int {
	b.t.Helper()
	var n int
	b.do("read the authenticator", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
		n = len(res.Credentials)
		return err
	}))
	return n
}

// TestBrowserPasskeys is issue 12's passkey journey in Chromium with a
// virtual authenticator, at 1024 and 375 px: sign up; add a passkey on
// the page that shows the Passkeys section (the notice is mailed); log
// out; log in with the password, the passkey as the second step; log out;
// sign in with the passkey and no password; remove it (a form without
// script). Screenshots of the section, /login with the passkey button and
// the second-step page.
func TestBrowserPasskeys(t *testing.T) {
	browserChromium(t)
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1024, 768}, {"phone", 375, 812}} {
		t.Run(size.name, func(t *testing.T) {
			base, mails := browserStartAppAs(t, "localhost") // an IP address is no WebAuthn RP ID
			b := browserOpen(t, base, size.width, size.height)
			email := "pat." + size.name + "@example.com"
			const password = "correct horse battery"
			auth := b.browserAuthenticator()

			b.do("sign up", chromedp.Navigate(base+"/signup"), b.on("page-signup"),
				chromedp.SendKeys(chromedp.ID("email"), email),
				chromedp.SendKeys(chromedp.ID("password"), password),
				chromedp.Click(css("signup-submit")),
				b.on("page-check-email"),
				chromedp.Click(css("check-email-continue")), b.on("page-home"),
				chromedp.Navigate(base+"/account"), b.on("page-account"))
			// The script shows the form it drives.
			b.do("the passkeys section", b.on("passkeys"), b.on("passkey-add-form"), b.on("passkeys-none"))
			b.do("scroll to it", chromedp.ScrollIntoView(css("passkeys")))
			b.shot("passkeys-none")

			b.do("add a passkey",
				chromedp.SendKeys(chromedp.ID("passkey-name"), "Work laptop"),
				chromedp.SendKeys(chromedp.ID("passkey-password"), password),
				chromedp.Click(css("passkey-add")),
				b.on("passkey-list"), b.on("flash"))
			if got := b.text("passkey-name"); got != "Work laptop" {
				t.Errorf("the passkey is listed as %q", got)
			}
			if n := b.passkeysOf(auth); n != 1 {
				t.Errorf("the authenticator holds %d passkeys, want 1", n)
			}
			b.do("scroll to the list", chromedp.ScrollIntoView(css("passkeys")))
			b.shot("passkeys-one")
			m := mails.WaitFor(t, email, "sign in was added", 15*time.Second)
			if !strings.Contains(m.Text, "A passkey was added") {
				t.Errorf("the notice says:\n%s", m.Text)
			}

			// The login page's autofill request (a conditional get) waits
			// while the authenticator has no user presence.
			b.presence(auth, false)
			b.do("log out", chromedp.Click(css("nav-logout")), b.on("page-login"), b.on("passkey-login"))
			if ac, _ := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("email"), "autocomplete")); ac.Value != "username webauthn" {
				t.Errorf("the email field's autocomplete is %q", ac.Value)
			}
			b.shot("login-with-passkey")

			// A password login now has a second step: the passkey alone.
			b.do("log in with the password",
				chromedp.SendKeys(chromedp.ID("email"), email),
				chromedp.SendKeys(chromedp.ID("password"), password),
				chromedp.Click(css("login-submit")),
				b.on("page-second-step"), b.on("passkey-second-step"))
			if b.present("second-step-form") != 0 {
				t.Error("the second step asks for a code, but the account has no authenticator app")
			}
			b.shot("second-step-passkey")
			b.presence(auth, true)
			b.do("use the passkey", chromedp.Click(css("passkey-second-step")), b.on("page-home"))
			if got := b.text("account-email"); got != email {
				t.Errorf("signed in as %q after the second step", got)
			}

			// "Sign in with a passkey": no password.
			b.presence(auth, false)
			b.do("log out again", chromedp.Click(css("nav-logout")), b.on("page-login"), b.on("passkey-login"))
			b.presence(auth, true)
			b.do("sign in with the passkey", chromedp.Click(css("passkey-login")), b.on("page-home"))
			if got := b.text("account-email"); got != email {
				t.Errorf("signed in as %q with the passkey", got)
			}
			b.do("open the account page", chromedp.Navigate(base+"/account"), b.on("page-account"))
			if b.present("passkey-last-used") != 1 {
				t.Error("the passkey's last use is not shown")
			}

			// The autofill: on the login page the browser offers the passkey
			// in the email field, and the virtual authenticator takes it at
			// once: signed in without a click.
			b.presence(auth, false)
			b.do("log out for the autofill", chromedp.Click(css("nav-logout")), b.on("page-login"), b.on("passkey-login"))
			b.presence(auth, true)
			b.do("the autofill signs in", chromedp.Navigate(base+"/login"), b.on("page-home"))
			b.do("back to the account page", chromedp.Navigate(base+"/account"), b.on("page-account"))

			b.do("remove it",
				chromedp.ScrollIntoView(css("passkeys")),
				chromedp.Click(css("passkey-remove-open")),
				chromedp.WaitVisible(chromedp.ID("passkey-remove-password-0")))
			b.shot("passkey-remove")
			b.do("confirm the removal",
				chromedp.SendKeys(chromedp.ID("passkey-remove-password-0"), password),
				chromedp.Click(css("passkey-remove")),
				b.on("passkeys-none"), b.on("flash"))
			mails.WaitFor(t, email, "sign in was removed", 15*time.Second)

			// The authenticator still holds the removed passkey, and the
			// autofill offers it: refused, on a readable page.
			b.do("log out at last", chromedp.Click(css("nav-logout")), b.on("page-response"))
			if got := b.text("response-title"); got != "That passkey was not accepted" {
				t.Errorf("a removed passkey's page: %q", got)
			}
			b.shot("passkey-refused")
		})
	}
}
