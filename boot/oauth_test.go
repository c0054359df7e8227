package boot_test

// Third-party sign-in through the whole program (boot.RunReady, the
// providers read from the environment as an operator sets them) against
// the httptest fakes of internal/oauthfake: the GitHub, Facebook and X
// presets, and an OpenID Connect provider that misbehaves for the
// security rows. Every fake checks PKCE S256, the client's credentials,
// the redirect_uri and single-use codes; a sign-in that works proves the
// app sent them right. The same flow against a real provider (Dex) is in
// e2e/oauth_test.go.

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauthfake"
	"github.com/latchkey/latchkey/internal/webtest"
)

// startOAuthApp runs the program with the providers' variables (K=V, as
// the fakes' Env give them) on a port chosen first, so that
// LATCHKEY_BASE_URL is the address the test's browser uses. It waits for
// the buttons of wait.
func startOAuthApp(t *testing.T, env []string, wait ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"LATCHKEY_ADDR": addr, "LATCHKEY_BASE_URL": "http://" + addr}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	base, logs, _ := startApp(t, vars)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("app log:\n%s", logs.String())
		}
	})
	for _, id := range wait {
		waitButton(t, base, id)
	}
	return base
}

func waitButton(t *testing.T, base, id string) {
	t.Helper()
	b := webtest.New(t, base)
	for deadline := time.Now().Add(15 * time.Second); ; {
		if b.Get("/login").Is(200, "page-login").TestID("provider-"+id).Length() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s button within 15s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pressButton presses "Continue with <id>" on /login and returns the
// provider URL the browser is sent to.
func pressButton(t *testing.T, b *webtest.Browser, id string) string {
	t.Helper()
	r := b.Submit(b.Get("/login").Is(200, "page-login"), `form[action="/auth/`+id+`"]`, nil)
	if r.Status != http.StatusSeeOther || r.Location() == "" {
		t.Fatalf("Continue with %s: %d\n%s", id, r.Status, r.Body)
	}
	return r.Location()
}

// authorizeAt is the browser at a fake (which approves at once): the
// callback URL it sends the browser back to, checked to be the app's.
func authorizeAt(t *testing.T, b *webtest.Browser, id, authURL string) string {
	t.Helper()
	back := oauthfake.Authorize(t, authURL)
	if want := b.Base.String() + "/auth/" + id + "/callback"; back.Scheme+"://"+back.Host+back.Path != want {
		t.Fatalf("the provider sends the browser back to %s, want %s", back, want)
	}
	return back.String()
}

// fakeSignIn is the whole flow at a fake; it returns the callback's answer.
func fakeSignIn(t *testing.T, b *webtest.Browser, id string) *webtest.Page {
	t.Helper()
	return b.Get(authorizeAt(t, b, id, pressButton(t, b, id)))
}

// home is the signed-in home page of b.
func home(t *testing.T, b *webtest.Browser) *webtest.Page {
	t.Helper()
	return b.Get("/").Is(200, "page-home")
}

// account is the signed-in account page.
func account(t *testing.T, b *webtest.Browser) *webtest.Page {
	t.Helper()
	return b.Get("/account").Is(200, "page-account")
}

// refused checks a callback that must not sign anyone in: a 4xx page with
// a way back, and no session.
func refused(t *testing.T, b *webtest.Browser, r *webtest.Page, title string) {
	t.Helper()
	if r.Status < 400 || r.Status > 499 || r.TestID("page-response").Length() != 1 || r.TestID("response-link").Length() != 1 {
		t.Fatalf("want a 4xx page with a way back, got %d:\n%s", r.Status, r.Body)
	}
	if title != "" && !strings.Contains(r.Text("response-title"), title) {
		t.Errorf("the page says %q, want %q", r.Text("response-title"), title)
	}
	if b.Cookie("latchkey_session") != "" || b.Get("/").TestID("page-home").Length() != 0 {
		t.Fatal("signed in after a refused callback")
	}
}

// noAccount checks that nobody has the address: a sign-up with it works.
func noAccount(t *testing.T, base, email string) {
	t.Helper()
	if st, _, body := call(t, "POST", base+"/api/users", `{"email":"`+email+`","password":"correct horse battery"}`); st != 200 {
		t.Fatalf("an account with %s exists (sign-up: %d %s)", email, st, body)
	}
}

// pendingMail is the outbox's pending count from /healthz.
func pendingMail(t *testing.T, base string) float64 {
	t.Helper()
	_, h, body := call(t, "GET", base+"/healthz", "")
	m, ok := h["mail"].(map[string]any)
	if !ok {
		t.Fatalf("healthz: %s", body)
	}
	return m["pending"].(float64)
}

// TestGitHubPreset: LATCHKEY_OAUTH_GITHUB_* pointed at the fake. The
// account's address is /user/emails' primary; it is verified only when
// GitHub says so. The identity is GitHub's numeric id (O3): a new login
// name and address at GitHub sign in to the same account.
func TestGitHubPreset(t *testing.T) {
	t.Parallel()
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 101, Login: "octo", Name: "Octo Cat"}, []oauthfake.GitHubEmail{
		{Email: "octo-old@example.com", Verified: true},
		{Email: "octo@example.com", Primary: true, Verified: true},
	})
	base := startOAuthApp(t, gh.Env(), "github")

	b := webtest.New(t, base)
	if got := b.Get("/login").Text("provider-github"); got != "Continue with GitHub" {
		t.Errorf("the GitHub button says %q", got)
	}
	fakeSignIn(t, b, "github").Redirects("/")
	q := gh.LastAuthorize()
	if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("redirect_uri") != base+"/auth/github/callback" {
		t.Errorf("the authorize request: %v", q)
	}
	h := home(t, b)
	if h.Text("account-email") != "octo@example.com" || h.TestID("email-verified").Length() != 1 {
		t.Errorf("verified primary address: the account is %q, verified %d:\n%s", h.Text("account-email"), h.TestID("email-verified").Length(), h.Body)
	}
	if acct := account(t, b); !strings.Contains(acct.Text("method-github"), "octo") {
		t.Errorf("the GitHub method shows %q", acct.Text("method-github"))
	}

	t.Run("O3SameIDNewLoginAndEmail", func(t *testing.T) {
		gh.SetUser(oauthfake.GitHubUser{ID: 101, Login: "octo-renamed"}, []oauthfake.GitHubEmail{{Email: "new-octo@example.com", Primary: true, Verified: true}})
		b := webtest.New(t, base)
		fakeSignIn(t, b, "github").Redirects("/")
		if got := home(t, b).Text("account-email"); got != "octo@example.com" {
			t.Fatalf("GitHub id 101 with a new address signs in as %q, want the same account", got)
		}
		noAccount(t, base, "new-octo@example.com")
	})

	t.Run("OnlyUnverifiedEmails", func(t *testing.T) {
		gh.SetUser(oauthfake.GitHubUser{ID: 202, Login: "newbie"}, []oauthfake.GitHubEmail{
			{Email: "newbie@example.com", Primary: true},
			{Email: "newbie-2@example.com"},
		})
		b := webtest.New(t, base)
		fakeSignIn(t, b, "github").Redirects("/")
		h := home(t, b)
		if h.Text("account-email") != "newbie@example.com" || h.TestID("email-unverified").Length() != 1 {
			t.Errorf("unverified addresses only: %q, unverified %d", h.Text("account-email"), h.TestID("email-unverified").Length())
		}
	})

	t.Run("O4UnverifiedGitHubEmailClaimingAnAccount", func(t *testing.T) {
		call(t, "POST", base+"/api/users", `{"email":"owner@example.com","password":"correct horse battery"}`)
		gh.SetUser(oauthfake.GitHubUser{ID: 303, Login: "claimer"}, []oauthfake.GitHubEmail{{Email: "Owner@example.com", Primary: true}})
		b := webtest.New(t, base)
		fakeSignIn(t, b, "github").Is(http.StatusConflict, "page-link-prompt")
		if b.Cookie("latchkey_session") != "" {
			t.Fatal("signed in to owner@example.com by a GitHub account claiming it")
		}
	})
}

