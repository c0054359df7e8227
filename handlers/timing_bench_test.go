package handlers_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// BenchmarkLoginUnknownVsWrongPassword measures SECURITY L2 at the default
// bcrypt cost (10): each iteration sends an unknown-user login, a
// wrong-password login and a disabled-user login, interleaved, and reports
// their medians (ms). Run with -benchtime=200x for SECURITY.md's ≥ 200
// samples. TestSecurity_L2_EqualTiming asserts the same with wide margins.
func BenchmarkLoginUnknownVsWrongPassword(b *testing.B) {
	ctx := context.Background()
	db, err := models.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	hasher := models.NewHasher(models.HashConfig{BcryptCost: 10})
	users := models.NewUsers(db, hasher, nil, models.Config{Password: models.Policy{MinLength: 8}})
	hasher.Warm()
	e := echo.New()
	handlers.New(handlers.Options{Users: users, BaseURL: "http://localhost:3000"}).Register(e)
	if _, err := users.CreateUser(ctx, models.StringFields("email", "known@example.com", "password", "nwonk-pw-1-long"), models.ClientMeta{}); err != nil {
		b.Fatal(err)
	}
	off, err := users.CreateUser(ctx, models.StringFields("email", "off@example.com", "password", "off-pw-1-long"), models.ClientMeta{})
	if err != nil {
		b.Fatal(err)
	}
	_ = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE users SET disabled_at = 1 WHERE id = ?`, off.ID)
		return err
	})
	login := func(body string) int {
		req := httptest.NewRequest("POST", "/api/users/login", strings.NewReader(body))
		req.RemoteAddr = "198.51.100.1:4711"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code
	}
	kinds := []struct{ name, body string }{
		{"unknown", loginBody("nobody@example.com", "wrong-pw-1-long")},
		{"wrong", loginBody("known@example.com", "wrong-pw-1-long")},
		{"disabled", loginBody("off@example.com", "off-pw-1-long")},
	}
	times := make([][]time.Duration, len(kinds))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, kind := range kinds {
			start := time.Now()
			if status := login(kind.body); status != 401 {
				b.Fatalf("%s: %d", kind.name, status)
			}
			times[k] = append(times[k], time.Since(start))
		}
	}
	b.StopTimer()
	for k, kind := range kinds {
		b.ReportMetric(float64(median(times[k]).Microseconds())/1000, kind.name+"-median-ms")
	}
}
