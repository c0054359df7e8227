package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/pquerna/otp/totp"
)

// enableTOTPInBrowser signs ann up and in, and turns two-step verification
// on through the pages; it returns the browser, the secret and the codes.
func enableTOTPInBrowser(t *testing.T, env *testEnv) (*browser, string, []string) {
	t.Helper()
	env.signup("ann@example.com", "ann-secret-pw-1")
	b := newBrowser(t, env, "http://localhost:3000")
	b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/")
	home := b.get("/")
	// Wrong password: refused, nothing enrolled.
	b.post("/account/two-step/start", url.Values{"_csrf": {home.csrf()}, "password": {"wrong-password-1"}}).is(http.StatusUnauthorized, "page-response")
	enrol := b.post("/account/two-step/start", url.Values{"_csrf": {home.csrf()}, "password": {"ann-secret-pw-1"}})
	enrol.is(200, "page-totp-enrol")
	if enrol.find(`[data-testid="totp-qr"] svg path`).Length() != 1 {
		t.Fatalf("no QR code:\n%s", enrol.body)
	}
	secret := strings.ReplaceAll(enrol.text("totp-secret"), " ", "")
	b.submit(enrol, `form[data-testid="totp-confirm-form"]`, url.Values{"code": {"000000"}}).is(http.StatusUnprocessableEntity, "page-response")
	code, _ := totp.GenerateCode(secret, env.clock.Now())
	done := b.submit(enrol, `form[data-testid="totp-confirm-form"]`, url.Values{"code": {code}})
	done.is(200, "page-recovery-codes")
	var codes []string
	done.find(`[data-testid="recovery-codes"] code`).Each(func(_ int, s *goquery.Selection) { codes = append(codes, s.Text()) })
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown", len(codes))
	}
	env.clock.Advance(30 * time.Second)
	return b, secret, codes
}