// TestFacebookPreset: Facebook's address (when it gives one) counts as
// verified; without one the account gets a placeholder.
func TestFacebookPreset(t *testing.T) {
	t.Parallel()
	fb := oauthfake.NewFacebook(t, oauthfake.FacebookUser{ID: "fb-1", Name: "Faye", Email: "faye@example.com"})
	base := startOAuthApp(t, fb.Env(), "facebook")
	b := webtest.New(t, base)
	fakeSignIn(t, b, "facebook").Redirects("/")
	h := home(t, b)
	if h.Text("account-email") != "faye@example.com" || h.TestID("email-verified").Length() != 1 {
		t.Errorf("Facebook with an address: %q, verified %d", h.Text("account-email"), h.TestID("email-verified").Length())
	}
	if fb.LastAuthorize().Get("code_challenge_method") != "S256" {
		t.Errorf("no PKCE to Facebook: %v", fb.LastAuthorize())
	}
}

// TestXPresetPlaceholderEmail: X gives no address. The account gets a
// placeholder that matches nobody and is never mailed: not at sign-up,
// not on a reset request for it.
func TestXPresetPlaceholderEmail(t *testing.T) {
	t.Parallel()
	x := oauthfake.NewX(t, oauthfake.XUser{ID: "1234", Username: "xena", Name: "Xena"})
	base := startOAuthApp(t, x.Env(), "x")
	before := pendingMail(t, base)
	b := webtest.New(t, base)
	fakeSignIn(t, b, "x").Redirects("/")
	h := home(t, b)
	email := h.Text("account-email")
	if !strings.HasSuffix(email, ".invalid") || h.TestID("email-verified").Length() != 0 {
		t.Errorf("X account: address %q, verified %d, want an unverified placeholder under .invalid", email, h.TestID("email-verified").Length())
	}
	if acct := account(t, b); !strings.Contains(acct.Text("method-x"), "xena") {
		t.Errorf("the X method shows %q", acct.Text("method-x"))
	}
	if st, _, _ := call(t, "POST", base+"/api/users/reset", `{"email":"`+email+`"}`); st != 204 {
		t.Errorf("reset for the placeholder: %d", st)
	}
	if after := pendingMail(t, base); after != before {
		t.Errorf("mail to the placeholder: %v pending before, %v after", before, after)
	}
	// Again: the same account.
	b2 := webtest.New(t, base)
	fakeSignIn(t, b2, "x").Redirects("/")
	if got := home(t, b2).Text("account-email"); got != email {
		t.Errorf("second X sign-in as %q, want %q", got, email)
	}
}

