package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// heard records what an Observer is told.
type heard struct {
	mu   sync.Mutex
	seen []string // "route method status"
}

func (h *heard) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if elapsed < 0 {
		status = -1
	}
	h.seen = append(h.seen, fmt.Sprintf("%s %s %d", route, method, status))
}

func (h *heard) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.seen
	h.seen = nil
	return out
}

// TestObserverHearsRoutePatterns: each request is heard once, by the
// pattern of the route that served it and the code sent: an id never
// appears, nor a path nobody routed (UnmatchedRoute), nor a made-up method.
func TestObserverHearsRoutePatterns(t *testing.T) {
	t.Parallel()
	obs := &heard{}
	env := newEnv(t, func(_ *models.Config, o *handlers.Options) { o.Observer = obs })
	id := env.signup("obs@example.com", "observer-pw-1")
	tok := env.login("obs@example.com", "observer-pw-1")
	obs.take()
	path := fmt.Sprintf("/api/users/%d", id)
	for _, tc := range []struct {
		method, path string
		headers      []string
		want         string
	}{
		{"GET", path, []string{"Authorization: " + tok}, "/api/users/:id GET 200"},
		{"GET", "/api/Users/987654", nil, "/api/users/:id GET 401"},
		{"HEAD", path, []string{"Authorization: " + tok}, "/api/users/:id HEAD 401"},
		{"POST", "/api/users/login", nil, "/api/users/login POST 400"},
		{"GET", "/api/users/1/nothing/here", nil, "/api/users/* GET 404"},
		{"GET", "/healthz", nil, "/healthz GET 200"},
		// A path with routes but none for the method: the path's pattern.
		{"DELETE", "/healthz", nil, "/healthz DELETE 405"},
		{"BREW", "/healthz", nil, "/healthz OTHER 405"},
		{"GET", "/no/such/page/42", nil, handlers.UnmatchedRoute + " GET 404"},
	} {
		e := env
		if tc.path == "/api/users/1/nothing/here" {
			e = env.offSpec() // off the API document on purpose
		}
		r := e.do(tc.method, tc.path, "", tc.headers...)
		got := obs.take()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %s (%d): heard %q, want %q", tc.method, tc.path, r.status, got, tc.want)
		}
		for _, g := range got {
			if strings.Contains(g, "987654") || strings.Contains(g, "nothing") || strings.Contains(g, "BREW") {
				t.Errorf("a raw path or method reached the observer: %q", g)
			}
		}
	}
	if st := env.do("GET", "/metrics", "").status; st != http.StatusNotFound {
		t.Errorf("/metrics on the app's own routes: %d, want 404", st)
	}
}
