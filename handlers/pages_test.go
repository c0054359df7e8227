package handlers_test

// Tests of the HTML pages: real Echo, real SQLite, a cookie jar that behaves
// like a browser's, goquery on the rendered HTML. CSRF tokens are read from
// the forms, as a browser posts them.

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// browser is a cookie-keeping client of env's Echo, without redirects
// followed unless asked.
type browser struct {
	t    *testing.T
	env  *testEnv
	jar  *cookiejar.Jar
	base *url.URL
}

func newBrowser(t *testing.T, env *testEnv, base string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	return &browser{t: t, env: env, jar: jar, base: u}
}

// htmlPage is one answer, parsed.
type htmlPage struct {
	t      *testing.T
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (b *browser) do(method, path string, form url.Values, headers ...string) *htmlPage {
	b.t.Helper()
	u := b.base.ResolveReference(&url.URL{Path: path})
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u = b.base.ResolveReference(&url.URL{Path: path[:i], RawQuery: path[i+1:]})
	}
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, u.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, u.String(), nil)
	}
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("User-Agent", "pages-test")
	for _, c := range b.jar.Cookies(u) {
		req.AddCookie(c)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	b.env.e.ServeHTTP(rec, req)
	b.env.checkSpec(b.t, req, rec)
	res := rec.Result()
	b.jar.SetCookies(u, res.Cookies())
	p := &htmlPage{t: b.t, status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(p.body))
		if err != nil {
			b.t.Fatalf("%s %s: parsing HTML: %v", method, path, err)
		}
		p.doc = doc
	}
	return p
}

func (b *browser) get(path string, headers ...string) *htmlPage {
	b.t.Helper()
	return b.do(http.MethodGet, path, nil, headers...)
}

func (b *browser) post(path string, form url.Values, headers ...string) *htmlPage {
	b.t.Helper()
	return b.do(http.MethodPost, path, form, headers...)
}

