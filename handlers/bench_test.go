package handlers_test

// End-to-end benchmarks of the authenticated read through Echo (issue 6):
//
//	go test -run '^$' -bench . -benchmem ./handlers/
//
// No network: each request goes through e.ServeHTTP with an httptest
// recorder, so the figure is the server's own cost per request.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/models"
)

type benchApp struct {
	e     *echo.Echo
	path  string
	token string
}

// newBenchApp builds the API as boot does, with one user and a token of
// theirs. accessLog adds the per-request log line (written to io.Discard in
// slog's text format, so the formatting cost is measured but no I/O);
// withMetrics adds boot's Prometheus metrics (internal/metrics) as the
// login hook and the request observer.
func newBenchApp(b *testing.B, accessLog, withMetrics bool) *benchApp {
	b.Helper()
	ctx := context.Background()
	db, err := models.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var m *metrics.Metrics
	cfg := models.Config{}
	if withMetrics {
		m = metrics.New(nil)
		cfg.OnLogin = m.Login
	}
	users := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, cfg)
	meta := models.ClientMeta{IP: "127.0.0.1"}
	u, err := users.CreateUser(ctx, models.StringFields("email", "bench@example.com", "password", "correct horse"), meta)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := users.Login(ctx, models.Credentials{Email: "bench@example.com", Password: "correct horse"}, meta)
	if err != nil {
		b.Fatal(err)
	}
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	opts := handlers.Options{
		Users:     users,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog: accessLog,
	}
	if m != nil {
		m.Watch(metrics.Sources{AuthCache: users.AuthCacheCounts})
		opts.Observer = m
	}
	h := handlers.New(opts)
	h.Register(e)
	return &benchApp{e: e, path: "/api/users/" + strconv.FormatInt(u.ID, 10), token: tok.ID}
}

func (a *benchApp) get(b *testing.B) {
	req := httptest.NewRequest(http.MethodGet, a.path, nil)
	req.Header.Set("Authorization", a.token)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	a.e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s = %d %s", a.path, rec.Code, rec.Body)
	}
}

// BenchmarkAPIGetUser is GET /api/users/:id with a valid token: middleware,
// routing, token resolution (cache hit), JSON; with the access log or not,
// with the Prometheus metrics (+metrics) or not.
func BenchmarkAPIGetUser(b *testing.B) {
	for _, tc := range []struct {
		name         string
		log, metrics bool
	}{{"accesslog", true, false}, {"accesslog+metrics", true, true}, {"nolog", false, false}, {"nolog+metrics", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			a := newBenchApp(b, tc.log, tc.metrics)
			a.get(b) // warm the cache
			b.ReportAllocs()
			for b.Loop() {
				a.get(b)
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			a := newBenchApp(b, tc.log, tc.metrics)
			a.get(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a.get(b)
				}
			})
		})
	}
}

// BenchmarkBareEcho is the floor: Echo with no middleware answering a small
// JSON object, through the same httptest plumbing.
func BenchmarkBareEcho(b *testing.B) {
	e := echo.New()
	e.GET("/ping", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/ping", nil)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
