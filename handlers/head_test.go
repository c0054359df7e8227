package handlers_test

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// routeExample turns a route pattern into a path that reaches it.
var routeParam = regexp.MustCompile(`:[a-z]+`)

func routeExample(pattern string) string {
	p := routeParam.ReplaceAllString(pattern, "1")
	if strings.HasSuffix(p, "*") {
		p = strings.TrimSuffix(p, "*")
		if strings.HasPrefix(p, "/static/") {
			p += "style.css"
		} else {
			p += "x"
		}
	}
	return p
}

// headerView is a header without what legitimately differs between two
// answers: the date, the request id and cookie values (a new CSRF token per
// request); cookie names and attributes stay.
func headerView(h http.Header) http.Header {
	out := h.Clone()
	out.Del("Date")
	out.Del("X-Request-Id")
	if cs := out.Values("Set-Cookie"); len(cs) > 0 {
		out.Del("Set-Cookie")
		for _, c := range cs {
			name, rest, _ := strings.Cut(c, "=")
			_, attrs, _ := strings.Cut(rest, ";")
			out.Add("Set-Cookie", name+"=…;"+attrs)
		}
	}
	return out
}

// TestHeadEveryGetRoute walks every registered GET route (pages, /healthz,
// /static, the API, and any route added later) and asks it with HEAD: a
// HEAD route exists for each, and the answer has GET's status and headers
// and no body.
func TestHeadEveryGetRoute(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	heads := map[string]bool{}
	var gets []string
	for _, r := range env.e.Routes() {
		switch r.Method {
		case http.MethodHead:
			heads[r.Path] = true
		case http.MethodGet:
			gets = append(gets, r.Path)
		}
	}
	slices.Sort(gets)
	gets = slices.Compact(gets)
	if len(gets) < 20 {
		t.Fatalf("only %d GET routes: %v", len(gets), gets)
	}
	for _, pattern := range gets {
		if !heads[pattern] {
			t.Errorf("GET %s has no HEAD route", pattern)
		}
		path := routeExample(pattern)
		do := env
		if pattern == "/api" || pattern == "/api/*" {
			do = env.offSpec() // the API's 404 for every unknown path
		}
		get := do.do("GET", path, "")
		head := do.do("HEAD", path, "")
		if head.status != get.status {
			t.Errorf("%s (%s): HEAD %d, GET %d", pattern, path, head.status, get.status)
		}
		if head.body != "" {
			t.Errorf("%s: HEAD has a body: %q", pattern, head.body)
		}
		gh, hh := headerView(get.header), headerView(head.header)
		if strings.Contains(get.body, "handl") && strings.Contains(get.body, " GET ") {
			// LoopBack's 404 names the method ("There is no method to
			// handle HEAD /x"), so its length differs by a letter.
			gh.Set("Content-Length", strconv.Itoa(len(strings.Replace(get.body, " GET ", " HEAD ", 1))))
		}
		for k := range gh {
			if !slices.Equal(gh[k], hh[k]) {
				t.Errorf("%s (%s): %s: HEAD %q, GET %q", pattern, path, k, hh[k], gh[k])
			}
		}
		for k := range hh {
			if _, ok := gh[k]; !ok {
				t.Errorf("%s (%s): HEAD sends %s, GET does not", pattern, path, k)
			}
		}
		if head.header.Get("X-Request-Id") == "" {
			t.Errorf("%s: HEAD without X-Request-Id", pattern)
		}
	}
}

// TestHeadHealthAndPages: what a load balancer and a link checker send.
func TestHeadHealthAndPages(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, path := range []string{"/healthz", "/", "/login", "/signup", "/request-password-reset", "/static/style.css",
		"/api/users/confirm"} {
		get, head := env.do("GET", path, ""), env.do("HEAD", path, "")
		if head.status != get.status || head.body != "" {
			t.Errorf("HEAD %s: %d %q (GET %d)", path, head.status, head.body, get.status)
		}
		if cl := head.header.Get("Content-Length"); cl == "" || cl != get.header.Get("Content-Length") {
			t.Errorf("HEAD %s: Content-Length %q, GET %q", path, cl, get.header.Get("Content-Length"))
		}
	}
	if r := env.do("HEAD", "/healthz", ""); r.status != http.StatusOK {
		t.Errorf("HEAD /healthz: %d", r.status)
	}
	// OPTIONS stays as it was: 204 with Allow, now listing HEAD.
	if r := env.do("OPTIONS", "/login", ""); r.status != http.StatusNoContent || r.header.Get("Allow") != "OPTIONS, GET, HEAD, POST" {
		t.Errorf("OPTIONS /login: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	// A page that takes only POST: HEAD is 405 like any other method.
	if r := env.do("HEAD", "/sessions/revoke", ""); r.status != http.StatusMethodNotAllowed || r.body != "" ||
		r.header.Get("Allow") != "OPTIONS, POST" {
		t.Errorf("HEAD /sessions/revoke: %d Allow %q body %q", r.status, r.header.Get("Allow"), r.body)
	}
}