// submit fills the form found by selector on p with values, adds its hidden
// fields (the CSRF token among them) and posts it to its action.
func (b *browser) submit(p *htmlPage, selector string, values url.Values, headers ...string) *htmlPage {
	b.t.Helper()
	f := p.find(selector)
	if f.Length() != 1 {
		b.t.Fatalf("form %s: found %d\n%s", selector, f.Length(), p.body)
	}
	form := url.Values{}
	f.Find(`input[type=hidden]`).Each(func(_ int, s *goquery.Selection) {
		form.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	for k, v := range values {
		form[k] = v
	}
	return b.post(f.AttrOr("action", ""), form, headers...)
}

// cookie is the browser's current value of a cookie ("" when none).
func (b *browser) cookie(name string) string {
	for _, c := range b.jar.Cookies(b.base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (p *htmlPage) find(sel string) *goquery.Selection {
	if p.doc == nil {
		p.t.Fatalf("not an HTML page (status %d, %s): %s", p.status, p.header.Get("Content-Type"), p.body)
	}
	return p.doc.Find(sel)
}

func (p *htmlPage) testid(id string) *goquery.Selection { return p.find(`[data-testid="` + id + `"]`) }

func (p *htmlPage) text(id string) string { return strings.TrimSpace(p.testid(id).Text()) }

// is checks the status and which page this is.
func (p *htmlPage) is(status int, pageID string) {
	p.t.Helper()
	if p.status != status {
		p.t.Fatalf("status %d, want %d\n%s", p.status, status, p.body)
	}
	if pageID != "" && p.testid(pageID).Length() != 1 {
		p.t.Fatalf("not the %s page:\n%s", pageID, p.body)
	}
}

// redirects checks a Post/Redirect/Get answer.
func (p *htmlPage) redirects(to string) {
	p.t.Helper()
	if p.status != http.StatusSeeOther || p.header.Get("Location") != to {
		p.t.Fatalf("got %d Location %q, want 303 to %s\n%s", p.status, p.header.Get("Location"), to, p.body)
	}
}

// setCookie is a Set-Cookie of this answer by name (nil when none).
func (p *htmlPage) setCookie(name string) *http.Cookie {
	var last *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == name {
			last = c
		}
	}
	return last
}

func (p *htmlPage) csrf() string {
	p.t.Helper()
	v, ok := p.find(`input[name=_csrf]`).First().Attr("value")
	if !ok || v == "" {
		p.t.Fatalf("no CSRF field:\n%s", p.body)
	}
	return v
}

// fieldError checks that a field shows an error, beside it and tied to it.
func (p *htmlPage) fieldError(name, want string) {
	p.t.Helper()
	got := p.text("error-" + name)
	if want != "" && got != want || got == "" {
		p.t.Errorf("error beside %s = %q, want %q", name, got, want)
	}
	in := p.testid("input-" + name)
	errID, _ := p.testid("error-" + name).Attr("id")
	if !strings.Contains(in.AttrOr("aria-describedby", ""), errID) || in.AttrOr("aria-invalid", "") != "true" {
		p.t.Errorf("input %s: aria-describedby=%q aria-invalid=%q, want the error %q", name,
			in.AttrOr("aria-describedby", ""), in.AttrOr("aria-invalid", ""), errID)
	}
	if in.Parent().Find(`[data-testid="error-`+name+`"]`).Length() != 1 {
		p.t.Errorf("error of %s is not in the field's box", name)
	}
}

// checkPageHeaders checks what every page sends.
func checkPageHeaders(t *testing.T, p *htmlPage) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	// Script: the site's own files only (the passkeys script), never
	// inline or eval.
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-") ||
		!strings.Contains(csp, "script-src 'self';") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for k, want := range map[string]string{
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Content-Type":           "text/html; charset=UTF-8",
		"X-Robots-Tag":           "noindex",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if p.doc != nil {
		p.find("script").Each(func(_ int, sc *goquery.Selection) {
			if src := sc.AttrOr("src", ""); !regexp.MustCompile(`^/static/passkeys\.[0-9a-f]{10}\.js$`).MatchString(src) ||
				strings.TrimSpace(sc.Text()) != "" {
				t.Errorf("a script element other than the passkeys file: src=%q, %q", src, sc.Text())
			}
		})
	}
	if strings.Contains(strings.ToLower(p.body), "onpaste") || strings.Contains(p.body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(p.body) {
		t.Error("a page has an inline event handler")
	}
}

// recorder captures the events the pages cause (as boot's mail subscribers would).
type recorder struct {
	mu     sync.Mutex
	resets []models.ResetPasswordRequest
	verify []models.VerifyEmailRequest
}

func record(env *testEnv) *recorder {
	r := &recorder{}
	env.users.OnResetPasswordRequest(func(_ context.Context, _ *models.Tx, ev models.ResetPasswordRequest) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.resets = append(r.resets, ev)
		return nil
	})
	env.users.OnVerifyEmailRequest(func(_ context.Context, _ *models.Tx, ev models.VerifyEmailRequest) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.verify = append(r.verify, ev)
		return nil
	})
	return r
}

func (r *recorder) lastResetToken(t *testing.T) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.resets) == 0 {
		t.Fatal("no reset was requested")
	}
	return r.resets[len(r.resets)-1].AccessToken.ID
}

// signupInBrowser signs a user up through the page and returns the browser.
func signupInBrowser(t *testing.T, env *testEnv, email, password string) *browser {
	t.Helper()
	b := newBrowser(t, env, "http://localhost:3000")
	b.submit(b.get("/signup"), `[data-testid="signup-form"]`, url.Values{"email": {email}, "password": {password}}).
		redirects("/check-email")
	return b
}

