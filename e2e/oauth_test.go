package e2e

// Third-party sign-in against a real OpenID Connect provider (issue 11):
// the built binary, configured with LATCHKEY_OIDC_DEX_*, and a real Dex
// (internal/dextest) with static users and its own login page. The flow is
// driven over HTTP as a browser would: the login page's "Continue with
// Dex" form (with its CSRF token), Dex's password page, the callback. The
// browser test (oauth_browser_test.go) does the same in Chromium.
//
// What the handlers' in-process tests already prove with a stub provider
// (an expired flow, return_to) is not repeated here.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/latchkey/latchkey/internal/dextest"
	"github.com/latchkey/latchkey/internal/rrproxy"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/webtest"
)

// dexApp is the binary configured with one Dex.
type dexApp struct {
	proc *lkpProc
	base string
	db   string // the SQLite file
	dex  *dextest.Dex
}

// startDexApp starts Dex with users, then the binary on a port chosen
// first, so that its LATCHKEY_BASE_URL + /auth/dex/callback is the
// redirect URI Dex has registered. It waits until the Dex button shows,
// unless extra holds "wait": "no".
func startDexApp(t *testing.T, users []dextest.User, extra map[string]string) *dexApp {
	t.Helper()
	port := lkpFreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	d := dextest.Start(t, dextest.Config{RedirectURIs: []string{base + "/auth/dex/callback"}, Users: users})
	return launchDexApp(t, d, port, extra)
}

func launchDexApp(t *testing.T, d *dextest.Dex, port int, extra map[string]string) *dexApp {
	t.Helper()
	a := &dexApp{base: fmt.Sprintf("http://127.0.0.1:%d", port), db: filepath.Join(t.TempDir(), "latchkey.db"), dex: d}
	settings := map[string]string{
		"LATCHKEY_ADDR":                   fmt.Sprintf("127.0.0.1:%d", port),
		"LATCHKEY_BASE_URL":               a.base,
		"LATCHKEY_DB":                     a.db,
		"LATCHKEY_BCRYPT_COST":            "10",
		"LATCHKEY_SMTP_PORT":              "1", // nothing listens: mail stays queued
		"LATCHKEY_OIDC_DEX_ISSUER":        d.Issuer,
		"LATCHKEY_OIDC_DEX_CLIENT_ID":     d.ClientID,
		"LATCHKEY_OIDC_DEX_CLIENT_SECRET": d.ClientSecret,
	}
	wait := true
	for k, v := range extra {
		if k == "wait" {
			wait = v != "no"
			continue
		}
		settings[k] = v
	}
	a.db = settings["LATCHKEY_DB"]
	a.proc = lkpStart(t, lkpBinary(t), settings)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("latchkey log:\n%s", a.proc.Log.String())
		}
	})
	if wait {
		waitForButton(t, a.base, "dex", 30*time.Second)
	}
	return a
}

