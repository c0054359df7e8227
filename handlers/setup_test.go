package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// testEnv is a real Echo server over a real SQLite file, with a fixed clock.
type testEnv struct {
	t     *testing.T
	e     *echo.Echo
	users *models.Users
	db    *models.DB
	clock *testkit.Clock
	h     *handlers.Handler
	// spec is the OpenAPI document every /api answer is checked against
	// (checkSpec); undocumented marks requests meant to miss it (offSpec).
	spec         *apiSpec
	undocumented bool
}

// envOption adjusts the configuration of a test environment.
type envOption func(*models.Config, *handlers.Options)

// newEnv builds the handlers as boot does, with bcrypt at its minimum cost
// (4) so tests stay fast; the cost itself is tested in models.
func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, testdb.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := testkit.NewClock(time.Date(2026, 11, 25, 23, 54, 13, 199e6, time.UTC))
	mcfg := models.Config{Now: clk.Now, Password: models.Policy{MinLength: 8}}
	hopts := handlers.Options{BaseURL: "http://localhost:3000"}
	for _, o := range opts {
		o(&mcfg, &hopts)
	}
	if mcfg.BaseURL == "" {
		mcfg.BaseURL = hopts.BaseURL // as boot does: passkeys for localhost
	}
	hasher := models.NewHasher(models.HashConfig{BcryptCost: 4})
	users := models.NewUsers(db, hasher, nil, mcfg)
	hopts.Users = users
	hopts.Ping = db.Ping
	h := handlers.New(hopts)
	e := echo.New()
	h.Register(e)
	return &testEnv{t: t, e: e, users: users, db: db, clock: clk, h: h, spec: mustSpec(t)}
}

// response is a recorded answer.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// errorOf returns the "error" object of an envelope.
func (r response) errorOf(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error envelope in %s", r.body)
	}
	return m
}

// do sends a request from the test's usual client address (192.0.2.1).
// body may be "" (none) and is sent as JSON otherwise; headers are
// "Name: value" strings (a Content-Type there wins).
func (env *testEnv) do(method, path, body string, headers ...string) response {
	env.t.Helper()
	return env.from("192.0.2.1", method, path, body, headers...)
}

// from sends a request from the TCP peer ip (host only).
func (env *testEnv) from(ip, method, path, body string, headers ...string) response {
	env.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = peerAddr(ip)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	env.e.ServeHTTP(rec, req)
	env.checkSpec(env.t, req, rec)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
}

func peerAddr(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:4711"
	}
	return ip + ":4711"
}

// signup creates a user through the API and fails the test otherwise.
func (env *testEnv) signup(email, password string, extra ...string) int64 {
	env.t.Helper()
	body := map[string]any{"email": email, "password": password}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(body)
	r := env.do("POST", "/api/users", string(b))
	if r.status != 200 {
		env.t.Fatalf("signup %s: %d %s", email, r.status, r.body)
	}
	return int64(r.json(env.t)["id"].(float64))
}

// login logs in through the API and returns the token id.
func (env *testEnv) login(email, password string) string {
	env.t.Helper()
	b, _ := json.Marshal(map[string]any{"email": email, "password": password})
	r := env.do("POST", "/api/users/login", string(b))
	if r.status != 200 {
		env.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	return r.json(env.t)["id"].(string)
}