// TestO2IDTokenRefusedByTheApp: an ID token signed with a key not in the
// provider's JWKS, one for another audience, or one with another nonce:
// the callback ends on a 4xx page, nobody is signed in and no account is
// made.
func TestO2IDTokenRefusedByTheApp(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{})
	base := startOAuthApp(t, op.Env("ACME"), "acme")
	for _, c := range []struct {
		name string
		set  func(*oauthfake.OIDCOptions)
	}{
		{"OtherKey", func(o *oauthfake.OIDCOptions) { o.OtherKey = true }},
		{"Audience", func(o *oauthfake.OIDCOptions) { o.Audience = "someone-else" }},
		{"AudienceList", func(o *oauthfake.OIDCOptions) { o.Audience = "someone-else " + op.ClientID }},
		{"Nonce", func(o *oauthfake.OIDCOptions) { o.Nonce = "replayed-nonce" }},
		{"NoNonce", func(o *oauthfake.OIDCOptions) { o.OmitNonce = true }},
		{"NoIDToken", func(o *oauthfake.OIDCOptions) { o.NoIDToken = true }},
	} {
		email := "o2-" + strings.ToLower(c.name) + "@example.com"
		op.Set(func(o *oauthfake.OIDCOptions) {
			*o = oauthfake.OIDCOptions{User: oauthfake.User{Subject: "sub-" + c.name, Email: email, EmailVerified: true}}
			c.set(o)
		})
		b := webtest.New(t, base)
		refused(t, b, fakeSignIn(t, b, "acme"), "could not sign you in")
		noAccount(t, base, email)
	}
	// The same provider, behaving: signed in.
	op.Set(func(o *oauthfake.OIDCOptions) {
		*o = oauthfake.OIDCOptions{User: oauthfake.User{Subject: "sub-ok", Email: "o2-ok@example.com", EmailVerified: true}}
	})
	b := webtest.New(t, base)
	fakeSignIn(t, b, "acme").Redirects("/")
	if got := home(t, b).Text("account-email"); got != "o2-ok@example.com" {
		t.Fatalf("a good token signs in as %q", got)
	}
}