func TestPagesHomeSignedOut(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := newBrowser(t, env, "http://localhost:3000")
	p := b.get("/")
	p.is(200, "page-login")
	checkPageHeaders(t, p)
	if got := p.header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("Referrer-Policy = %q", got)
	}
	form := p.testid("login-form")
	if form.AttrOr("method", "") != "post" || form.AttrOr("action", "") != "/login" {
		t.Errorf("login form method/action = %s %s", form.AttrOr("method", ""), form.AttrOr("action", ""))
	}
	for _, f := range []struct{ name, typ, autocomplete string }{
		{"email", "text", "username webauthn"}, // passkeys in the autofill (localhost is an RP ID)
		{"password", "password", "current-password"},
	} {
		in := form.Find(`input[name="` + f.name + `"]`)
		if in.AttrOr("type", "") != f.typ || in.AttrOr("autocomplete", "") != f.autocomplete || !in.Is("[required]") {
			t.Errorf("input %s: type=%q autocomplete=%q required=%v", f.name, in.AttrOr("type", ""),
				in.AttrOr("autocomplete", ""), in.Is("[required]"))
		}
		id := in.AttrOr("id", "")
		if p.find(`label[for="`+id+`"]`).Length() != 1 {
			t.Errorf("input %s has no label", f.name)
		}
	}
	if p.testid("link-signup").AttrOr("href", "") != "/signup" || p.testid("link-forgot").AttrOr("href", "") != "/request-password-reset" {
		t.Error("home lacks the sign-up or forgot-password link")
	}
	if p.testid("nav-login").Length() != 1 || p.testid("nav-signed-in").Length() != 0 {
		t.Error("nav should offer log in when signed out")
	}
	// The CSRF cookie: the token of the form, HttpOnly, SameSite=Lax, Path=/.
	ck := p.setCookie("latchkey_csrf")
	if ck == nil || ck.Value != p.csrf() || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Errorf("CSRF cookie = %+v, form token %q", ck, p.csrf())
	}
	// The stylesheet is versioned, served with a long cache.
	css := p.find(`link[rel=stylesheet]`).AttrOr("href", "")
	if !regexp.MustCompile(`^/static/style\.[0-9a-f]+\.css$`).MatchString(css) {
		t.Fatalf("stylesheet href %q", css)
	}
	s := b.get(css)
	if s.status != 200 || !strings.Contains(s.header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(s.header.Get("Content-Type"), "text/css") {
		t.Errorf("GET %s: %d %v", css, s.status, s.header)
	}
	if r := b.get("/static/nope.css"); r.status != 404 {
		t.Errorf("unknown static file: %d", r.status)
	}
}

func TestPagesSignup(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	rec := record(env)
	env.signup("taken@example.com", "correct horse")

	b := newBrowser(t, env, "http://localhost:3000")
	p := b.get("/signup")
	p.is(200, "page-signup")
	checkPageHeaders(t, p)
	for name, ac := range map[string]string{"email": "email", "username": "username", "password": "new-password"} {
		if got := p.testid("input-"+name).AttrOr("autocomplete", ""); got != ac {
			t.Errorf("signup %s autocomplete = %q, want %q", name, got, ac)
		}
	}
	if hint := p.find("#password-hint").Text(); !strings.HasPrefix(hint, "At least 8 characters.") {
		t.Errorf("password hint %q does not state the configured minimum", hint)
	}
	if !p.testid("input-username").Is(":not([required])") {
		t.Error("username should be optional")
	}

	t.Run("blank and bad fields", func(t *testing.T) {
		r := b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {"not-an-email"}, "username": {"eve"}, "password": {"short"}})
		r.is(422, "page-signup")
		r.fieldError("email", "Enter a valid email address, like name@example.com.")
		r.fieldError("password", "The password entered was too short. Min length is 8 (entered 5)")
		if r.testid("input-email").AttrOr("value", "") != "not-an-email" || r.testid("input-username").AttrOr("value", "") != "eve" {
			t.Error("typed values were not kept")
		}
		if _, has := r.testid("input-password").Attr("value"); has || strings.Contains(r.body, "short\"") {
			t.Error("the password was sent back")
		}
		r = b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {""}, "password": {""}})
		r.is(422, "page-signup")
		r.fieldError("email", "Enter your email address.")
		r.fieldError("password", "Enter a password.")
	})

	t.Run("password messages are the API's", func(t *testing.T) {
		long := strings.Repeat("é", 40) // 80 bytes: over bcrypt's 72
		api := env.do("POST", "/api/users", `{"email":"long@example.com","password":"`+long+`"}`)
		want, _ := api.errorOf(t)["message"].(string)
		if want == "" {
			t.Fatalf("API answer %s", api.body)
		}
		r := b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {"long@example.com"}, "password": {long}})
		r.is(422, "page-signup")
		r.fieldError("password", want)
	})

	t.Run("duplicate email says what the API says", func(t *testing.T) {
		r := b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {"TAKEN@example.com"}, "password": {"another horse"}})
		r.is(422, "page-signup")
		r.fieldError("email", "Email already exists")
		env.signup("named@example.com", "correct horse", "username", "bob")
		r = b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {"new@example.com"}, "username": {"Bob"}, "password": {"another horse"}})
		r.is(422, "page-signup")
		r.fieldError("username", "User already exists")
	})

	t.Run("success signs in and asks for a confirmation", func(t *testing.T) {
		before := b.cookie("latchkey_csrf")
		r := b.submit(p, `[data-testid="signup-form"]`, url.Values{"email": {"Eve@Example.com"}, "username": {"eve"}, "password": {"correct horse battery"}})
		r.redirects("/check-email")
		ck := r.setCookie("latchkey_session")
		if ck == nil || len(ck.Value) != 64 || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
			ck.MaxAge != 1209600 || ck.Domain != "" || ck.Secure {
			t.Errorf("session cookie = %+v", ck)
		}
		if b.cookie("latchkey_csrf") != "" || before == "" {
			t.Error("the CSRF cookie was not rotated at sign-in")
		}
		c := b.get("/check-email")
		c.is(200, "page-check-email")
		if !strings.Contains(c.text("page-check-email"), "works for 24 hours") {
			t.Errorf("check-email does not state the link lifetime: %q", c.text("page-check-email"))
		}
		if got := c.text("check-email-address"); got != "Eve@Example.com" {
			t.Errorf("check-email shows %q", got)
		}
		if len(rec.verify) != 1 || rec.verify[0].User.Email != "Eve@Example.com" || rec.verify[0].Redirect != "/verified" {
			t.Errorf("verification requests: %+v", rec.verify)
		}
		h := b.get("/")
		h.is(200, "page-home")
		checkPageHeaders(t, h)
		if h.text("account-email") != "Eve@Example.com" || h.text("nav-email") != "Eve@Example.com" {
			t.Errorf("home shows %q / nav %q", h.text("account-email"), h.text("nav-email"))
		}
		// Signed in, /signup and /login lead home.
		b.get("/signup").redirects("/")
		b.get("/login").redirects("/")
	})

	t.Run("check-email needs a session", func(t *testing.T) {
		newBrowser(t, env, "http://localhost:3000").get("/check-email").redirects("/login")
	})
}

