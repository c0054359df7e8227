package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/passkeyfake"
	"github.com/latchkey/latchkey/models"
)

// passkeyOptions posts a passkey form's fields to its options route and
// returns the JSON, failing unless it is 200.
func passkeyOptions(t *testing.T, b *browser, path string, form url.Values) []byte {
	t.Helper()
	r := b.post(path, form, "Accept: application/json")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("POST %s: %d %s", path, r.status, r.body)
	}
	return []byte(r.body)
}

// jsonError is an options route's refusal: its status and message.
func jsonError(t *testing.T, r *htmlPage) (int, string) {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("not a JSON error (%d): %s", r.status, r.body)
	}
	return r.status, m["error"]
}

// TestPagesPasskeys: the passkey routes end to end with a software
// authenticator — add one from the account section (password first),
// sign in with it and no password, use it as the second step, remove it
// with a plain form — and their refusals: no CSRF token (403), signed out
// (401 / to /login), a used or foreign ceremony, a wrong password, each a
// 4xx, readable as a page or JSON.
func TestPagesPasskeys(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	const email, pw = "ann@example.com", "ann-secret-pw-1"
	b := signupInBrowser(t, env, email, pw)
	home := b.get("/account")
	home.is(200, "page-account")
	add := home.testid("passkey-add-form")
	if add.Length() != 1 || !add.Is("[hidden]") || home.testid("passkeys-none").Length() != 1 {
		t.Fatalf("the passkeys section (the add form hidden until the script shows it):\n%s", home.body)
	}
	csrf := home.csrf()
	key := passkeyfake.New("http://localhost:3000")

	// Adding: CSRF, a session and the current password come first.
	b.post("/account/passkeys/options", url.Values{"name": {"Laptop"}, "password": {pw}}).is(http.StatusForbidden, "page-error")
	if st, msg := jsonError(t, b.post("/account/passkeys/options", url.Values{"_csrf": {csrf}, "name": {"Laptop"}, "password": {"wrong-password-9"}})); st != 401 || msg == "" {
		t.Fatalf("a wrong password: %d %q", st, msg)
	}
	if st, _ := jsonError(t, b.post("/account/passkeys/options", url.Values{"_csrf": {csrf}, "name": {" "}, "password": {pw}})); st != 422 {
		t.Fatalf("no name: %d", st)
	}
	opts := passkeyOptions(t, b, "/account/passkeys/options", url.Values{"_csrf": {csrf}, "name": {"Laptop"}, "password": {pw}})
	var o struct {
		PublicKey struct {
			RP struct{ ID string } `json:"rp"`
		} `json:"publicKey"`
	}
	if json.Unmarshal(opts, &o); o.PublicKey.RP.ID != "localhost" {
		t.Fatalf("RP ID: %s", opts)
	}
	resp, err := key.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.post("/account/passkeys", url.Values{"credential": {string(resp)}, "return_to": {"/account"}}).is(http.StatusForbidden, "page-error")
	b.submit(home, `[data-testid="passkey-add-form"]`, url.Values{"credential": {string(resp)}, "return_to": {"/account"}}).redirects("/account#passkeys")
	home = b.get("/account")
	if home.text("passkey-name") != "Laptop" || home.text("flash") == "" {
		t.Fatalf("the new passkey is not listed:\n%s", home.body)
	}
	// The same answer again: its ceremony is used up (M5).
	b.submit(home, `[data-testid="passkey-add-form"]`, url.Values{"credential": {string(resp)}}).is(http.StatusUnauthorized, "page-response")

	// Signed out, the account routes refuse.
	out := newBrowser(t, env, "http://localhost:3000")
	login := out.get("/login")
	if st, _ := jsonError(t, out.post("/account/passkeys/options", url.Values{"_csrf": {login.csrf()}, "name": {"x"}})); st != 401 {
		t.Fatalf("options signed out: %d", st)
	}
	out.post("/account/passkeys", url.Values{"_csrf": {login.csrf()}, "credential": {string(resp)}}).redirects("/login")

	// Sign in with the passkey and no password.
	form := login.testid("passkey-login-form")
	if form.Length() != 1 || !form.Is("[hidden]") || login.find(`input[name=email]`).AttrOr("autocomplete", "") != "username webauthn" {
		t.Fatalf("the login page's passkey form:\n%s", login.body)
	}
	out.post("/login/passkey/options", url.Values{}).is(http.StatusForbidden, "page-error")
	opts = passkeyOptions(t, out, "/login/passkey/options", url.Values{"_csrf": {login.csrf()}})
	assertion, err := key.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Another browser cannot finish this browser's ceremony.
	thief := newBrowser(t, env, "http://localhost:3000")
	tl := thief.get("/login")
	passkeyOptions(t, thief, "/login/passkey/options", url.Values{"_csrf": {tl.csrf()}})
	thief.submit(tl, `[data-testid="passkey-login-form"]`, url.Values{"credential": {string(assertion)}}).is(http.StatusUnauthorized, "page-response")
	out.post("/login/passkey", url.Values{"credential": {string(assertion)}}).is(http.StatusForbidden, "page-error")
	out.submit(login, `[data-testid="passkey-login-form"]`, url.Values{"credential": {string(assertion)}}).redirects("/")
	if signedInAs(t, out) != email {
		t.Fatal("not signed in with the passkey")
	}
	// Replayed: refused on a readable page.
	again := newBrowser(t, env, "http://localhost:3000")
	al := again.get("/login")
	passkeyOptions(t, again, "/login/passkey/options", url.Values{"_csrf": {al.csrf()}})
	r := again.submit(al, `[data-testid="passkey-login-form"]`, url.Values{"credential": {string(assertion)}})
	r.is(http.StatusUnauthorized, "page-response")
	checkPageHeaders(t, r)
	again.submit(al, `[data-testid="passkey-login-form"]`, url.Values{"credential": {"{not json"}}).is(http.StatusUnauthorized, "page-response")

	// A password login now asks for the second step: the passkey alone.
	two := newBrowser(t, env, "http://localhost:3000")
	two.submit(two.get("/login"), `form[action="/login"]`, url.Values{"email": {email}, "password": {pw}}).redirects("/login/verify")
	step := two.get("/login/verify")
	step.is(200, "page-second-step")
	if step.testid("passkey-second-step-form").Length() != 1 || step.testid("second-step-form").Length() != 0 {
		t.Fatalf("the second step of an account with only a passkey:\n%s", step.body)
	}
	nb := newBrowser(t, env, "http://localhost:3000")
	if st, _ := jsonError(t, nb.post("/login/verify/passkey/options", url.Values{"_csrf": {nb.get("/login").csrf()}})); st != 401 {
		t.Fatalf("second-step options without a pending step: %d", st)
	}
	opts = passkeyOptions(t, two, "/login/verify/passkey/options", url.Values{"_csrf": {step.csrf()}})
	assertion, _ = key.Get(opts)
	two.submit(step, `[data-testid="passkey-second-step-form"]`, url.Values{"credential": {string(assertion)}}).redirects("/")
	if signedInAs(t, two) != email || two.cookie("latchkey_mfa") != "" {
		t.Fatal("not signed in after the passkey as second step")
	}

	// Remove it: a plain form with the password.
	home = b.get("/account")
	if home.text("passkey-last-used") == "" {
		t.Errorf("the last use is not shown:\n%s", home.body)
	}
	rm := `[data-testid="passkey-remove-form"]`
	b.submit(home, rm, url.Values{"password": {"wrong-password-9"}}).is(http.StatusUnauthorized, "page-response")
	b.submit(home, rm, url.Values{"password": {pw}}).redirects("/account#passkeys")
	if b.get("/account").testid("passkeys-none").Length() != 1 {
		t.Fatal("the passkey is still listed")
	}
	b.submit(home, rm, url.Values{"password": {pw}}).is(http.StatusNotFound, "page-error")
	b.post("/account/passkeys/not*base64/remove", url.Values{"_csrf": {home.csrf()}, "password": {pw}}).is(http.StatusNotFound, "page-error")
	b.post("/account/passkeys/AAAA/remove", url.Values{"password": {pw}}).is(http.StatusForbidden, "page-error")
}