// waitForButton polls the login page until the provider's button shows
// (discovery runs in the background after start-up).
func waitForButton(t *testing.T, base, id string, within time.Duration) *webtest.Page {
	t.Helper()
	b := webtest.New(t, base)
	deadline := time.Now().Add(within)
	for {
		p := b.Get("/login").Is(200, "page-login")
		if p.TestID("provider-"+id).Length() == 1 {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s button on /login within %v:\n%s", id, within, p.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startDex presses "Continue with Dex" on the login page and returns where
// the app sends the browser: Dex's authorization URL.
func startDex(t *testing.T, b *webtest.Browser, d *dextest.Dex) string {
	t.Helper()
	login := b.Get("/login").Is(200, "page-login")
	r := b.Submit(login, `form[action="/auth/dex"]`, nil)
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location(), d.Issuer+"/auth?") {
		t.Fatalf("Continue with Dex: %d to %q, want a 303 to %s/auth\n%s", r.Status, r.Location(), d.Issuer, r.Body)
	}
	return r.Location()
}

// dexCallback signs in at Dex as email and returns the callback URL Dex
// sends the browser back to (not yet visited).
func dexCallback(t *testing.T, b *webtest.Browser, d *dextest.Dex, authURL, email, password string) string {
	t.Helper()
	resp := d.Login(t, b.Client, authURL, email, password)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	want := b.Base.String() + "/auth/dex/callback?"
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, want) {
		t.Fatalf("Dex login as %s: %d to %q, want a 303 to %s…", email, resp.StatusCode, loc, want)
	}
	return loc
}

// dexSignIn is the whole flow in b: the button, Dex's login page, the
// callback. It returns the callback's answer.
func dexSignIn(t *testing.T, b *webtest.Browser, d *dextest.Dex, email, password string) *webtest.Page {
	t.Helper()
	return b.Get(dexCallback(t, b, d, startDex(t, b, d), email, password))
}

// signedInAs is the account the home page shows b signed in to, "" if none.
func signedInAs(t *testing.T, b *webtest.Browser) string {
	t.Helper()
	home := b.Get("/").Is(200, "")
	return home.Text("account-email")
}

// notSignedIn fails t if b holds a session.
func notSignedIn(t *testing.T, b *webtest.Browser, what string) {
	t.Helper()
	if c := b.Cookie("latchkey_session"); c != "" {
		t.Errorf("%s: the browser got a session cookie", what)
	}
	if who := signedInAs(t, b); who != "" {
		t.Errorf("%s: the browser is signed in as %s", what, who)
	}
}

// apiSignup creates a local account with a password over the REST API.
func apiSignup(t *testing.T, base, email, password string) int64 {
	t.Helper()
	st, _, body, err := lkpCall(context.Background(), http.DefaultClient, "POST", base+"/api/users", "",
		map[string]string{"email": email, "password": password})
	var m struct{ ID int64 }
	if err != nil || st != 200 || json.Unmarshal(body, &m) != nil {
		t.Fatalf("sign-up %s: %d %v %s", email, st, err, body)
	}
	return m.ID
}

// apiLogin is the status of a password login over the REST API.
func apiLogin(t *testing.T, base, email, password string) int {
	t.Helper()
	st, _, _, err := lkpCall(context.Background(), http.DefaultClient, "POST", base+"/api/users/login", "",
		map[string]string{"email": email, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDexSignIn: a person with no account clicks "Continue with Dex",
// signs in at Dex and comes back signed in to a new account without a
// password; signing in again is the same account; Dex's
// email_verified:false reaches the account.
func TestDexSignIn(t *testing.T) {
	t.Parallel()
	a := startDexApp(t, []dextest.User{
		{Email: "alice@example.com", Password: "alice-dex-pw"},
		{Email: "bob@example.com", Password: "bob-dex-pw", Unverified: true},
	}, nil)

	login := webtest.New(t, a.base).Get("/login").Is(200, "page-login")
	if got := login.Text("provider-dex"); got != "Continue with Dex" {
		t.Errorf("the Dex button says %q", got)
	}
	if login.TestID("login-form").Length() != 1 {
		t.Error("the password form is gone from /login")
	}

	b := webtest.New(t, a.base)
	dexSignIn(t, b, a.dex, "alice@example.com", "alice-dex-pw").Redirects("/")
	home := b.Get("/account").Is(200, "page-account")
	if got := home.Text("account-email"); got != "alice@example.com" {
		t.Fatalf("signed in as %q", got)
	}
	if home.TestID("email-verified").Length() != 1 {
		t.Errorf("Dex said alice's address is verified; the account says otherwise:\n%s", home.Body)
	}
	if got := home.Text("method-password"); !strings.Contains(got, "not set") {
		t.Errorf("an account made through Dex has a password: %q", got)
	}
	if home.TestID("method-dex").Length() != 1 {
		t.Errorf("Dex is not among the sign-in methods:\n%s", home.Body)
	}
	for _, pw := range []string{"alice-dex-pw", "", "x"} {
		if st := apiLogin(t, a.base, "alice@example.com", pw); st != 401 {
			t.Errorf("password login to the Dex account with %q: %d, want 401", pw, st)
		}
	}

	// Again, in another browser: the same account (two sessions of it).
	b2 := webtest.New(t, a.base)
	dexSignIn(t, b2, a.dex, "alice@example.com", "alice-dex-pw").Redirects("/")
	if got := signedInAs(t, b2); got != "alice@example.com" {
		t.Fatalf("second sign-in as %q", got)
	}
	sessions := b2.Get("/sessions").Is(200, "")
	if n := sessions.TestID("session").Length(); n != 2 {
		t.Errorf("the account has %d sessions after two sign-ins, want 2 (one account)", n)
	}
	sessions.TestID("session-method").Each(func(_ int, s *goquery.Selection) {
		if !strings.Contains(s.Text(), "Dex") {
			t.Errorf("a session signed in with %q", s.Text())
		}
	})
	db := openStoreDB(t, a.db)
	var users, ids int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM identities)`).Scan(&users, &ids); err != nil || users != 1 || ids != 1 {
		t.Errorf("after two sign-ins: %d users, %d identities (%v), want 1 and 1", users, ids, err)
	}

	// bob's address is not verified at Dex: nor is it here.
	bob := webtest.New(t, a.base)
	dexSignIn(t, bob, a.dex, "bob@example.com", "bob-dex-pw").Redirects("/")
	home = bob.Get("/").Is(200, "page-home")
	if home.Text("account-email") != "bob@example.com" || home.TestID("email-unverified").Length() != 1 {
		t.Errorf("bob (email_verified false at Dex):\n%s", home.Body)
	}
	var verified sql.NullBool
	if err := db.QueryRow(`SELECT email_verified FROM users WHERE email = 'bob@example.com'`).Scan(&verified); err != nil || verified.Bool {
		t.Errorf("bob's email_verified in the store: %v (%v)", verified, err)
	}
}

// TestDexSecurity: the flow is single use and bound to its browser (O1);
// a Dex account claiming a local account's address signs nobody in to it
// until the owner links it with their password (O4); unlinking keeps a way
// to sign in (O7); no provider token is stored (O6).
func TestDexSecurity(t *testing.T) {
	t.Parallel()
	a := startDexApp(t, []dextest.User{
		{Email: "alice@example.com", Password: "alice-dex-pw"},
		{Email: "carol@example.com", Password: "carol-dex-pw"},
		{Email: "dave@example.com", Password: "dave-dex-pw", Unverified: true},
	}, nil)

	t.Run("O1ReplayedCallback", func(t *testing.T) {
		b := webtest.New(t, a.base)
		cb := dexCallback(t, b, a.dex, startDex(t, b, a.dex), "alice@example.com", "alice-dex-pw")
		// Another browser with the callback URL (leaked, or an attacker's
		// own flow handed to a victim): refused, and nobody signed in.
		thief := webtest.New(t, a.base)
		thief.Get(cb).Is(http.StatusBadRequest, "page-response")
		notSignedIn(t, thief, "the callback in another browser")
		// The browser that started it: signed in (the thief did not use it up).
		b.Get(cb).Redirects("/")
		if got := signedInAs(t, b); got != "alice@example.com" {
			t.Fatalf("signed in as %q", got)
		}
		// Replayed, in the same browser or another: refused.
		r := b.Get(cb).Is(http.StatusBadRequest, "page-response")
		if r.TestID("response-link").Length() != 1 {
			t.Errorf("the refusal has no way back:\n%s", r.Body)
		}
		other := webtest.New(t, a.base)
		other.Get(cb).Is(http.StatusBadRequest, "page-response")
		notSignedIn(t, other, "a replayed callback")
	})

	t.Run("O1ForgedState", func(t *testing.T) {
		b := webtest.New(t, a.base)
		authURL := startDex(t, b, a.dex)
		cb := dexCallback(t, b, a.dex, authURL, "alice@example.com", "alice-dex-pw")
		u, _ := url.Parse(cb)
		for _, state := range []string{"forged-" + lkpRandom(16), "", u.Query().Get("state") + "x"} {
			q := u.Query()
			q.Set("state", state)
			b.Get("/auth/dex/callback?"+q.Encode()).Is(http.StatusBadRequest, "page-response")
		}
		notSignedIn(t, b, "a forged state")
		// No code at all, only a state someone made up.
		b.Get("/auth/dex/callback?state="+lkpRandom(16)).Is(http.StatusBadRequest, "page-response")
		notSignedIn(t, b, "a made-up callback")
	})

	t.Run("O4NoTakeoverByEmail", func(t *testing.T) {
		apiSignup(t, a.base, "carol@example.com", "correct horse battery") // local, unverified
		apiSignup(t, a.base, "dave@example.com", "staple battery horse")
		for _, who := range [][2]string{{"carol@example.com", "carol-dex-pw"}, {"dave@example.com", "dave-dex-pw"}} {
			attacker := webtest.New(t, a.base)
			r := dexSignIn(t, attacker, a.dex, who[0], who[1]).Is(http.StatusConflict, "page-link-prompt")
			if !strings.Contains(r.Text("link-content"), who[0]) {
				t.Errorf("the link page does not name the address:\n%s", r.Body)
			}
			notSignedIn(t, attacker, "a Dex account claiming "+who[0])
		}
		if st := apiLogin(t, a.base, "carol@example.com", "correct horse battery"); st != 200 {
			t.Fatalf("the owner's password after the attempt: %d", st)
		}

		// The owner, on the link page, logs in with the password: Dex is linked.
		owner := webtest.New(t, a.base)
		prompt := dexSignIn(t, owner, a.dex, "carol@example.com", "carol-dex-pw").Is(http.StatusConflict, "page-link-prompt")
		owner.Submit(prompt, `form[action="/login"]`, url.Values{"email": {"carol@example.com"}, "password": {"correct horse battery"}}).Redirects("/")
		home := owner.Get("/account").Is(200, "page-account")
		if home.Text("account-email") != "carol@example.com" || home.TestID("method-dex").Length() != 1 {
			t.Fatalf("after the password on the link page, Dex is not linked:\n%s", home.Body)
		}
		// From now on Dex signs in to carol's account.
		again := webtest.New(t, a.base)
		dexSignIn(t, again, a.dex, "carol@example.com", "carol-dex-pw").Redirects("/")
		if got := signedInAs(t, again); got != "carol@example.com" {
			t.Fatalf("the linked Dex account signs in as %q", got)
		}

		// O7: carol has a password, so Dex can go; then Dex is back to
		// "an account with this email exists".
		home = owner.Get("/account").Is(200, "page-account")
		owner.Submit(home, `form:has([data-testid="unlink-dex"])`, nil).Redirects("/account")
		if owner.Get("/account").TestID("method-dex").Length() != 0 {
			t.Fatal("Dex still linked after Remove")
		}
		dexSignIn(t, webtest.New(t, a.base), a.dex, "carol@example.com", "carol-dex-pw").Is(http.StatusConflict, "page-link-prompt")
	})

	t.Run("O7LastMethodStays", func(t *testing.T) {
		b := webtest.New(t, a.base)
		dexSignIn(t, b, a.dex, "alice@example.com", "alice-dex-pw").Redirects("/")
		home := b.Get("/account").Is(200, "page-account")
		if home.TestID("unlink-dex").Length() != 0 || home.TestID("only-dex").Length() != 1 {
			t.Fatal("the only sign-in method offers Remove")
		}
		csrf, _ := home.Doc.Find(`input[name=_csrf]`).First().Attr("value")
		r := b.Post("/unlink/"+identityID(t, a, "alice@example.com"), url.Values{"_csrf": {csrf}}).Is(http.StatusConflict, "page-response")
		if !strings.Contains(r.Text("response-title"), "only way to sign in") {
			t.Errorf("unlinking the only method: %q", r.Text("response-title"))
		}
		if b.Get("/account").TestID("method-dex").Length() != 1 {
			t.Fatal("the only sign-in method was removed")
		}
	})

	t.Run("O6NoProviderTokenStored", func(t *testing.T) {
		checkNoProviderTokens(t, storeText(t, openStoreDB(t, a.db), "sqlite"), a.dex.ClientSecret)
	})
}

// TestDexProviderDown: Dex down while Latchkey starts: the server starts,
// shows no Dex button and answers /auth/dex with 503 until Dex is up; Dex
// going down in the middle of a sign-in ends it on a readable 4xx page;
// Dex back (with new signing keys) signs in again.
func TestDexProviderDown(t *testing.T) {
	t.Parallel()
	port := lkpFreePort(t)
	d := dextest.Start(t, dextest.Config{RedirectURIs: []string{fmt.Sprintf("http://127.0.0.1:%d/auth/dex/callback", port)},
		Users: []dextest.User{{Email: "erin@example.com", Password: "erin-dex-pw"}}})
	d.Down(t)
	a := launchDexApp(t, d, port, map[string]string{"wait": "no"})

	b := webtest.New(t, a.base)
	login := b.Get("/login").Is(200, "page-login")
	if login.TestID("provider-dex").Length() != 0 || login.TestID("providers").Length() != 0 {
		t.Fatalf("a Dex button while Dex is down:\n%s", login.Body)
	}
	r := b.Get("/auth/dex").Is(http.StatusServiceUnavailable, "page-response")
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Text("response-title"), "not available") {
		t.Errorf("/auth/dex while Dex is down: Retry-After %q, title %q", r.Header.Get("Retry-After"), r.Text("response-title"))
	}
	if !regexp.MustCompile(`level=WARN msg="oauth: discovery failed.*provider=dex`).MatchString(a.proc.Log.String()) {
		t.Errorf("the failed discovery is not logged:\n%s", a.proc.Log.String())
	}

	d.Up(t)
	waitForButton(t, a.base, "dex", 90*time.Second) // discovery retries 1s, 2s, 4s…
	dexSignIn(t, b, d, "erin@example.com", "erin-dex-pw").Redirects("/")

	// Down between Dex's login page and the token exchange.
	b2 := webtest.New(t, a.base)
	cb := dexCallback(t, b2, d, startDex(t, b2, d), "erin@example.com", "erin-dex-pw")
	d.Down(t)
	r = b2.Get(cb)
	if r.Status < 400 || r.Status > 499 || r.TestID("page-response").Length() != 1 || r.TestID("response-link").Length() != 1 {
		t.Fatalf("callback with Dex down: %d\n%s", r.Status, r.Body)
	}
	notSignedIn(t, b2, "a callback whose exchange failed")

	// Back, with new keys: the verifier fetches them.
	d.Up(t)
	b3 := webtest.New(t, a.base)
	dexSignIn(t, b3, d, "erin@example.com", "erin-dex-pw").Redirects("/")
	if got := signedInAs(t, b3); got != "erin@example.com" {
		t.Fatalf("after Dex came back: %q", got)
	}
}

// TestDexSignInThreeReplicas: three replicas on PostgreSQL behind a
// round-robin proxy, which is also LATCHKEY_BASE_URL: the button, Dex and
// the callback each land on another replica, and the sign-in works; the
// session then works on every replica; the store keeps no provider token.
func TestDexSignInThreeReplicas(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	d := dextest.Start(t, dextest.Config{RedirectURIs: []string{base + "/auth/dex/callback"},
		Users: []dextest.User{{Email: "frank@example.com", Password: "frank-dex-pw"}}})
	c := startClusterOn(t, 3, dsn, map[string]string{
		"LATCHKEY_BASE_URL":               base,
		"LATCHKEY_BCRYPT_COST":            "10",
		"LATCHKEY_SMTP_PORT":              "1",
		"LATCHKEY_OIDC_DEX_ISSUER":        d.Issuer,
		"LATCHKEY_OIDC_DEX_CLIENT_ID":     d.ClientID,
		"LATCHKEY_OIDC_DEX_CLIENT_SECRET": d.ClientSecret,
	}, ln)
	if c.proxy != base {
		t.Fatalf("the proxy is at %s, not %s", c.proxy, base)
	}
	for _, p := range c.replicas { // each replica discovers Dex on its own
		waitForButton(t, p.Base, "dex", 30*time.Second)
	}

	b := webtest.New(t, base)
	login := b.Get("/login").Is(200, "page-login")
	start := b.Submit(login, `form[action="/auth/dex"]`, nil)
	if start.Status != http.StatusSeeOther {
		t.Fatalf("Continue with Dex through the proxy: %d\n%s", start.Status, start.Body)
	}
	cb := b.Get(dexCallback(t, b, d, start.Location(), "frank@example.com", "frank-dex-pw")).Redirects("/")
	started, finished := start.Header.Get(rrproxy.BackendHeader), cb.Header.Get(rrproxy.BackendHeader)
	if started == "" || started == finished || login.Header.Get(rrproxy.BackendHeader) == started {
		t.Fatalf("login page on replica %s, flow started on %s, finished on %s: want three different replicas",
			login.Header.Get(rrproxy.BackendHeader), started, finished)
	}
	t.Logf("login page on replica %s, flow started on %s, callback on %s", login.Header.Get(rrproxy.BackendHeader), started, finished)

	seen := map[string]bool{}
	for range 3 {
		home := b.Get("/").Is(200, "page-home")
		if got := home.Text("account-email"); got != "frank@example.com" {
			t.Fatalf("replica %s: signed in as %q", home.Header.Get(rrproxy.BackendHeader), got)
		}
		seen[home.Header.Get(rrproxy.BackendHeader)] = true
	}
	for i, p := range c.replicas { // and straight to each (cookies are per host, not per port)
		direct := webtest.New(t, p.Base)
		direct.Client.Jar = b.Client.Jar
		if got := signedInAs(t, direct); got != "frank@example.com" {
			t.Fatalf("replica %d directly: signed in as %q", i, got)
		}
	}
	if len(seen) != 3 {
		t.Errorf("the session was tried on %v through the proxy, want all three", seen)
	}

	// A second sign-in through the proxy, on other replicas: the same account.
	b2 := webtest.New(t, base)
	dexSignIn(t, b2, d, "frank@example.com", "frank-dex-pw").Redirects("/")
	db := openStoreDB(t, dsn)
	var users int
	if err := db.QueryRow(`SELECT count(*) FROM users`).Scan(&users); err != nil || users != 1 {
		t.Errorf("two sign-ins over three replicas made %d accounts (%v)", users, err)
	}
	t.Run("O6NoProviderTokenStored", func(t *testing.T) {
		checkNoProviderTokens(t, storeText(t, db, "postgres"), d.ClientSecret)
	})
}

// TestDexSignInImportedLB3Identity (issue 11, point 7): a LoopBack user
// with a Passport UserIdentity (provider "dex-login", externalId the Dex
// "sub"), imported with `latchkey import lb3 --provider dex-login=dex`,
// signs in through Dex to that same account, although its address would
// otherwise be "an account with this email exists".
func TestDexSignInImportedLB3Identity(t *testing.T) {
	t.Parallel()
	port := lkpFreePort(t)
	d := dextest.Start(t, dextest.Config{RedirectURIs: []string{fmt.Sprintf("http://127.0.0.1:%d/auth/dex/callback", port)},
		Users: []dextest.User{
			{Email: "gina@example.com", Password: "gina-dex-pw"},
			{Email: "hank@example.com", Password: "hank-dex-pw"},
		}})
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	hash := "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W" // "password"
	rec := func(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }
	mem := map[string]any{
		"ids": map[string]int{"User": 3, "AccessToken": 1, "UserIdentity": 2},
		"models": map[string]map[string]string{
			"User": {
				"1": rec(map[string]any{"id": 1, "email": "gina@example.com", "password": hash, "emailVerified": true}),
				"2": rec(map[string]any{"id": 2, "email": "hank@example.com", "password": hash, "emailVerified": true}),
			},
			"AccessToken": {},
			"UserIdentity": {
				"1": rec(map[string]any{"id": 1, "provider": "dex-login", "authScheme": "oAuth 2.0", "externalId": d.Subject("gina@example.com"),
					"profile":     map[string]any{"provider": "dex-login", "id": d.Subject("gina@example.com"), "emails": []any{map[string]any{"value": "gina@example.com"}}},
					"credentials": map[string]any{"accessToken": "lb3-provider-access-token-" + lkpRandom(8), "refreshToken": "lb3-refresh-" + lkpRandom(8)},
					"userId":      1, "created": now, "modified": now}),
			},
		},
	}
	src := filepath.Join(t.TempDir(), "lb3.json")
	b, _ := json.Marshal(mem)
	if err := os.WriteFile(src, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "latchkey.db")
	out := runLB3Import(t, lkpBinary(t), dbPath, "--provider", "dex-login=dex", src)
	if !strings.Contains(out, "identities           1") {
		t.Fatalf("the import did not bring the identity:\n%s", out)
	}
	a := launchDexApp(t, d, port, map[string]string{"LATCHKEY_DB": dbPath})

	// gina's imported identity: Dex signs in to user 1, no link page.
	gina := webtest.New(t, a.base)
	dexSignIn(t, gina, d, "gina@example.com", "gina-dex-pw").Redirects("/")
	home := gina.Get("/account").Is(200, "page-account")
	if home.Text("account-email") != "gina@example.com" || home.TestID("method-dex").Length() != 1 {
		t.Fatalf("the imported identity did not sign in to the imported account:\n%s", home.Body)
	}
	if !strings.Contains(home.Text("method-password"), "set") || strings.Contains(home.Text("method-password"), "not set") {
		t.Errorf("the imported account lost its password: %q", home.Text("method-password"))
	}
	// hank was imported without an identity: his address only asks to link.
	dexSignIn(t, webtest.New(t, a.base), d, "hank@example.com", "hank-dex-pw").Is(http.StatusConflict, "page-link-prompt")
	// Passport kept provider tokens in UserIdentity.credentials: dropped.
	checkNoProviderTokens(t, storeText(t, openStoreDB(t, dbPath), "sqlite"), d.ClientSecret, "lb3-provider-access-token-", "lb3-refresh-")
}

// ---- the store, grey-box (SECURITY O6) -----------------------------------

// openStoreDB opens the app's store read-only: a SQLite file, or a
// PostgreSQL DSN (its search_path names the schema).
func openStoreDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db, err = sql.Open("pgx", dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+dsn+"?mode=ro&_pragma=busy_timeout(5000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// storeText is every text and binary value in every table of the store,
// one "table.column: value" line each.
func storeText(t *testing.T, db *sql.DB, kind string) string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if kind == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("only %d tables in the store: %v", len(tables), tables)
	}
	var out strings.Builder
	values := 0
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			for i, v := range vals {
				var s string
				switch v := v.(type) {
				case string:
					s = v
				case []byte:
					s = string(v)
				default:
					continue
				}
				values++
				fmt.Fprintf(&out, "%s.%s: %s\n", table, cols[i], s)
			}
		}
		rows.Close()
	}
	t.Logf("grey-box: %d text and binary values in %d tables", values, len(tables))
	return out.String()
}

