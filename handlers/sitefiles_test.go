package handlers_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestFavicon: /favicon.ico is the app's icon as an ICO, cached, with HEAD.
func TestFavicon(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	r := env.do("GET", "/favicon.ico", "")
	if r.status != 200 || r.header.Get("Content-Type") != "image/x-icon" || !bytes.HasPrefix([]byte(r.body), []byte{0, 0, 1, 0}) {
		t.Fatalf("GET /favicon.ico: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=86400" || r.header.Get("ETag") == "" {
		t.Errorf("Cache-Control %q, ETag %q", cc, r.header.Get("ETag"))
	}
	if r304 := env.do("GET", "/favicon.ico", "", "If-None-Match: "+r.header.Get("ETag")); r304.status != http.StatusNotModified {
		t.Errorf("revalidation: %d", r304.status)
	}
	// The pages link it (hashed, cached for a year) beside the SVG.
	home := env.do("GET", "/", "")
	if !strings.Contains(home.body, `<link rel="icon" href="/static/favicon.`) {
		t.Error("the layout does not link favicon.ico")
	}
}

// TestRobots: robots.txt disallows the account pages and the API and
// nothing else; every page says noindex, other answers do not.
func TestRobots(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	r := env.do("GET", "/robots.txt", "")
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=UTF-8" {
		t.Fatalf("GET /robots.txt: %d %s", r.status, r.header.Get("Content-Type"))
	}
	var rules []string
	for _, line := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(line, "Disallow: "); ok {
			rules = append(rules, v)
		}
	}
	// RFC 9309 matching: a prefix, "$" anchors the end.
	disallowed := func(path string) bool {
		for _, rule := range rules {
			if exact, ok := strings.CutSuffix(rule, "$"); ok && path == exact || !ok && strings.HasPrefix(path, rule) {
				return true
			}
		}
		return false
	}
	for _, p := range []string{"/", "/login", "/signup", "/logout", "/sessions", "/reset-password",
		"/request-password-reset", "/check-email", "/verified", "/auth/google", "/auth/google/callback",
		"/link/google", "/unlink/3", "/account", "/api/users/confirm"} {
		if !disallowed(p) {
			t.Errorf("robots.txt allows %s", p)
		}
	}
	for _, p := range []string{"/static/style.css", "/favicon.ico", "/robots.txt", "/healthz"} {
		if disallowed(p) {
			t.Errorf("robots.txt disallows %s", p)
		}
	}
	for path, want := range map[string]string{"/": "noindex", "/login": "noindex", "/signup": "noindex",
		"/request-password-reset": "noindex", "/nope": "noindex", "/healthz": "", "/static/style.css": "",
		"/favicon.ico": "", "/api/users/1": ""} {
		if got := env.do("GET", path, "").header.Get("X-Robots-Tag"); got != want {
			t.Errorf("GET %s: X-Robots-Tag %q, want %q", path, got, want)
		}
	}
}