func TestPagesLogin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("eve@example.com", "correct horse", "username", "eve")
	b := newBrowser(t, env, "http://localhost:3000")
	home := b.get("/")

	t.Run("wrong password and unknown user look the same", func(t *testing.T) {
		var bodies []string
		for _, creds := range [][2]string{{"eve@example.com", "wrong horse"}, {"nobody@example.com", "wrong horse"}, {"eve", "nope nope"}} {
			r := b.submit(home, `[data-testid="login-form"]`, url.Values{"email": {creds[0]}, "password": {creds[1]}})
			r.is(401, "page-response")
			checkPageHeaders(t, r)
			if r.text("response-title") != "Login failed" || r.text("response-link") != "Try again" ||
				r.testid("response-link").AttrOr("href", "") != "/" {
				t.Errorf("login failure page: %q %q", r.text("response-title"), r.text("response-link"))
			}
			if r.setCookie("latchkey_session") != nil {
				t.Error("a failed login set a session cookie")
			}
			bodies = append(bodies, r.body)
		}
		if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
			t.Error("failures differ between a wrong password and an unknown user")
		}
	})

	t.Run("blank fields", func(t *testing.T) {
		r := b.submit(home, `[data-testid="login-form"]`, url.Values{"email": {"eve@example.com"}, "password": {""}})
		r.is(422, "page-login")
		r.fieldError("password", "Enter your password.")
		if r.testid("input-email").AttrOr("value", "") != "eve@example.com" {
			t.Error("the email was not kept")
		}
	})

	t.Run("success is PRG with a new session every time", func(t *testing.T) {
		// A planted session cookie (fixation attempt) is replaced.
		planted := env.login("eve@example.com", "correct horse")
		b.jar.SetCookies(b.base, []*http.Cookie{{Name: "latchkey_session", Value: planted, Path: "/"}})
		home := b.get("/")
		r := b.post("/login", url.Values{"_csrf": {home.csrf()}, "email": {"eve"}, "password": {"correct horse"}})
		r.redirects("/")
		first := b.cookie("latchkey_session")
		if first == "" || first == planted {
			t.Fatalf("session cookie %q after login (planted %q)", first, planted)
		}
		if s, _ := env.users.Authenticate(context.Background(), planted, models.ScopeSession); s != nil {
			t.Error("the session the browser had before login still works")
		}
		if r.setCookie("latchkey_csrf") == nil || r.setCookie("latchkey_csrf").MaxAge >= 0 {
			t.Error("login did not rotate the CSRF cookie")
		}
		h := b.get("/")
		h.is(200, "page-home")
		if h.text("account-email") != "eve@example.com" || h.text("account-username") != "eve" {
			t.Errorf("home: %q %q", h.text("account-email"), h.text("account-username"))
		}
		if h.testid("login-form").Length() != 0 {
			t.Error("the signed-in home shows the login form")
		}
	})
}

