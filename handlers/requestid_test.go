package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

var generatedID = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// withProxy trusts 203.0.113.9 as a proxy.
func withProxy(_ *models.Config, o *handlers.Options) {
	o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("203.0.113.9/32")}
}

// TestRequestIDAcceptedOrGenerated: an id is on every response; a trusted
// proxy's well-formed id is kept, anything else is replaced.
func TestRequestIDAcceptedOrGenerated(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withProxy)
	seen := map[string]bool{}
	for _, path := range []string{"/", "/nope", "/healthz", "/static/style.css", "/api/users/1", "/api/nope", "/favicon.ico"} {
		do := env
		if path == "/api/nope" {
			do = env.offSpec() // no such route, on purpose
		}
		id := do.do("GET", path, "").header.Get("X-Request-Id")
		if !generatedID.MatchString(id) || seen[id] {
			t.Errorf("GET %s: X-Request-Id %q (not generated, or seen before)", path, id)
		}
		seen[id] = true
	}
	for _, tc := range []struct {
		name, peer, sent string
		kept             bool
	}{
		{"trusted proxy, uuid", "203.0.113.9", "6f1c1d8e-3f5a-4c2e-9b1d-2a7e8c9d0f11", true},
		{"trusted proxy, nginx hex", "203.0.113.9", "0123456789abcdef0123456789abcdef", true},
		{"trusted proxy, dots and underscores", "203.0.113.9", "lb_1.req-42", true},
		{"trusted proxy, 64 characters", "203.0.113.9", strings.Repeat("a", 64), true},
		{"trusted proxy, 65 characters", "203.0.113.9", strings.Repeat("a", 65), false},
		{"trusted proxy, a space", "203.0.113.9", "a b", false},
		{"trusted proxy, a log field", "203.0.113.9", `x" status=200`, false},
		{"trusted proxy, markup", "203.0.113.9", "<b>", false},
		{"untrusted peer", "192.0.2.1", "6f1c1d8e-3f5a-4c2e-9b1d-2a7e8c9d0f11", false},
	} {
		got := env.from(tc.peer, "GET", "/healthz", "", "X-Request-Id: "+tc.sent).header.Get("X-Request-Id")
		if tc.kept && got != tc.sent || !tc.kept && !generatedID.MatchString(got) {
			t.Errorf("%s: sent %q, answered %q", tc.name, tc.sent, got)
		}
	}
}

// TestRequestIDInAuditRows: each audit row holds the id of the request that
// wrote it.
func TestRequestIDInAuditRows(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withProxy)
	env.signup("alice@example.com", "ecila-pw-1")
	r := env.from("203.0.113.9", "POST", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1"}`,
		"X-Request-Id: support-ref-1")
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	failed := env.do("POST", "/api/users/login", `{"email":"alice@example.com","password":"wrong-pw-12"}`)
	rows, err := env.db.Query(context.Background(), `SELECT kind, request_id FROM audit_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var kind, id string
		if err := rows.Scan(&kind, &id); err != nil {
			t.Fatal(err)
		}
		got[kind] = id
	}
	if got["login.ok"] != "support-ref-1" || got["login.failed"] != failed.header.Get("X-Request-Id") ||
		!generatedID.MatchString(got["user.created"]) {
		t.Errorf("audit request ids %v; failed login answered %s", got, failed.header.Get("X-Request-Id"))
	}
}

// TestRequestIDOnErrorPagesNotInAPIBodies: the error page shows the id as
// its reference; the API's envelope stays LoopBack's.
func TestRequestIDOnErrorPagesNotInAPIBodies(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := newBrowser(t, env, "http://localhost:3000")
	for _, path := range []string{"/nope", "/login"} {
		p := b.do("PUT", path, nil)
		id := p.header.Get("X-Request-Id")
		if got := p.text("error-reference"); id == "" || got != "reference: "+id {
			t.Errorf("PUT %s: reference %q, X-Request-Id %q", path, got, id)
		}
	}
	for _, path := range []string{"/api/nope", "/api/users/1"} {
		do := env
		if path == "/api/nope" {
			do = env.offSpec() // no such route, on purpose
		}
		r := do.do("GET", path, "")
		if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(r.body, id) || strings.Contains(r.body, "request") {
			t.Errorf("GET %s: %s (id %s)", path, r.body, id)
		}
	}
	// Pages that are not errors show no reference.
	if p := b.get("/login"); p.testid("error-reference").Length() != 0 {
		t.Error("the login page shows a reference")
	}
}

// TestRequestIDInLogLines: the access log line and the error lines of a
// failing request carry its id; a request's lines never carry another's.
func TestRequestIDInLogLines(t *testing.T) {
	t.Parallel()
	var buf testkit.SyncBuffer
	env := newEnv(t, withProxy, func(_ *models.Config, o *handlers.Options) {
		o.Log = slog.New(slog.NewJSONHandler(&buf, nil))
		o.AccessLog = true
	})
	env.e.GET("/boom", func(echo.Context) error { panic("boom") })
	env.e.GET("/fail", func(echo.Context) error { return errors.New("the database said no") })
	reqs := []struct{ path, id string }{{"/boom", "boom-ref"}, {"/fail", "fail-ref"}, {"/api/nope", "nope-ref"}}
	for _, r := range reqs {
		do := env
		if r.path == "/api/nope" {
			do = env.offSpec() // no such route, on purpose
		}
		if got := do.from("203.0.113.9", "GET", r.path, "", "X-Request-Id: "+r.id).header.Get("X-Request-Id"); got != r.id {
			t.Fatalf("GET %s: X-Request-Id %q", r.path, got)
		}
	}
	// From an untrusted peer the id sent is replaced, in the log too.
	env.do("GET", "/fail", "", "X-Request-Id: forged-ref")
	want := map[string]string{ // id -> the messages of its lines, in order
		"boom-ref": "panic,request failed,request",
		"fail-ref": "request failed,request",
		"nope-ref": "request",
	}
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		id, _ := m["request_id"].(string)
		if id == "" {
			t.Errorf("a log line without request_id: %s", line)
		}
		got[id] = append(got[id], m["msg"].(string))
	}
	for id, msgs := range want {
		if strings.Join(got[id], ",") != msgs {
			t.Errorf("lines of %s: %v, want %s", id, got[id], msgs)
		}
	}
	if _, ok := got["forged-ref"]; ok {
		t.Error("an untrusted peer's id reached the log")
	}
	if len(got) != 4 {
		t.Errorf("%d request ids in the log, want 4: %v", len(got), got)
	}
}