// TestPagesPasskeysOff: with a base URL whose host is an IP address (no
// WebAuthn RP ID) the pages offer no passkeys and the routes say so.
func TestPagesPasskeysOff(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(_ *models.Config, o *handlers.Options) { o.BaseURL = "http://127.0.0.1:3000" })
	b := newBrowser(t, env, "http://127.0.0.1:3000")
	login := b.get("/login")
	if login.testid("passkey-login-form").Length() != 0 || login.find(`input[name=email]`).AttrOr("autocomplete", "") != "username" {
		t.Fatalf("passkeys offered without an RP ID:\n%s", login.body)
	}
	if st, _ := jsonError(t, b.post("/login/passkey/options", url.Values{"_csrf": {login.csrf()}})); st != http.StatusNotFound {
		t.Fatalf("options: %d", st)
	}
	b.post("/login/passkey", url.Values{"_csrf": {login.csrf()}, "credential": {"{}"}}).is(http.StatusNotFound, "page-response")
}

// TestPagesPasskeyWithTOTP: with an authenticator app and a passkey, the
// second step offers both, and the passkey finishes it.
func TestPagesPasskeyWithTOTP(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b, _, _ := enableTOTPInBrowser(t, env)
	home := b.get("/account")
	key := passkeyfake.New("http://localhost:3000")
	opts := passkeyOptions(t, b, "/account/passkeys/options", url.Values{"_csrf": {home.csrf()}, "name": {"Phone"}, "password": {"ann-secret-pw-1"}})
	resp, err := key.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.submit(home, `[data-testid="passkey-add-form"]`, url.Values{"credential": {string(resp)}, "return_to": {"/account"}}).redirects("/account#passkeys")

	two := newBrowser(t, env, "http://localhost:3000")
	two.submit(two.get("/login"), `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/login/verify")
	step := two.get("/login/verify")
	if step.testid("passkey-second-step-form").Length() != 1 || step.testid("second-step-form").Length() != 1 {
		t.Fatalf("the second step should offer the passkey and the code:\n%s", step.body)
	}
	opts = passkeyOptions(t, two, "/login/verify/passkey/options", url.Values{"_csrf": {step.csrf()}})
	assertion, _ := key.Get(opts)
	two.submit(step, `[data-testid="passkey-second-step-form"]`, url.Values{"credential": {string(assertion)}}).redirects("/")
	if signedInAs(t, two) != "ann@example.com" {
		t.Fatal("not signed in after the passkey")
	}
}
