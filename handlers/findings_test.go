package handlers_test

// Tests of the security findings of issue 13 (SECURITY.md rows L6b, N1, L7,
// S5, and the sessions page), each named after its row.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/handlers"
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

// TestN1DeviceCookieSurvivesDrainedIP: one address drains its login bucket
// (an attacker behind an office NAT) while the account is also being
// guessed from elsewhere; a browser at that address that signed in to the
// account before still logs in to it; a browser without a device cookie,
// with one for another account, or with a forged one gets 429; the device
// browser's own failures count against its cookie (429 after the free
// ones, then the delay) without touching the address or the account.
func TestN1DeviceCookieSurvivesDrainedIP(t *testing.T) {
	t.Parallel()
	env := newSecEnv(t, secOptions{})
	env.signup("alice@example.com", "silver-harbor-77")
	env.signup("bob@example.com", "amber-meadow-12")
	alice := url.Values{"email": {"alice@example.com"}, "password": {"silver-harbor-77"}}
	login := func(b *browser, creds url.Values) *htmlPage {
		t.Helper()
		return b.submit(b.get("/login"), `form[action="/login"]`, creds)
	}

	// Alice's browser (192.0.2.7, as every test browser) signed in before,
	// and logged out: the device cookie stays.
	home := newBrowser(t, env.testEnv, "http://localhost:3000")
	r := login(home, alice)
	r.redirects("/")
	ck := r.setCookie("latchkey_device")
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != 180*24*3600 || ck.Path != "/" {
		t.Fatalf("device cookie %+v", ck)
	}
	home.submit(home.get("/"), `[data-testid="nav-logout-form"]`, nil).redirects("/")
	if home.cookie("latchkey_device") == "" {
		t.Fatal("logout dropped the device cookie")
	}

	// The attacker drains the address's bucket, and guesses Alice's
	// password from other addresses until her account waits too.
	for i := 0; ; i++ {
		r := env.from("192.0.2.7", "POST", "/api/users/login", loginBody(fmt.Sprintf("victim%d@example.com", i), "wrong-guess-123"))
		if r.status == 429 {
			break
		}
		if r.status != 401 || i > 30 {
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	for i := range 7 {
		env.from(fmt.Sprintf("198.51.100.%d", i+1), "POST", "/api/users/login", loginBody("alice@example.com", "wrong-guess-123"))
	}
	if r := env.from("203.0.113.9", "POST", "/api/users/login", loginBody("alice@example.com", "silver-harbor-77")); r.status != 429 {
		t.Fatalf("alice's account is not waiting: %d", r.status)
	}

	// Without a device cookie: 429, the right password included.
	stranger := newBrowser(t, env.testEnv, "http://localhost:3000")
	login(stranger, alice).is(http.StatusTooManyRequests, "page-response")
	// A forged entry, or one for another account, helps nothing.
	forged := newBrowser(t, env.testEnv, "http://localhost:3000")
	v := home.cookie("latchkey_device")
	forged.jar.SetCookies(forged.base, []*http.Cookie{{Name: "latchkey_device", Value: v[:len(v)-2] + "AA", Path: "/"}})
	login(forged, alice).is(http.StatusTooManyRequests, "page-response")
	bobs := newBrowser(t, env.testEnv, "http://localhost:3000")
	bobs.jar.SetCookies(bobs.base, []*http.Cookie{{Name: "latchkey_device", Value: mustDeviceCookie(t, env.testEnv, "bob@example.com"), Path: "/"}})
	login(bobs, alice).is(http.StatusTooManyRequests, "page-response")
	login(home, url.Values{"email": {"bob@example.com"}, "password": {"amber-meadow-12"}}).is(http.StatusTooManyRequests, "page-response")

	// With it: signed in.
	login(home, alice).redirects("/")
	if signedInAs(t, home) != "alice@example.com" {
		t.Fatal("the device browser is not signed in")
	}
	home.submit(home.get("/"), `[data-testid="nav-logout-form"]`, nil).redirects("/")

	// Its own failures count against the cookie: 5 free, the 6th starts
	// the delay, then 429 even for the right password; after the delay it
	// signs in. The address stays drained for others all along.
	wrong := url.Values{"email": {"alice@example.com"}, "password": {"not-her-password"}}
	for i := range 6 {
		if r := login(home, wrong); r.status != http.StatusUnauthorized {
			t.Fatalf("device failure %d: %d", i+1, r.status)
		}
	}
	login(home, alice).is(http.StatusTooManyRequests, "page-response")
	login(stranger, alice).is(http.StatusTooManyRequests, "page-response")
	env.clock.Advance(2 * time.Second)
	login(home, alice).redirects("/")
	if got := home.cookie("latchkey_device"); !strings.HasPrefix(got, strings.SplitN(v, ".", 2)[0]+".") || got == v {
		t.Errorf("the device cookie was not renewed at sign-in: %q then %q", v, got)
	}
}

// mustDeviceCookie is a device cookie for email's account, as a browser
// that signed in to it has.
func mustDeviceCookie(t *testing.T, env *testEnv, email string) string {
	t.Helper()
	u, err := env.users.FindUserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.users.DeviceCookie(context.Background(), u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestL7ThrottledAttemptAudited: a login answered 429 leaves an audit row
// (login.throttled) with the address, the User-Agent and which counter
// refused it — on the account when there is one — and never what was
// typed; the same for an unknown account held back by its address's bucket.
func TestL7ThrottledAttemptAudited(t *testing.T) {
	t.Parallel()
	env := newSecEnv(t, secOptions{limits: &models.LimitConfig{Login: true, FreeFailures: 1, Delay: 30 * time.Second,
		IPBurst: 4, IPPerMinute: 0.01}})
	id := env.signup("eve@example.com", "silver-harbor-77")
	for range 2 {
		if r := env.from("198.51.100.1", "POST", "/api/users/login", loginBody("eve@example.com", "guess-one-1")); r.status != 401 {
			t.Fatalf("failure: %d", r.status)
		}
	}
	isThrottled(t, env.from("198.51.100.2", "POST", "/api/users/login", loginBody("eve@example.com", "throttled-secret-1"),
		"User-Agent: l7-test"))
	b := newBrowser(t, env.testEnv, "http://localhost:3000")
	b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {"EVE@example.com"}, "password": {"throttled-secret-2"}}).
		is(http.StatusTooManyRequests, "page-response")
	// An unknown account from a drained address.
	for i := range 4 {
		env.from("203.0.113.5", "POST", "/api/users/login", loginBody(fmt.Sprintf("x%d@example.com", i), "guess-two-2"))
	}
	isThrottled(t, env.from("203.0.113.5", "POST", "/api/users/login", loginBody("someone@example.com", "throttled-secret-3")))

	type row struct {
		user           any
		ip, ua, detail string
	}
	var got []row
	rows, err := env.db.Query(context.Background(), `SELECT user_id, ip, user_agent, detail FROM audit_events WHERE kind = 'login.throttled' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r row
		var uid *int64
		if err := rows.Scan(&uid, &r.ip, &r.ua, &r.detail); err != nil {
			t.Fatal(err)
		}
		if uid != nil {
			r.user = *uid
		}
		got = append(got, r)
	}
	rows.Close()
	want := []row{{id, "198.51.100.2", "l7-test", "key=account"}, {id, "192.0.2.7", "pages-test", "key=account"},
		{nil, "203.0.113.5", "", "key=ip"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("login.throttled rows:\n got %v\nwant %v", got, want)
	}
	var leaked int
	if err := env.db.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE detail LIKE '%secret%'
		OR user_agent LIKE '%secret%' OR kind LIKE '%secret%'`).Scan(&leaked); err != nil || leaked != 0 {
		t.Errorf("a typed password in the audit: %d rows, %v", leaked, err)
	}
}

// TestSessionsPageNamesDevices: the sessions page words each session's
// User-Agent ("Chrome on Linux", "Safari on iOS") and keeps the raw string
// at hand (the name's title, and a details element); one the parser does
// not know reads "unknown" with its raw string beside.
func TestSessionsPageNamesDevices(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("eve@example.com", "correct horse")
	const (
		chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
		iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
		mac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0"
	)
	for _, ua := range []string{iphone, mac, "okhttp/4.12.0"} {
		if r := env.do("POST", "/api/users/login", loginBody("eve@example.com", "correct horse"), "User-Agent: "+ua); r.status != 200 {
			t.Fatalf("login: %d", r.status)
		}
	}
	b := newBrowser(t, env, "http://localhost:3000")
	b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}},
		"User-Agent: "+chrome).redirects("/")
	p := b.get("/sessions")
	p.is(200, "page-sessions")
	got := map[string][2]string{}
	p.testid("session").Each(func(_ int, s *goquery.Selection) {
		d := s.Find(`[data-testid="session-device"]`)
		raw := strings.TrimSpace(s.Find(`[data-testid="session-ua"]`).Text())
		if title := d.AttrOr("title", ""); title != raw {
			t.Errorf("%q: title %q, details %q", d.Text(), title, raw)
		}
		got[raw] = [2]string{strings.TrimSpace(d.Text()), s.Find(`details[data-testid="session-ua-details"] summary`).Text()}
	})
	want := map[string]string{chrome: "Chrome on Linux", iphone: "Safari on iOS", mac: "Firefox on macOS", "okhttp/4.12.0": "unknown"}
	for ua, name := range want {
		if got[ua][0] != name || got[ua][1] == "" {
			t.Errorf("%s: shown as %q (details %q), want %q", ua, got[ua][0], got[ua][1], name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("sessions shown: %v", got)
	}
}

// TestS5IdleTimeout: with LATCHKEY_SESSION_IDLE_TIMEOUT (here 30 minutes)
// a session unused for longer is refused — 401 on the API, signed out on
// the pages — and deleted; one in use lives on, also when its last use
// fell between two writes of last_used (TouchEvery, 1 minute); with the
// timeout off (the default) a token lives its whole ttl however idle.
func TestS5IdleTimeout(t *testing.T) {
	t.Parallel()
	idle := func(m *models.Config, _ *handlers.Options) { m.IdleTimeout = 30 * time.Minute }
	get := func(env *testEnv, id int64, tok string) int {
		t.Helper()
		return env.do("GET", fmt.Sprintf("/api/users/%d", id), "", "Authorization: "+tok).status
	}
	gone := func(env *testEnv, tok string) bool {
		d := models.Digest(tok)
		var n int
		if err := env.db.QueryRow(context.Background(), `SELECT count(*) FROM access_tokens WHERE digest = ?`, d[:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	}

	t.Run("API", func(t *testing.T) {
		env := newEnv(t, idle)
		id := env.signup("eve@example.com", "correct horse")
		tok := env.login("eve@example.com", "correct horse")
		env.clock.Advance(29 * time.Minute)
		if s := get(env, id, tok); s != 200 {
			t.Fatalf("after 29 idle minutes: %d", s)
		}
		// Used again 50 s later: within TouchEvery, so last_used stays at
		// the 29-minute mark; 30 minutes after this use the session must
		// still work although the stored last use is 30 m 50 s old.
		env.clock.Advance(50 * time.Second)
		if s := get(env, id, tok); s != 200 {
			t.Fatalf("in use: %d", s)
		}
		env.clock.Advance(30*time.Minute - time.Second)
		if s := get(env, id, tok); s != 200 {
			t.Fatalf("used 30 min - 1 s ago: %d", s)
		}
		env.clock.Advance(31*time.Minute + time.Second)
		if s := get(env, id, tok); s != 401 {
			t.Fatalf("idle 31 min: %d", s)
		}
		if !gone(env, tok) {
			t.Error("the idle token is still stored")
		}
		var n int
		if err := env.db.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE kind = 'session.idle' AND user_id = ?`, id).Scan(&n); err != nil || n != 1 {
			t.Errorf("session.idle audit rows: %d, %v", n, err)
		}
	})

	t.Run("pages", func(t *testing.T) {
		env := newEnv(t, idle)
		env.signup("eve@example.com", "correct horse")
		b := newBrowser(t, env, "http://localhost:3000")
		b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}}).redirects("/")
		tok := b.cookie("latchkey_session")
		env.clock.Advance(25 * time.Minute)
		if signedInAs(t, b) != "eve@example.com" {
			t.Fatal("signed out after 25 minutes")
		}
		env.clock.Advance(32 * time.Minute)
		h := b.get("/")
		h.is(200, "page-login")
		if h.testid("login-form").Length() != 1 {
			t.Fatal("still signed in after 32 idle minutes")
		}
		if ck := h.setCookie("latchkey_session"); ck == nil || ck.MaxAge >= 0 {
			t.Error("the idle session's cookie was not dropped")
		}
		if !gone(env, tok) {
			t.Error("the idle token is still stored")
		}
	})

	t.Run("off by default", func(t *testing.T) {
		env := newEnv(t)
		id := env.signup("eve@example.com", "correct horse")
		tok := env.login("eve@example.com", "correct horse")
		env.clock.Advance(13 * 24 * time.Hour)
		if s := get(env, id, tok); s != 200 {
			t.Fatalf("a 13-day idle token without the timeout: %d", s)
		}
	})
}
