package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/dextest"
	"github.com/latchkey/latchkey/internal/oauthfake"
)

// TestBrowserDexSignIn (issue 11): in Chromium, against the built binary
// and a real Dex (plus the GitHub fake, so that the login page shows two
// providers), at 1024 and 375 px: "Continue with Dex" → Dex's login page
// → back at Latchkey, signed in; and the owner of an address Dex claims
// sees "an account with this email exists", logs in with the password
// there, and Dex is linked. Screenshots of every step (the test logs
// their folder): NN-login-providers, NN-dex-login-page,
// NN-signed-in-with-dex, NN-link-prompt, NN-linked.
func TestBrowserDexSignIn(t *testing.T) {
	browserChromium(t)
	sizes := [][2]int{{1024, 768}, {375, 812}}
	var users []dextest.User
	for _, s := range sizes {
		users = append(users,
			dextest.User{Email: fmt.Sprintf("new-%d@example.com", s[0]), Password: "new-dex-pw"},
			dextest.User{Email: fmt.Sprintf("owner-%d@example.com", s[0]), Password: "owner-dex-pw"})
	}
	port := lkpFreePort(t)
	d := dextest.Start(t, dextest.Config{RedirectURIs: []string{fmt.Sprintf("http://127.0.0.1:%d/auth/dex/callback", port)}, Users: users})
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1, Login: "octo"}, []oauthfake.GitHubEmail{{Email: "octo@example.com", Primary: true, Verified: true}})
	extra := map[string]string{}
	for _, kv := range gh.Env() {
		k, v, _ := strings.Cut(kv, "=")
		extra[k] = v
	}
	a := launchDexApp(t, d, port, extra)
	waitForButton(t, a.base, "github", 30*time.Second)

	for _, s := range sizes {
		w, h := s[0], s[1]
		t.Run(fmt.Sprintf("%dpx", w), func(t *testing.T) {
			newcomer, owner := fmt.Sprintf("new-%d@example.com", w), fmt.Sprintf("owner-%d@example.com", w)
			apiSignup(t, a.base, owner, "correct horse battery")

			b := browserOpen(t, a.base, w, h)
			b.do("open /login", chromedp.Navigate(a.base+"/login"), b.on("page-login"), b.on("provider-dex"), b.on("provider-github"))
			if got := b.text("provider-dex"); got != "Continue with Dex" {
				t.Errorf("the Dex button says %q", got)
			}
			b.shot("login-providers")
			b.do("continue with Dex", chromedp.Click(css("provider-dex")), chromedp.WaitVisible(chromedp.ID("login")))
			if u := b.location(); !strings.HasPrefix(u, d.Issuer+"/") {
				t.Fatalf("the button led to %s, not to Dex", u)
			}
			b.shot("dex-login-page")
			b.do("sign in at Dex",
				chromedp.SendKeys(chromedp.ID("login"), newcomer),
				chromedp.SendKeys(chromedp.ID("password"), "new-dex-pw"),
				chromedp.Click(chromedp.ID("submit-login")),
				b.on("page-home"))
			if got := b.text("account-email"); got != newcomer {
				t.Errorf("signed in as %q, want %q", got, newcomer)
			}
			if u := b.location(); u != a.base+"/" {
				t.Errorf("after the sign-in the URL is %s, want / (no code or state left in it)", u)
			}
			b.shot("signed-in-with-dex")
			b.do("open the account page", chromedp.Navigate(a.base+"/account"), b.on("page-account"))
			if b.present("method-dex") != 1 {
				t.Error("Dex is not among the sign-in methods")
			}

			// The owner of an address Dex also has, in a browser of their own.
			o := browserOpen(t, a.base, w, h)
			o.do("open /login", chromedp.Navigate(a.base+"/login"), o.on("provider-dex"))
			o.do("continue with Dex", chromedp.Click(css("provider-dex")), chromedp.WaitVisible(chromedp.ID("login")))
			o.do("sign in at Dex as the owner",
				chromedp.SendKeys(chromedp.ID("login"), owner),
				chromedp.SendKeys(chromedp.ID("password"), "owner-dex-pw"),
				chromedp.Click(chromedp.ID("submit-login")),
				o.on("page-link-prompt"))
			if o.present("page-home") != 0 || o.present("nav-logout") != 0 {
				t.Fatal("signed in to the owner's account on Dex's word")
			}
			if got := o.text("link-content"); !strings.Contains(got, owner) {
				t.Errorf("the link page says %q", got)
			}
			o.shot("link-prompt")
			o.do("log in with the password to link",
				chromedp.SendKeys(chromedp.ID("password"), "correct horse battery"),
				chromedp.Click(css("login-submit")),
				o.on("page-home"))
			if got := o.text("account-email"); got != owner {
				t.Errorf("linked and signed in as %q", got)
			}
			o.do("open the account page", chromedp.Navigate(a.base+"/account"), o.on("page-account"), o.on("method-dex"))
			o.shot("linked")
		})
	}
}