func TestPagesLoginAgainReplacesSession(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("eve@example.com", "correct horse")
	b := newBrowser(t, env, "http://localhost:3000")
	b.submit(b.get("/login"), `[data-testid="login-form"]`, url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}}).redirects("/")
	first := b.cookie("latchkey_session")
	// /login redirects home when signed in, so post directly with the home page's token.
	tok := b.get("/").csrf()
	b.post("/login", url.Values{"_csrf": {tok}, "email": {"eve@example.com"}, "password": {"correct horse"}}).redirects("/")
	second := b.cookie("latchkey_session")
	if second == first || second == "" {
		t.Fatal("a second login kept the session token")
	}
	if s, _ := env.users.Authenticate(context.Background(), first, models.ScopeSession); s != nil {
		t.Error("the earlier session of this browser still works")
	}
}

func TestPagesCSRF(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("eve@example.com", "correct horse")
	creds := url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}}

	t.Run("no token", func(t *testing.T) {
		b := newBrowser(t, env, "http://localhost:3000")
		b.get("/")
		r := b.post("/login", creds)
		r.is(403, "page-error")
		checkPageHeaders(t, r)
		if r.text("error-status") != "Error 403" || !strings.Contains(r.text("error-message"), "another site") {
			t.Errorf("403 page: %q %q", r.text("error-status"), r.text("error-message"))
		}
		if b.cookie("latchkey_session") != "" {
			t.Error("logged in without a CSRF token")
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		b := newBrowser(t, env, "http://localhost:3000")
		b.get("/")
		f := url.Values{"_csrf": {"wrongwrongwrongwrongwrongwrong12"}}
		for k, v := range creds {
			f[k] = v
		}
		b.post("/login", f).is(403, "page-error")
	})
	t.Run("token of another browser", func(t *testing.T) {
		other := newBrowser(t, env, "http://localhost:3000").get("/").csrf()
		b := newBrowser(t, env, "http://localhost:3000")
		b.get("/")
		f := url.Values{"_csrf": {other}}
		for k, v := range creds {
			f[k] = v
		}
		b.post("/login", f).is(403, "page-error")
	})
	t.Run("cross-site even with a valid token", func(t *testing.T) {
		b := newBrowser(t, env, "http://localhost:3000")
		r := b.submit(b.get("/"), `[data-testid="login-form"]`, creds, "Sec-Fetch-Site: cross-site", "Origin: https://evil.test")
		r.is(403, "page-error")
		if b.cookie("latchkey_session") != "" {
			t.Error("a cross-site login went through")
		}
		for _, path := range []string{"/signup", "/logout", "/request-password-reset", "/reset-password"} {
			b.post(path, url.Values{"_csrf": {"x"}}, "Sec-Fetch-Site: cross-site").is(403, "page-error")
		}
	})
	t.Run("same-origin browser", func(t *testing.T) {
		// A browser that sends Sec-Fetch-Site: same-origin is trusted on it
		// (Echo v4.16); the token is the fallback for those that do not.
		b := newBrowser(t, env, "http://localhost:3000")
		b.submit(b.get("/", "Sec-Fetch-Site: none"), `[data-testid="login-form"]`, creds, "Sec-Fetch-Site: same-origin").redirects("/")
	})
	t.Run("JSON API is not subject to page CSRF", func(t *testing.T) {
		r := env.do("POST", "/api/users/login", `{"email":"eve@example.com","password":"correct horse"}`)
		if r.status != 200 {
			t.Errorf("API login %d %s", r.status, r.body)
		}
	})
}

