package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDatabaseUnavailable (SECURITY X2): with the store gone, the API answers
// 503 with Retry-After in the LoopBack envelope and a page request gets a
// readable 503 page; neither shows the cause, and /healthz says 503. (The
// PostgreSQL cut-and-restore test is in e2e; here the store is closed.)
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("ann@example.com", "correct horse battery")
	b := newBrowser(t, env, "http://localhost:3000")
	login := b.get("/login")
	env.db.Close()

	r := env.do("POST", "/api/users/login", `{"email":"ann@example.com","password":"correct horse battery"}`)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("login with the store gone: %d %v %s", r.status, r.header, r.body)
	}
	e := r.errorOf(t)
	if e["code"] != "SERVICE_UNAVAILABLE" || e["statusCode"] != float64(503) {
		t.Fatalf("envelope %s", r.body)
	}
	for _, leak := range []string{"sql", "closed", "database", "sqlite", "postgres"} {
		if strings.Contains(strings.ToLower(r.body), leak) {
			t.Fatalf("the answer shows its cause (%q): %s", leak, r.body)
		}
	}

	p := b.submit(login, `[data-testid="login-form"]`, url.Values{"email": {"ann@example.com"}, "password": {"correct horse battery"}})
	p.is(http.StatusServiceUnavailable, "")
	if p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Temporarily unavailable") ||
		strings.Contains(strings.ToLower(p.body), "sql") {
		t.Fatalf("page while the store is gone: %v\n%s", p.header, p.body)
	}

	if r := env.do("GET", "/healthz", ""); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("healthz: %d %v", r.status, r.header)
	}
}