// TestO2IssuerMismatchHidesTheProvider: discovery whose issuer is not the
// one configured is refused: no button, /auth/<id> 503.
func TestO2IssuerMismatchHidesTheProvider(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{Issuer: "https://evil.test"})
	base, logs, _ := startApp(t, envMap(op.Env("ACME")))
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(logs.String(), "discovery failed"); {
		if time.Now().After(deadline) {
			t.Fatalf("no failed discovery logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := webtest.New(t, base)
	if b.Get("/login").TestID("provider-acme").Length() != 0 {
		t.Fatal("a button for a provider whose discovery names another issuer")
	}
	b.Get("/auth/acme").Is(http.StatusServiceUnavailable, "page-response")
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// TestO3SameSubjectNewEmail: the provider account changed its address
// (same subject): the same Latchkey account signs in, and the new address
// is nobody's here.
func TestO3SameSubjectNewEmail(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: oauthfake.User{Subject: "s-1", Email: "first@example.com", EmailVerified: true}})
	base := startOAuthApp(t, op.Env("ACME"), "acme")
	b := webtest.New(t, base)
	fakeSignIn(t, b, "acme").Redirects("/")
	op.SetUser(oauthfake.User{Subject: "s-1", Email: "second@example.com", EmailVerified: true})
	b2 := webtest.New(t, base)
	fakeSignIn(t, b2, "acme").Redirects("/")
	if got := home(t, b2).Text("account-email"); got != "first@example.com" {
		t.Fatalf("the same subject with a new address signs in as %q", got)
	}
	noAccount(t, base, "second@example.com")
	// Another subject with the first address: not that account (O4).
	op.SetUser(oauthfake.User{Subject: "s-2", Email: "first@example.com", EmailVerified: true})
	b3 := webtest.New(t, base)
	fakeSignIn(t, b3, "acme").Is(http.StatusConflict, "page-link-prompt")
}

// TestOAuthProviderErrors: the person cancels at the provider, the
// provider answers another error, the provider is down for the token
// exchange: each a readable 4xx page with a way back, nobody signed in.
func TestOAuthProviderErrors(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: oauthfake.User{Subject: "e-1", Email: "err@example.com", EmailVerified: true}})
	base := startOAuthApp(t, op.Env("ACME"), "acme")

	op.SetError("access_denied")
	b := webtest.New(t, base)
	refused(t, b, fakeSignIn(t, b, "acme"), "Sign-in cancelled")

	op.SetError("temporarily_unavailable")
	b = webtest.New(t, base)
	r := fakeSignIn(t, b, "acme")
	refused(t, b, r, "could not sign you in")
	if strings.Contains(r.Body, "temporarily_unavailable") {
		t.Error("the provider's error code is shown to the person")
	}
	op.SetError("")

	// Down after the authorize, before the exchange.
	op.SetUser(oauthfake.User{Subject: "e-2", Email: "down@example.com", EmailVerified: true})
	b = webtest.New(t, base)
	cb := authorizeAt(t, b, "acme", pressButton(t, b, "acme"))
	op.Down()
	refused(t, b, b.Get(cb), "could not sign you in")
	op.Up()
	noAccount(t, base, "down@example.com")

	// And the flow was used up by the failed attempt.
	refused(t, b, b.Get(cb), "does not work")
	// Up again: it works.
	op.SetUser(oauthfake.User{Subject: "e-1", Email: "err@example.com", EmailVerified: true})
	b = webtest.New(t, base)
	fakeSignIn(t, b, "acme").Redirects("/")
	if got := home(t, b).Text("account-email"); got != "err@example.com" {
		t.Fatalf("once the provider is back: signed in as %q", got)
	}
}

// TestO6NoProviderTokenStored: after sign-ins through an OpenID Connect
// provider and GitHub, nothing the providers handed over beyond who the
// person is reaches the database: no ID token (a JWT), no client secret,
// no provider access token.
func TestO6NoProviderTokenStored(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: oauthfake.User{Subject: "sub-o6", Email: "o6@example.com", EmailVerified: true}})
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 606, Login: "octo6", Name: "Octo Six"},
		[]oauthfake.GitHubEmail{{Email: "octo6@example.com", Primary: true, Verified: true}})
	dbPath := filepath.Join(t.TempDir(), "o6.db")
	env := append(append(op.Env("ACME"), gh.Env()...), "LATCHKEY_DB="+dbPath)
	base := startOAuthApp(t, env, "acme", "github")
	for _, id := range []string{"acme", "github"} {
		b := webtest.New(t, base)
		fakeSignIn(t, b, id).Redirects("/")
		home(t, b)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	jwt := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	scanned := 0
	for _, tb := range tables {
		r, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				scanned++
				if jwt.MatchString(s) || strings.Contains(s, op.ClientSecret) || strings.Contains(s, gh.ClientSecret) {
					t.Errorf("%s.%s holds a provider secret: %.80q", tb, cols[i], s)
				}
			}
		}
		r.Close()
	}
	if scanned < 20 {
		t.Fatalf("scanned only %d values", scanned)
	}
}