func TestPagesLogout(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := signupInBrowser(t, env, "eve@example.com", "correct horse")
	token := b.cookie("latchkey_session")
	sess, _ := env.users.Authenticate(context.Background(), token, models.ScopeSession)
	if sess == nil {
		t.Fatal("no session after sign-up")
	}

	t.Run("cookies never authenticate the API", func(t *testing.T) {
		r := env.do("GET", "/api/users/"+strconv.FormatInt(sess.User.ID, 10), "", "Cookie: latchkey_session="+token)
		if r.status != 401 {
			t.Errorf("API with the session cookie: %d", r.status)
		}
	})

	t.Run("GET asks and changes nothing", func(t *testing.T) {
		p := b.get("/logout")
		p.is(200, "page-logout")
		checkPageHeaders(t, p)
		if p.find(`form[action="/logout"][method=post] button`).Length() == 0 {
			t.Error("no log-out button")
		}
		if p.setCookie("latchkey_session") != nil {
			t.Error("GET /logout touched the session cookie")
		}
		b.get("/").is(200, "page-home")
		if s, _ := env.users.Authenticate(context.Background(), token, models.ScopeSession); s == nil {
			t.Error("GET /logout ended the session")
		}
	})

	t.Run("POST without token changes nothing", func(t *testing.T) {
		b.post("/logout", url.Values{}).is(403, "page-error")
		b.get("/").is(200, "page-home")
	})

	t.Run("the nav button logs out", func(t *testing.T) {
		home := b.get("/")
		if home.testid("nav-logout-form").Length() != 1 {
			t.Fatal("no log-out button in the nav")
		}
		r := b.submit(home, `[data-testid="nav-logout-form"]`, nil)
		r.redirects("/")
		if got := r.header.Get("Clear-Site-Data"); got != `"cache"` {
			t.Errorf("Clear-Site-Data = %q", got)
		}
		if ck := r.setCookie("latchkey_session"); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("session cookie not expired: %+v", ck)
		}
		if s, _ := env.users.Authenticate(context.Background(), token, models.ScopeSession); s != nil {
			t.Error("the token still works after logout")
		}
		h := b.get("/")
		h.is(200, "page-login")
		if h.text("flash") != "You have logged out." {
			t.Errorf("flash = %q", h.text("flash"))
		}
		if b.get("/").testid("flash").Length() != 0 {
			t.Error("the flash shows twice")
		}
		// The old cookie, replayed, is a signed-out visitor (and is dropped).
		old := newBrowser(t, env, "http://localhost:3000")
		old.jar.SetCookies(old.base, []*http.Cookie{{Name: "latchkey_session", Value: token, Path: "/"}})
		o := old.get("/")
		o.is(200, "page-login")
		if ck := o.setCookie("latchkey_session"); ck == nil || ck.MaxAge >= 0 {
			t.Error("a dead session cookie was not dropped")
		}
		// GET /logout when signed out goes home.
		b.get("/logout").redirects("/")
	})
}

