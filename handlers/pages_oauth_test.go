package handlers_test

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
)

// stubProvider is an in-process provider for the flow's handler tests: its
// "authorization server" approves whoever it is told to, and Exchange
// checks the code once, the PKCE verifier against the challenge and the
// nonce, as a real provider and go-oidc would. The real providers (and
// Dex) are tested in internal/oauth and e2e.
type stubProvider struct {
	id, label string
	autoLink  bool
	ready     bool

	mu      sync.Mutex
	account oauth.Account // whom the next authorization approves
	codes   map[string]stubGrant
	last    url.Values // the last authorization request
	n       int
}

type stubGrant struct {
	challenge, nonce string
	account          oauth.Account
}

func newStub(id string) *stubProvider {
	return &stubProvider{id: id, label: strings.ToUpper(id[:1]) + id[1:], ready: true, codes: map[string]stubGrant{}}
}

func (s *stubProvider) ID() string     { return s.id }
func (s *stubProvider) Label() string  { return s.label }
func (s *stubProvider) Kind() string   { return "oidc" }
func (s *stubProvider) AutoLink() bool { return s.autoLink }
func (s *stubProvider) Ready() bool    { return s.ready }
func (s *stubProvider) Issuer() string { return "" }

func (s *stubProvider) AuthURL(state, nonce, verifier string) (string, error) {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"state": {state}, "nonce": {nonce}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}, "redirect_uri": {"http://localhost:3000/auth/" + s.id + "/callback"}}
	return "https://provider.test/authorize?" + q.Encode(), nil
}

func (s *stubProvider) Exchange(_ context.Context, code, verifier, nonce string) (oauth.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.codes[code]
	delete(s.codes, code)
	sum := sha256.Sum256([]byte(verifier))
	switch {
	case !ok:
		return oauth.Account{}, fmt.Errorf("%w: unknown code", oauth.ErrExchange)
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		return oauth.Account{}, fmt.Errorf("%w: PKCE", oauth.ErrExchange)
	case subtle.ConstantTimeCompare([]byte(nonce), []byte(g.nonce)) != 1:
		return oauth.Account{}, fmt.Errorf("%w: nonce", oauth.ErrExchange)
	}
	return g.account, nil
}

// approve plays the provider's login page: it takes the authorization URL
// the app sent the browser to and returns the callback the provider sends
// it back to, as a path of the app.
func (s *stubProvider) approve(t *testing.T, authURL string) string {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil || u.Host != "provider.test" {
		t.Fatalf("the app sent the browser to %q, not to the provider", authURL)
	}
	q := u.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = q
	s.n++
	code := fmt.Sprintf("code-%d", s.n)
	acct := s.account
	acct.Provider = s.id
	s.codes[code] = stubGrant{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), account: acct}
	return "/auth/" + s.id + "/callback?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
}

// stubRegistry is the handlers.Providers of the stubs.
type stubRegistry []*stubProvider

func (r stubRegistry) Get(id string) (oauth.Provider, bool) {
	for _, p := range r {
		if p.id == id {
			return p, true
		}
	}
	return nil, false
}

func (r stubRegistry) List() []oauth.Provider {
	out := make([]oauth.Provider, len(r))
	for i, p := range r {
		out[i] = p
	}
	return out
}

func withProviders(ps ...*stubProvider) envOption {
	return func(_ *models.Config, o *handlers.Options) { o.Providers = stubRegistry(ps) }
}

// startSignIn presses "Continue with <id>" on the login page and returns
// the provider URL the browser is sent to.
func startSignIn(t *testing.T, b *browser, id string, extra url.Values) string {
	t.Helper()
	login := b.get("/login")
	login.is(200, "page-login")
	r := b.submit(login, `form[action="/auth/`+id+`"]`, extra)
	if r.status != http.StatusSeeOther {
		t.Fatalf("Continue with %s: %d\n%s", id, r.status, r.body)
	}
	return r.header.Get("Location")
}

// signInWith runs the whole flow in b: the button, the provider, the
// callback. It returns the callback's answer.
func signInWith(t *testing.T, b *browser, p *stubProvider, acct oauth.Account, extra url.Values) *htmlPage {
	t.Helper()
	p.account = acct
	return b.get(p.approve(t, startSignIn(t, b, p.id, extra)))
}

