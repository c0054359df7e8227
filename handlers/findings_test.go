package handlers_test

// Tests of the security findings of issue 13 (SECURITY.md rows L6b, N1, L7,
// S5, and the sessions page), each named after its row.

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/models"
)

// replayCSRF puts a noted CSRF cookie back in the browser, as a client that
// kept the pair (cookie and form field) from an earlier page would send it.
func replayCSRF(b *browser, cookie string) {
	b.jar.SetCookies(b.base, []*http.Cookie{{Name: "latchkey_csrf", Value: cookie, Path: "/"}})
}

// TestL6bCSRFReplacedAtLoginAndLogout: the form's _csrf before login is not
// the one after it, and the old one is refused (403) after login and after
// logout — also when the old cookie is sent with it, and also from a
// browser that sends Sec-Fetch-Site: same-origin; the same for a sign-in
// that finishes with a second step.
func TestL6bCSRFReplacedAtLoginAndLogout(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("eve@example.com", "correct horse")
	creds := url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}}

	t.Run("login", func(t *testing.T) {
		b := newBrowser(t, env, "http://localhost:3000")
		login := b.get("/login")
		before, beforeCookie := login.csrf(), b.cookie("latchkey_csrf")
		b.submit(login, `form[action="/login"]`, creds).redirects("/")
		session := b.cookie("latchkey_session")
		after := b.get("/").csrf()
		if after == before {
			t.Fatalf("the form carries the same _csrf after login: %q", after)
		}
		fresh := b.cookie("latchkey_csrf")
		for _, replay := range []bool{false, true} {
			for _, hdr := range [][]string{nil, {"Sec-Fetch-Site: same-origin"}} {
				if replay {
					replayCSRF(b, beforeCookie)
				}
				b.post("/logout", url.Values{"_csrf": {before}}, hdr...).is(http.StatusForbidden, "page-error")
				replayCSRF(b, fresh)
			}
		}
		if s, _ := env.users.Authenticate(context.Background(), session, models.ScopeSession); s == nil {
			t.Fatal("a pre-login _csrf logged the session out")
		}
		// The token of the signed-in page works; after logout it is refused.
		b.submit(b.get("/"), `[data-testid="nav-logout-form"]`, nil).redirects("/")
		for _, replay := range []bool{false, true} {
			if replay {
				replayCSRF(b, fresh)
			}
			f := url.Values{"_csrf": {after}}
			for k, v := range creds {
				f[k] = v
			}
			b.post("/login", f).is(http.StatusForbidden, "page-error")
		}
		if b.cookie("latchkey_session") != "" {
			t.Error("signed in with a _csrf from before logout")
		}
		if got := b.get("/login").csrf(); got == after || got == before {
			t.Error("the signed-out form reuses an earlier _csrf")
		}
	})

	t.Run("second step", func(t *testing.T) {
		_, secret, _ := enableTOTPInBrowser(t, env)
		b := newBrowser(t, env, "http://localhost:3000")
		login := b.get("/login")
		before, beforeCookie := login.csrf(), b.cookie("latchkey_csrf")
		b.submit(login, `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/login/verify")
		code, _ := totp.GenerateCode(secret, env.clock.Now())
		b.submit(b.get("/login/verify"), `form[data-testid="second-step-form"]`, url.Values{"code": {code}}).redirects("/")
		if b.get("/").csrf() == before {
			t.Fatal("the form carries the same _csrf after the second step")
		}
		replayCSRF(b, beforeCookie)
		b.post("/logout", url.Values{"_csrf": {before}}).is(http.StatusForbidden, "page-error")
		if signedInAs(t, b) != "ann@example.com" {
			t.Error("a pre-login _csrf logged out")
		}
	})
}