func TestPagesPasswordReset(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	rec := record(env)
	env.signup("eve@example.com", "correct horse")
	b := newBrowser(t, env, "http://localhost:3000")

	p := b.get("/request-password-reset")
	p.is(200, "page-forgot")
	checkPageHeaders(t, p)
	if p.testid("input-email").AttrOr("autocomplete", "") != "email" {
		t.Error("forgot form: email autocomplete")
	}

	t.Run("blank", func(t *testing.T) {
		r := b.submit(p, `[data-testid="forgot-form"]`, url.Values{"email": {" "}})
		r.is(422, "page-forgot")
		r.fieldError("email", "Enter your email address.")
	})

	t.Run("the same answer for every address", func(t *testing.T) {
		known := b.submit(p, `[data-testid="forgot-form"]`, url.Values{"email": {"eve@example.com"}})
		known.is(200, "page-response")
		unknown := b.submit(p, `[data-testid="forgot-form"]`, url.Values{"email": {"nobody@example.com"}})
		unknown.is(200, "page-response")
		if known.body != unknown.body {
			t.Error("the answer tells whether the address has an account")
		}
		if known.text("response-title") != "Password reset requested" ||
			known.text("response-content") != "Check your email for further instructions." ||
			known.text("response-link") != "Log in" {
			t.Errorf("response: %q / %q / %q", known.text("response-title"), known.text("response-content"), known.text("response-link"))
		}
		if len(rec.resets) != 1 {
			t.Errorf("%d reset requests recorded, want 1", len(rec.resets))
		}
	})

	token := rec.lastResetToken(t)

	t.Run("opening the link does not use it up and drops it from the URL", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			r := b.get("/reset-password?access_token=" + token)
			r.redirects("/reset-password")
			if r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("link answer headers: %v", r.header)
			}
			ck := r.setCookie("latchkey_reset")
			if ck == nil || ck.Value != token || ck.Path != "/reset-password" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("reset cookie = %+v", ck)
			}
		}
		f := b.do(http.MethodGet, "/reset-password", nil)
		f.is(200, "page-reset")
		checkPageHeaders(t, f)
		if f.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("Referrer-Policy = %q", f.header.Get("Referrer-Policy"))
		}
		if f.testid("reset-token").AttrOr("value", "") != token || f.text("reset-email") != "eve@example.com" {
			t.Error("the form lacks the token or the address")
		}
		for _, n := range []string{"password", "confirmation"} {
			in := f.testid("input-" + n)
			if in.AttrOr("type", "") != "password" || in.AttrOr("autocomplete", "") != "new-password" || !in.Is("[required]") {
				t.Errorf("reset %s: %s %s", n, in.AttrOr("type", ""), in.AttrOr("autocomplete", ""))
			}
		}
	})

	form := b.get("/reset-password")
	t.Run("errors beside the fields", func(t *testing.T) {
		r := b.submit(form, `[data-testid="reset-form"]`, url.Values{"password": {"new horse battery"}, "confirmation": {"new horse batterx"}})
		r.is(422, "page-reset")
		r.fieldError("confirmation", "")
		r = b.submit(form, `[data-testid="reset-form"]`, url.Values{"password": {"short"}, "confirmation": {"short"}})
		r.is(422, "page-reset")
		r.fieldError("password", "The password entered was too short. Min length is 8 (entered 5)")
		if r.testid("reset-token").AttrOr("value", "") != token {
			t.Error("the token was lost on error")
		}
	})

	t.Run("success, no automatic login, token used up", func(t *testing.T) {
		r := b.submit(form, `[data-testid="reset-form"]`, url.Values{"password": {"new horse battery"}, "confirmation": {"new horse battery"}})
		r.is(200, "page-response")
		if r.text("response-title") != "Password reset success" || r.text("response-link") != "Log in" {
			t.Errorf("reset success page: %q %q", r.text("response-title"), r.text("response-link"))
		}
		if r.setCookie("latchkey_session") != nil || b.cookie("latchkey_session") != "" {
			t.Error("the reset signed the browser in")
		}
		if b.cookie("latchkey_reset") != "" {
			t.Error("the reset cookie outlived the reset")
		}
		// The old password fails, the new one works.
		if r := env.do("POST", "/api/users/login", `{"email":"eve@example.com","password":"correct horse"}`); r.status != 401 {
			t.Errorf("old password: %d", r.status)
		}
		env.login("eve@example.com", "new horse battery")
		// The link again: explained, with a way to ask for a new one.
		again := b.get("/reset-password?access_token=" + token)
		again.is(400, "page-response")
		if again.testid("response-link").AttrOr("href", "") != "/request-password-reset" {
			t.Error("the used-link page does not offer a new request")
		}
		replay := b.post("/reset-password", url.Values{"_csrf": {form.csrf()}, "access_token": {token},
			"password": {"third horse battery"}, "confirmation": {"third horse battery"}})
		replay.is(400, "page-response")
	})

	t.Run("bad links", func(t *testing.T) {
		fresh := newBrowser(t, env, "http://localhost:3000")
		for _, path := range []string{"/reset-password?access_token=nope", "/reset-password?access_token=", "/reset-password"} {
			r := fresh.get(path)
			r.is(400, "page-response")
			checkPageHeaders(t, r)
			if r.header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: Referrer-Policy %q", path, r.header.Get("Referrer-Policy"))
			}
		}
		// A session token is not a reset token.
		sess := env.login("eve@example.com", "new horse battery")
		fresh.get("/reset-password?access_token="+sess).is(400, "page-response")
	})
}