func signedInAs(t *testing.T, b *browser) string {
	t.Helper()
	home := b.get("/")
	if home.testid("account-email").Length() != 1 {
		return ""
	}
	return home.text("account-email")
}

// TestOAuthO1FlowBoundAndSingleUse: the authorization request carries
// state, nonce and an S256 challenge; the callback signs in once, in the
// browser that started it, within 10 minutes; a replay, a forged state, a
// callback in another browser or after the time → 4xx and no session.
func TestOAuthO1FlowBoundAndSingleUse(t *testing.T) {
	t.Parallel()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	b := newBrowser(t, env, "http://localhost:3000")

	authURL := startSignIn(t, b, "dex", nil)
	q := mustQuery(t, authURL)
	if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Fatalf("authorization request %v: want state, nonce and an S256 challenge", q)
	}
	dex.account = oauth.Account{Subject: "sub-1", Email: "new@example.com", EmailVerified: true}
	callback := dex.approve(t, authURL)

	// Another browser with the same callback: refused, and the flow stays
	// usable by its own browser.
	other := newBrowser(t, env, "http://localhost:3000")
	other.get(callback).is(400, "page-response")
	if other.cookie("latchkey_session") != "" {
		t.Fatal("another browser got a session from the callback")
	}
	b.get(callback).redirects("/")
	if signedInAs(t, b) != "new@example.com" {
		t.Fatal("not signed in after the callback")
	}
	// Replayed, in the same browser (logged out first) and in another.
	b.submit(b.get("/"), `form[data-testid="nav-logout-form"]`, nil)
	for _, br := range []*browser{b, other} {
		r := br.get(callback)
		r.is(400, "page-response")
		if !strings.Contains(r.text("response-content"), "used already") || br.cookie("latchkey_session") != "" {
			t.Fatalf("a replayed callback: %s", r.body)
		}
	}
	// A forged state.
	b.get("/auth/dex/callback?code=code-1&state=forged").is(400, "page-response")
	// Too late.
	late := dex.approve(t, startSignIn(t, b, "dex", nil))
	env.clock.Advance(11 * time.Minute)
	r := b.get(late)
	r.is(400, "page-response")
	if !strings.Contains(r.text("response-title"), "too long") || b.cookie("latchkey_session") != "" {
		t.Fatalf("an expired flow: %s", r.body)
	}
	// Cancelled at the provider.
	cancel := mustQuery(t, startSignIn(t, b, "dex", nil))
	r = b.get("/auth/dex/callback?error=access_denied&state=" + url.QueryEscape(cancel.Get("state")))
	r.is(400, "page-response")
	if !strings.Contains(r.text("response-title"), "cancelled") || r.find(`a[href="/login"]`).Length() == 0 {
		t.Fatalf("cancelled: %s", r.body)
	}
}

// TestOAuthO3SignUpThenSignInByIdentity: a new provider account makes an account with
// no password, the address verified as the provider says; the next sign-in
// (the provider's email changed meanwhile: O3) is the same account; the
// session says how it signed in.
func TestOAuthO3SignUpThenSignInByIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	b := newBrowser(t, env, "http://localhost:3000")

	signInWith(t, b, dex, oauth.Account{Subject: "sub-gil", Email: "gil@example.com", EmailVerified: true}, nil).redirects("/")
	u, err := env.users.FindUserByEmail(ctx, "gil@example.com")
	if err != nil || u.HasPassword() || u.EmailVerified == nil || !*u.EmailVerified {
		t.Fatalf("the new account: %+v, %v; want no password and a verified address", u, err)
	}
	sessions := b.get("/sessions")
	if got := sessions.text("session-method"); got != "Dex" {
		t.Errorf("the session signed in with %q, want Dex", got)
	}
	home := b.get("/account") // the account page has the sign-in methods
	if home.testid("method-dex").Length() != 1 {
		t.Errorf("Sign-in methods lacks Dex:\n%s", home.body)
	}

	// O3: the provider account's address changed; the identity did not.
	b2 := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, b2, dex, oauth.Account{Subject: "sub-gil", Email: "gil.new@example.com", EmailVerified: true}, nil).redirects("/")
	if got := signedInAs(t, b2); got != "gil@example.com" {
		t.Errorf("after the provider's email changed, signed in as %q, want gil@example.com", got)
	}
	// An unverified provider address stays unverified here.
	b3 := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, b3, dex, oauth.Account{Subject: "sub-una", Email: "una@example.com"}, nil).redirects("/")
	if u, err := env.users.FindUserByEmail(ctx, "una@example.com"); err != nil || u.EmailVerified == nil || *u.EmailVerified {
		t.Errorf("an unverified provider address: %+v, %v", u, err)
	}
}