// TestPagesTwoStepLogin: with TOTP on, the password alone gives no
// session: the second step does, with a code from the app or a recovery
// code, each once; the session cookie comes only after both.
func TestPagesTwoStepLogin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	_, secret, codes := enableTOTPInBrowser(t, env)

	b := newBrowser(t, env, "http://localhost:3000")
	r := b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}})
	r.redirects("/login/verify")
	if b.cookie("latchkey_session") != "" {
		t.Fatal("a session cookie before the second step")
	}
	step := b.get("/login/verify")
	step.is(200, "page-second-step")
	b.submit(step, `form[data-testid="second-step-form"]`, url.Values{"code": {"123456"}}).is(http.StatusUnauthorized, "page-second-step")
	code, _ := totp.GenerateCode(secret, env.clock.Now())
	b.submit(step, `form[data-testid="second-step-form"]`, url.Values{"code": {code}}).redirects("/")
	if signedInAs(t, b) != "ann@example.com" {
		t.Fatal("not signed in after the second step")
	}

	// The same code in another login: refused; a recovery code: once.
	b2 := newBrowser(t, env, "http://localhost:3000")
	b2.submit(b2.get("/login"), `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/login/verify")
	step = b2.get("/login/verify")
	b2.submit(step, `form[data-testid="second-step-form"]`, url.Values{"code": {code}}).is(http.StatusUnauthorized, "page-second-step")
	b2.submit(step, `form[data-testid="second-step-form"]`, url.Values{"code": {strings.ToUpper(codes[0])}}).redirects("/")
	b3 := newBrowser(t, env, "http://localhost:3000")
	b3.submit(b3.get("/login"), `form[action="/login"]`, url.Values{"email": {"ann@example.com"}, "password": {"ann-secret-pw-1"}}).redirects("/login/verify")
	step3 := b3.get("/login/verify")
	b3.submit(step3, `form[data-testid="second-step-form"]`, url.Values{"code": {codes[0]}}).is(http.StatusUnauthorized, "page-second-step")

	// Without a pending step the page sends the browser to log in; too late
	// is a readable 401.
	newBrowser(t, env, "http://localhost:3000").get("/login/verify").redirects("/login")
	env.clock.Advance(6 * time.Minute)
	b3.post("/login/verify", url.Values{"_csrf": {step3.csrf()}, "code": {"123456"}}).is(http.StatusUnauthorized, "page-response")
}

// TestAPITwoStepLogin: the API answers 401 MFA_REQUIRED with an mfaToken
// for an account with a second factor, and /login/mfa finishes it with
// LoopBack's login answer; an account without one sees LoopBack's login.
func TestAPITwoStepLogin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	_, secret, _ := enableTOTPInBrowser(t, env)
	r := env.do("POST", "/api/users/login", `{"email":"ann@example.com","password":"ann-secret-pw-1"}`)
	e := r.errorOf(t)
	if r.status != 401 || e["code"] != "MFA_REQUIRED" || e["mfaToken"] == nil || e["statusCode"] != float64(401) {
		t.Fatalf("login with TOTP on: %d %s", r.status, r.body)
	}
	mfa := e["mfaToken"].(string)
	bad := env.do("POST", "/api/users/login/mfa", fmt.Sprintf(`{"mfaToken":%q,"code":"000000"}`, mfa))
	if bad.status != 401 || bad.errorOf(t)["code"] != "INVALID_MFA_CODE" {
		t.Fatalf("a wrong code: %d %s", bad.status, bad.body)
	}
	code, _ := totp.GenerateCode(secret, env.clock.Now())
	ok := env.do("POST", "/api/users/login/mfa?include=user", fmt.Sprintf(`{"mfaToken":%q,"code":%q}`, mfa, code))
	m := ok.json(t)
	if ok.status != 200 || m["id"] == nil || m["userId"] == nil || m["ttl"] != float64(1209600) || m["user"].(map[string]any)["email"] != "ann@example.com" {
		t.Fatalf("the second step: %d %s", ok.status, ok.body)
	}
	if r := env.do("GET", fmt.Sprintf("/api/users/%v", m["userId"]), "", "Authorization: "+m["id"].(string)); r.status != 200 {
		t.Fatalf("the token of the second step: %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/api/users/login/mfa", fmt.Sprintf(`{"mfaToken":%q,"code":%q}`, mfa, code)); r.status != 401 || r.errorOf(t)["code"] != "INVALID_MFA_TOKEN" {
		t.Fatalf("the mfaToken twice: %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/api/users/login/mfa", `{"code":"123456"}`); r.status != 400 {
		t.Fatalf("no mfaToken: %d %s", r.status, r.body)
	}
	env.signup("bob@example.com", "bob-secret-pw-1")
	if r := env.do("POST", "/api/users/login", `{"email":"bob@example.com","password":"bob-secret-pw-1"}`); r.status != 200 {
		t.Fatalf("an account without a second factor: %d %s", r.status, r.body)
	}
}

// TestPagesTwoStepOff: turning it off and making new codes ask for the
// password (S9, M6); after off the password alone signs in.
func TestPagesTwoStepOff(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b, _, _ := enableTOTPInBrowser(t, env)
	acct := b.get("/account")
	acct.is(200, "page-account")
	if acct.testid("totp-on").Length() != 1 || !strings.Contains(acct.text("recovery-left"), "10") {
		t.Fatalf("the account page with two-step verification on:\n%s", acct.body)
	}
	home := b.get("/")
	b.post("/account/recovery-codes", url.Values{"_csrf": {home.csrf()}, "password": {"nope-nope-nope"}}).is(http.StatusUnauthorized, "page-response")
	codes := b.post("/account/recovery-codes", url.Values{"_csrf": {home.csrf()}, "password": {"ann-secret-pw-1"}})
	codes.is(200, "page-recovery-codes")
	b.post("/account/two-step/off", url.Values{"_csrf": {home.csrf()}}).is(http.StatusUnauthorized, "page-response")
	b.post("/account/two-step/off", url.Values{"_csrf": {home.csrf()}, "password": {"ann-secret-pw-1"}}).redirects("/account")
	if acct := b.get("/account"); acct.testid("totp-off-state").Length() != 1 || !strings.Contains(acct.body, "Two-step verification is off") {
		t.Fatalf("the account page after turning it off:\n%s", acct.body)
	}
	b.post("/account/two-step/off", url.Values{"password": {"ann-secret-pw-1"}}).is(http.StatusForbidden, "")
	if r := env.do("POST", "/api/users/login", `{"email":"ann@example.com","password":"ann-secret-pw-1"}`); r.status != 200 {
		t.Fatalf("login after turning it off: %d %s", r.status, r.body)
	}
}