func TestPagesResetEndsOwnSession(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	rec := record(env)
	b := signupInBrowser(t, env, "eve@example.com", "correct horse")
	b.submit(b.get("/request-password-reset"), `[data-testid="forgot-form"]`, url.Values{"email": {"eve@example.com"}}).is(200, "page-response")
	b.get("/reset-password?access_token=" + rec.lastResetToken(t)).redirects("/reset-password")
	r := b.submit(b.get("/reset-password"), `[data-testid="reset-form"]`, url.Values{"password": {"new horse battery"}, "confirmation": {"new horse battery"}})
	r.is(200, "page-response")
	if r.testid("nav-signed-in").Length() != 0 || b.cookie("latchkey_session") != "" {
		t.Error("still shown as signed in after the reset ended every session")
	}
}

func TestPagesVerifiedAndErrors(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := newBrowser(t, env, "http://localhost:3000")
	v := b.get("/verified")
	v.is(200, "page-verified")
	checkPageHeaders(t, v)

	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nope", 404, ""},
		{"GET", "/login/../../etc/passwd", 404, ""},
		// A known page with a method it does not take is 405 with Allow
		// (the API keeps LoopBack's 404: TestAPIRoutingAndHeaders).
		{"PUT", "/login", 405, "OPTIONS, GET, HEAD, POST"},
		{"DELETE", "/", 405, "OPTIONS, GET, HEAD"},
	} {
		r := b.do(tc.method, tc.path, nil)
		r.is(tc.status, "page-error")
		checkPageHeaders(t, r)
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if strings.Contains(r.body, "Cannot ") || strings.Contains(r.body, "Method Not Allowed") {
			t.Errorf("%s %s: the error page shows the raw error: %s", tc.method, tc.path, r.text("error-message"))
		}
	}
	// The API keeps its JSON errors.
	if r := env.offSpec().do("GET", "/api/nope", ""); !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("/api 404 is %s", r.header.Get("Content-Type"))
	}
	// Too large a form is 413 in the site's look.
	big := b.post("/login", url.Values{"email": {strings.Repeat("a", 2<<20)}})
	big.is(413, "page-error")
}

// TestPagesLoginThrottled: a login the throttle holds back, even with the
// right password, is the 429 page with Retry-After and a way to reset.
func TestPagesLoginThrottled(t *testing.T) {
	t.Parallel()
	// One free failure, then 30 s: after two, the account waits 30 s.
	env := newSecEnv(t, secOptions{limits: &models.LimitConfig{Login: true, FreeFailures: 1, Delay: 30 * time.Second}}).testEnv
	env.signup("eve@example.com", "correct horse")
	for range 2 {
		if r := env.do("POST", "/api/users/login", loginBody("eve@example.com", "wrong horse")); r.status != 401 {
			t.Fatalf("failure: %d %s", r.status, r.body)
		}
	}
	b := newBrowser(t, env, "http://localhost:3000")
	r := b.submit(b.get("/"), `[data-testid="login-form"]`, url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}})
	r.is(429, "page-response")
	if r.header.Get("Retry-After") != "30" || !strings.Contains(r.text("response-content"), "30 seconds") {
		t.Errorf("429: Retry-After %q, %q", r.header.Get("Retry-After"), r.text("response-content"))
	}
	if r.testid("response-link").AttrOr("href", "") != "/request-password-reset" {
		t.Error("a throttled login should point at the reset")
	}
}

func TestPagesSecureCookies(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(_ *models.Config, o *handlers.Options) {
		o.BaseURL = "https://id.example.com"
		o.SecureCookies = true
	})
	rec := record(env)
	env.signup("eve@example.com", "correct horse")
	b := newBrowser(t, env, "https://id.example.com")
	home := b.get("/")
	if ck := home.setCookie("__Host-latchkey_csrf"); ck == nil || !ck.Secure || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("CSRF cookie = %+v", ck)
	}
	r := b.submit(home, `[data-testid="login-form"]`, url.Values{"email": {"eve@example.com"}, "password": {"correct horse"}})
	r.redirects("/")
	ck := r.setCookie("__Host-latchkey_session")
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
		t.Fatalf("session cookie = %+v", ck)
	}
	b.get("/").is(200, "page-home")
	b.submit(b.get("/request-password-reset"), `[data-testid="forgot-form"]`, url.Values{"email": {"eve@example.com"}})
	l := b.get("/reset-password?access_token=" + rec.lastResetToken(t))
	if ck := l.setCookie("__Secure-latchkey_reset"); ck == nil || !ck.Secure || ck.Path != "/reset-password" {
		t.Errorf("reset cookie = %+v", ck)
	}
	b.get("/reset-password").is(200, "page-reset")
}