// jwtLike is a JSON Web Token (an ID token, or a JWT access token):
// three base64url segments, the header a JSON object.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)

// checkNoProviderTokens fails t if dump holds anything looking like a
// provider token: a JWT (Dex's ID and access tokens are JWTs), or one of
// the secrets given.
func checkNoProviderTokens(t *testing.T, dump string, secrets ...string) {
	t.Helper()
	if !jwtLike.MatchString("x eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJDZ1Z6ZFdJIn0.c2lnbmF0dXJl x") {
		t.Fatal("jwtLike does not match a JWT")
	}
	if !strings.Contains(dump, "identities.") {
		t.Fatalf("the dump has no identity rows: is this the right store?\n%s", dump)
	}
	for _, line := range strings.Split(dump, "\n") {
		if jwtLike.MatchString(line) {
			t.Errorf("a JWT in the store: %.200s", line)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("a secret (%.12s…) in the store: %.200s", s, line)
			}
		}
	}
}

// identityID is the id of the only identity of the account with email, as
// the unlink form would post it.
func identityID(t *testing.T, a *dexApp, email string) string {
	t.Helper()
	var id int64
	err := openStoreDB(t, a.db).QueryRow(`SELECT i.id FROM identities i JOIN users u ON u.id = i.user_id WHERE u.email_key = ?`,
		strings.ToLower(email)).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(id, 10)
}