// TestOAuthO4NoTakeoverByEmail: a provider account that claims an
// existing account's address (verified or not) signs nobody in to it: the
// page asks for the password, the owner's password still works and, typed
// there, links the provider; auto-link happens only when the operator opted
// in and both addresses are verified.
func TestOAuthO4NoTakeoverByEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dex, git := newStub("dex"), newStub("git")
	git.autoLink = true
	env := newEnv(t, withProviders(dex, git))
	annID := env.signup("ann@example.com", "ann-secret-pw-1")

	for _, verified := range []bool{false, true} {
		attacker := newBrowser(t, env, "http://localhost:3000")
		r := signInWith(t, attacker, dex, oauth.Account{Subject: fmt.Sprintf("evil-%t", verified), Email: "Ann@Example.com",
			EmailVerified: verified}, nil)
		r.is(http.StatusConflict, "page-link-prompt")
		if attacker.cookie("latchkey_session") != "" || signedInAs(t, attacker) != "" {
			t.Fatalf("a provider claiming ann's address (verified %t) was signed in", verified)
		}
	}
	if ids, _ := env.users.IdentitiesOf(ctx, annID); len(ids) != 0 {
		t.Fatalf("ann has identities she never linked: %+v", ids)
	}
	owner := newBrowser(t, env, "http://localhost:3000")
	prompt := signInWith(t, owner, dex, oauth.Account{Subject: "ann-dex", Email: "ann@example.com", EmailVerified: true}, nil)
	prompt.is(http.StatusConflict, "page-link-prompt")
	owner.submit(prompt, `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/")
	if home := owner.get("/"); !strings.Contains(home.body, "linked to your account") {
		t.Fatalf("after the password, no word of the link:\n%s", home.body)
	}
	if acct := owner.get("/account"); acct.testid("method-dex").Length() != 1 {
		t.Fatalf("after the password, dex is not linked:\n%s", acct.body)
	}
	// A pending link only attaches to the account whose address it named:
	// logging in to another account on that page links nothing.
	env.signup("bob@example.com", "bob-secret-pw-1")
	mixed := newBrowser(t, env, "http://localhost:3000")
	prompt = signInWith(t, mixed, dex, oauth.Account{Subject: "ann-dex-2", Email: "ann@example.com", EmailVerified: true}, nil)
	prompt.is(http.StatusConflict, "page-link-prompt")
	mixed.submit(prompt, `form[action="/login"]`, url.Values{"email": {"bob@example.com"}, "password": {"bob-secret-pw-1"}}).redirects("/")
	if home := mixed.get("/"); !strings.Contains(home.body, "could not be linked") {
		t.Fatalf("bob was not told the link failed:\n%s", home.body)
	}
	if acct := mixed.get("/account"); acct.testid("method-dex").Length() != 0 {
		t.Fatalf("bob got ann's pending provider account:\n%s", acct.body)
	}

	again := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, again, dex, oauth.Account{Subject: "ann-dex", Email: "ann@example.com", EmailVerified: true}, nil).redirects("/")
	if got := signedInAs(t, again); got != "ann@example.com" {
		t.Fatalf("the linked provider signs in as %q", got)
	}

	// Auto-link (git opted in): not while ann's own address is unverified…
	signInWith(t, newBrowser(t, env, "http://localhost:3000"), git, oauth.Account{Subject: "ann-git", Email: "ann@example.com", EmailVerified: true}, nil).
		is(http.StatusConflict, "page-link-prompt")
	// …nor with an unverified provider address once it is verified…
	verifyEmail(t, env, annID)
	signInWith(t, newBrowser(t, env, "http://localhost:3000"), git, oauth.Account{Subject: "ann-git", Email: "ann@example.com"}, nil).
		is(http.StatusConflict, "page-link-prompt")
	// …only both verified.
	auto := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, auto, git, oauth.Account{Subject: "ann-git", Email: "ann@example.com", EmailVerified: true}, nil).redirects("/")
	if got := signedInAs(t, auto); got != "ann@example.com" {
		t.Fatalf("auto-link signed in as %q", got)
	}
	if _, _, err := env.users.Login(ctx, models.Credentials{Email: "ann@example.com", Password: "ann-secret-pw-1"}, models.ClientMeta{}); err != nil {
		t.Errorf("ann's password after all this: %v", err)
	}
}

// verifyEmail marks a user's address verified, as the confirm link does.
func verifyEmail(t *testing.T, env *testEnv, id int64) {
	t.Helper()
	tok := env.login("ann@example.com", "ann-secret-pw-1")
	if r := env.do("PATCH", fmt.Sprintf("/api/users/%d", id), "", "Authorization: "+tok); r.status == 0 {
		t.Fatal("no answer")
	}
	ctx := context.Background()
	err := env.db.Write(ctx, env.clock.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE users SET email_verified = 1 WHERE id = ?`, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOAuthO5ReturnToLocalOnly: return_to is followed when it is a path of
// this site and ignored otherwise.
func TestOAuthO5ReturnToLocalOnly(t *testing.T) {
	t.Parallel()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	for to, want := range map[string]string{
		"/sessions": "/sessions", "https://evil.test/x": "/", "//evil.test": "/", `/\evil.test`: "/", "javascript:alert(1)": "/",
	} {
		b := newBrowser(t, env, "http://localhost:3000")
		p := b.get("/auth/dex?return_to=" + url.QueryEscape(to))
		if p.status != http.StatusFound {
			t.Fatalf("GET /auth/dex: %d", p.status)
		}
		dex.account = oauth.Account{Subject: "sub-" + to, Email: ""}
		b.get(dex.approve(t, p.header.Get("Location"))).redirects(want)
	}
}

// TestOAuthO7LinkAndUnlink: linking needs the session and a recent
// authentication (the password otherwise); unlinking never removes the
// last way to sign in; the API lists and removes identities the same way.
func TestOAuthO7LinkAndUnlink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dex, git := newStub("dex"), newStub("git")
	env := newEnv(t, withProviders(dex, git))

	// gil has no password: only dex.
	b := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, b, dex, oauth.Account{Subject: "gil", Email: "gil@example.com", EmailVerified: true}, nil).redirects("/")
	home := b.get("/account")
	if home.find(`form[action^="/unlink/"]`).Length() != 0 || home.testid("only-dex").Length() != 1 {
		t.Fatalf("the only way to sign in offers Remove:\n%s", home.body)
	}
	r := b.post("/unlink/1", url.Values{"_csrf": {home.csrf()}}) // the button is not shown; the POST is still refused
	r.is(http.StatusConflict, "page-response")
	if !strings.Contains(r.text("response-title"), "only way") {
		t.Fatalf("unlinking the only method: %s", r.body)
	}
	// Add git while the sign-in is recent: no password asked.
	r = b.submit(home, `form[action="/link/git"]`, nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("link git: %d %s", r.status, r.body)
	}
	git.account = oauth.Account{Subject: "gil-git", Login: "gil"}
	b.get(git.approve(t, r.header.Get("Location"))).redirects("/account")
	home = b.get("/account")
	if home.testid("method-git").Length() != 1 {
		t.Fatalf("git not linked:\n%s", home.body)
	}
	// Now dex can go.
	b.submit(home, `li[data-testid="method-dex"] form`, nil).redirects("/account")
	u, _ := env.users.FindUserByEmail(ctx, "gil@example.com")
	if ids, _ := env.users.IdentitiesOf(ctx, u.ID); len(ids) != 1 || ids[0].Provider != "git" {
		t.Fatalf("identities after unlinking dex: %+v", ids)
	}

	// A provider account of someone else cannot be linked here.
	ann := newBrowser(t, env, "http://localhost:3000")
	annID := env.signup("ann@example.com", "ann-secret-pw-1")
	login := ann.get("/login")
	ann.submit(login, `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/")
	env.clock.Advance(11 * time.Minute) // no longer a recent sign-in: linking asks for the password
	annHome := ann.get("/account")
	if annHome.find(`form[action="/link/git"] input[name=password]`).Length() != 1 {
		t.Fatalf("the link form of a stale session asks no password:\n%s", annHome.body)
	}
	ann.submit(annHome, `form[action="/link/git"]`, url.Values{"password": {"wrong-password-1"}}).is(http.StatusUnauthorized, "page-response")
	r = ann.submit(annHome, `form[action="/link/git"]`, url.Values{"password": {"ann-secret-pw-1"}})
	git.account = oauth.Account{Subject: "gil-git"}
	r = ann.get(git.approve(t, r.header.Get("Location")))
	r.is(http.StatusConflict, "page-response")
	if !strings.Contains(r.text("response-title"), "another account") {
		t.Fatalf("linking someone else's provider account: %s", r.body)
	}

	// The API: list, refuse the last, remove another.
	tok := env.login("ann@example.com", "ann-secret-pw-1")
	list := env.do("GET", fmt.Sprintf("/api/users/%d/identities", annID), "", "Authorization: "+tok)
	if list.status != 200 || list.body != "[]" {
		t.Fatalf("ann's identities: %d %s", list.status, list.body)
	}
	gilTok := sessionToken(t, b)
	gil := env.do("GET", fmt.Sprintf("/api/users/%d/identities", u.ID), "", "Authorization: "+gilTok)
	if gil.status != 200 || !strings.Contains(gil.body, `"provider":"git"`) || !strings.Contains(gil.body, `"externalId":"gil-git"`) {
		t.Fatalf("gil's identities: %d %s", gil.status, gil.body)
	}
	var idID int64
	ids, _ := env.users.IdentitiesOf(ctx, u.ID)
	idID = ids[0].ID
	del := env.do("DELETE", fmt.Sprintf("/api/users/%d/identities/%d", u.ID, idID), "", "Authorization: "+gilTok)
	if del.status != 422 || del.errorOf(t)["code"] != "LAST_SIGN_IN_METHOD" {
		t.Fatalf("deleting gil's last identity: %d %s", del.status, del.body)
	}
	if r := env.do("DELETE", fmt.Sprintf("/api/users/%d/identities/%d", annID, idID), "", "Authorization: "+tok); r.status != 404 {
		t.Fatalf("ann deleting gil's identity: %d %s", r.status, r.body)
	}
	if r := env.do("GET", fmt.Sprintf("/api/users/%d/identities", u.ID), "", "Authorization: "+tok); r.status != 401 {
		t.Fatalf("ann listing gil's identities: %d %s", r.status, r.body)
	}
}

// sessionToken is the browser's session cookie: the token.
func sessionToken(t *testing.T, b *browser) string {
	t.Helper()
	v := b.cookie("latchkey_session")
	if v == "" {
		t.Fatal("the browser has no session")
	}
	return v
}

// TestOAuthReauthWithoutPassword: an account without a password confirms
// a sensitive change by signing in again through its provider.
func TestOAuthReauthWithoutPassword(t *testing.T) {
	t.Parallel()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	b := newBrowser(t, env, "http://localhost:3000")
	acct := oauth.Account{Subject: "gil", Email: "gil@example.com", EmailVerified: true}
	signInWith(t, b, dex, acct, nil).redirects("/")
	other := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, other, dex, acct, nil).redirects("/")
	if signedInAs(t, other) != "gil@example.com" {
		t.Fatal("the second browser is not signed in")
	}
	env.clock.Advance(11 * time.Minute)
	page := b.get("/sessions")
	if page.testid("sessions-revoke-others").Length() != 0 || page.testid("reauth-dex").Length() != 1 {
		t.Fatalf("a stale session without a password: the page should offer Confirm with Dex only:\n%s", page.body)
	}
	r := b.post("/sessions/revoke-others", url.Values{"_csrf": {page.csrf()}})
	r.is(http.StatusUnprocessableEntity, "page-sessions")
	r = b.submit(page, `form[action="/auth/dex"]`, nil)
	dex.account = acct
	b.get(dex.approve(t, r.header.Get("Location"))).redirects("/sessions")
	page = b.get("/sessions")
	b.submit(page, `form[action="/sessions/revoke-others"]`, nil).redirects("/sessions?done=others")
	if signedInAs(t, other) != "" {
		t.Error("the other session survived log out everywhere else")
	}
	// Someone else's provider account is no re-authentication.
	env.clock.Advance(11 * time.Minute)
	home := b.get("/account")
	r = b.submit(home, `section[data-testid="sign-in-methods"] form[action="/auth/dex"]`, nil)
	dex.account = oauth.Account{Subject: "not-gil"}
	b.get(dex.approve(t, r.header.Get("Location"))).is(http.StatusForbidden, "page-response")
}

// TestOAuthProviderNotReady: a provider whose discovery has not worked yet
// has no button, and its route says so with 503 and Retry-After.
func TestOAuthProviderNotReady(t *testing.T) {
	t.Parallel()
	dex, down := newStub("dex"), newStub("down")
	down.ready = false
	env := newEnv(t, withProviders(dex, down))
	b := newBrowser(t, env, "http://localhost:3000")
	login := b.get("/login")
	if login.testid("provider-dex").Length() != 1 || login.testid("provider-down").Length() != 0 {
		t.Fatalf("buttons on the login page:\n%s", login.body)
	}
	if b.get("/signup").testid("provider-dex").Length() != 1 {
		t.Error("no button on the sign-up page")
	}
	r := b.get("/auth/down")
	r.is(http.StatusServiceUnavailable, "page-response")
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	b.get("/auth/nope").is(http.StatusNotFound, "page-response")
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestOAuthSetPasswordWithoutOne: an account made through a provider sets
// its first password through change-password without an old one, while its
// sign-in is recent; later it must sign in again first.
func TestOAuthSetPasswordWithoutOne(t *testing.T) {
	t.Parallel()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	b := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, b, dex, oauth.Account{Subject: "gil", Email: "gil@example.com", EmailVerified: true}, nil).redirects("/")
	tok := sessionToken(t, b)
	r := env.do("POST", "/api/users/change-password", `{"newPassword":"gil-first-password-1"}`, "Authorization: "+tok)
	if r.status != 204 {
		t.Fatalf("setting a first password: %d %s", r.status, r.body)
	}
	env.login("gil@example.com", "gil-first-password-1")

	late := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, late, dex, oauth.Account{Subject: "una", Email: "una@example.com"}, nil).redirects("/")
	env.clock.Advance(11 * time.Minute)
	r = env.do("POST", "/api/users/change-password", `{"newPassword":"una-first-password-1"}`, "Authorization: "+sessionToken(t, late))
	if r.status != 401 || r.errorOf(t)["code"] != "REAUTHENTICATION_REQUIRED" {
		t.Fatalf("a stale session setting a first password: %d %s", r.status, r.body)
	}
}

// TestOAuthFormActionAllowsTheProviders: the buttons are forms posting to
// /auth/<id>, answered with a redirect to the provider, and browsers check
// CSP form-action on each redirect of a form submission: the pages' CSP
// must name the ready providers' origins (and only those), or Chromium
// stops the sign-in before it reaches the provider.
func TestOAuthFormActionAllowsTheProviders(t *testing.T) {
	t.Parallel()
	dex, down := newStub("dex"), newStub("down")
	down.ready = false
	env := newEnv(t, withProviders(dex, down))
	b := newBrowser(t, env, "http://localhost:3000")
	for _, path := range []string{"/login", "/signup"} {
		csp := b.get(path).header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "form-action 'self' https://provider.test;") {
			t.Errorf("%s: Content-Security-Policy = %q, want form-action 'self' https://provider.test", path, csp)
		}
	}
	noProviders := newBrowser(t, newEnv(t), "http://localhost:3000")
	if csp := noProviders.get("/login").header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self';") {
		t.Errorf("without providers: Content-Security-Policy = %q", csp)
	}
}
