package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/metrics/metricstest"
	"github.com/latchkey/latchkey/models"
)

func scrape(t *testing.T, m *metrics.Metrics) metricstest.Scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	s, err := metricstest.Parse(rec.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return s
}

func want(t *testing.T, s metricstest.Scrape, v float64, name string, match ...string) {
	t.Helper()
	got, ok := s.Value(name, match...)
	if !ok || got != v {
		t.Errorf("%s%v = %v (found %v), want %v", name, match, got, ok, v)
	}
}

// TestMetricsFromSources: every metric is there from the first scrape,
// with what its source says at scrape time.
func TestMetricsFromSources(t *testing.T) {
	t.Parallel()
	var depth int64 = 3
	hits, misses := uint64(7), uint64(2)
	m := metrics.New(nil)
	m.Watch(metrics.Sources{
		Outbox: func(context.Context) (models.OutboxStats, error) {
			return models.OutboxStats{Pending: 5, Retrying: 2, Dead: 1, Sent: 40, Webhooks: models.WebhookStats{Pending: 4, Retrying: 1, Dead: 2}}, nil
		},
		HashQueue: func() int64 { return depth },
		AuthCache: func() (uint64, uint64) { return hits, misses },
	})
	s := scrape(t, m)
	for _, r := range []string{"success", "failure", "throttled"} {
		want(t, s, 0, "latchkey_logins_total", "result="+r)
		want(t, s, 0, "latchkey_second_steps_total", "result="+r)
	}
	want(t, s, 3, "latchkey_mail_outbox", "state=pending")
	want(t, s, 2, "latchkey_mail_outbox", "state=retrying")
	want(t, s, 1, "latchkey_mail_outbox", "state=dead")
	want(t, s, 3, "latchkey_webhook_outbox", "state=pending")
	want(t, s, 1, "latchkey_webhook_outbox", "state=retrying")
	want(t, s, 2, "latchkey_webhook_outbox", "state=dead")
	want(t, s, 3, "latchkey_hash_queue_depth")
	want(t, s, 7, "latchkey_auth_cache_hits_total")
	want(t, s, 2, "latchkey_auth_cache_misses_total")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if s[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	m.Login(models.StepPassword, models.LoginSuccess)
	m.Login(models.StepPassword, models.LoginFailure)
	m.Login(models.StepPassword, models.LoginFailure)
	m.Login(models.StepPassword, models.LoginThrottled)
	m.Login(models.StepSecond, models.LoginFailure)
	for range 3 {
		m.ObserveRequest("/api/users/:id", "GET", 200, 40*time.Microsecond)
	}
	m.ObserveRequest("/api/users/:id", "GET", 401, 30*time.Microsecond)
	m.ObserveRequest("/api/users/login", "POST", 200, 60*time.Millisecond)
	depth, hits, misses = 0, 9, 4
	s = scrape(t, m)
	want(t, s, 1, "latchkey_logins_total", "result=success")
	want(t, s, 2, "latchkey_logins_total", "result=failure")
	want(t, s, 1, "latchkey_logins_total", "result=throttled")
	want(t, s, 1, "latchkey_second_steps_total", "result=failure")
	want(t, s, 0, "latchkey_second_steps_total", "result=success")
	want(t, s, 3, "latchkey_http_request_duration_seconds", "route=/api/users/:id", "method=GET", "code=200")
	want(t, s, 1, "latchkey_http_request_duration_seconds", "route=/api/users/:id", "method=GET", "code=401")
	want(t, s, 1, "latchkey_http_request_duration_seconds", "route=/api/users/login", "method=POST", "code=200")
	h := s.Series("latchkey_http_request_duration_seconds", "route=/api/users/login")
	for _, m := range h {
		if sum := m.Histogram.GetSampleSum(); sum < 0.059 || sum > 0.061 {
			t.Errorf("login duration sum %v, want 0.06", sum)
		}
	}
	want(t, s, 0, "latchkey_hash_queue_depth")
	want(t, s, 9, "latchkey_auth_cache_hits_total")
	want(t, s, 4, "latchkey_auth_cache_misses_total")
}

// TestOutboxErrorKeepsTheScrape: an outbox count that fails (or times out)
// leaves its gauge out; everything else is still served.
func TestOutboxErrorKeepsTheScrape(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	m.Watch(metrics.Sources{
		OutboxTimeout: 20 * time.Millisecond,
		Outbox: func(ctx context.Context) (models.OutboxStats, error) {
			<-ctx.Done()
			return models.OutboxStats{}, errors.New("store away")
		},
	})
	start := time.Now()
	s := scrape(t, m)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the scrape waited %v for the outbox", d)
	}
	if s["latchkey_mail_outbox"] != nil {
		t.Error("an outbox gauge from a failed count")
	}
	want(t, s, 0, "latchkey_logins_total", "result=success")
}

// TestOnlyMetricsPath: the handler serves /metrics and nothing else.
func TestOnlyMetricsPath(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	for _, p := range []string{"/", "/metrics/x", "/debug/pprof/"} {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d", p, rec.Code)
		}
	}
}

// TestObserveRequestAllocatesNothing: after its first request a route's
// observation allocates nothing.
func TestObserveRequestAllocatesNothing(t *testing.T) {
	m := metrics.New(nil)
	m.ObserveRequest("/api/users/:id", "GET", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("/api/users/:id", "GET", 200, time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}

// BenchmarkObserveRequest is the metrics' share of a request: the curried
// histogram's lookup and observation.
func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("/api/users/:id", "GET", 200, 40*time.Microsecond)
		}
	})
}
