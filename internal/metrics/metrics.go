// Package metrics is Latchkey's Prometheus face: a private registry (never
// the default one) with the Go and process collectors and the metrics
// below, fed by plain hooks and counters of models and handlers, which
// import no Prometheus. boot builds one per server and serves it on its
// own listener (LATCHKEY_METRICS_ADDR).
//
//	latchkey_logins_total{result}                 password logins: success, failure, throttled
//	latchkey_second_steps_total{result}           two-step logins' codes: success, failure, throttled
//	latchkey_http_request_duration_seconds{route,method,code}
//	latchkey_mail_outbox{state}                   pending, retrying, dead (read at scrape time)
//	latchkey_webhook_outbox{state}                the same for webhook deliveries
//	latchkey_hash_queue_depth                     hashes waiting for a worker
//	latchkey_auth_cache_hits_total, latchkey_auth_cache_misses_total
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkey/latchkey/models"
)

// Sources are what the metrics read at scrape time (Watch). Any may be
// nil: its metric is then left out.
type Sources struct {
	// Outbox counts the mail outbox (models.Outbox.Stats); it is given
	// OutboxTimeout, so a slow store cannot hold a scrape.
	Outbox        func(context.Context) (models.OutboxStats, error)
	OutboxTimeout time.Duration // default 1s
	// HashQueue is the hashes waiting for a worker (models.Hasher.QueueDepth).
	HashQueue func() int64
	// AuthCache is the auth cache's hits and misses so far
	// (models.Users.AuthCacheCounts).
	AuthCache func() (hits, misses uint64)
}

// Buckets of the request duration, in seconds: an authenticated read takes
// tens of microseconds, a login one bcrypt (about 50 ms at cost 10), a
// queued login up to seconds.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics is one server's registry and its instruments. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	logins  [3]prometheus.Counter // by models.LoginResult
	seconds [3]prometheus.Counter // the second step, by models.LoginResult
	http    requestDurations
}

// New makes a private registry with the Go and process collectors and the
// metrics that are told (Login, ObserveRequest); Watch adds those read at
// scrape time. log receives scrape errors (an outbox count that failed);
// nil: none.
func New(log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	logins := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_logins_total",
		Help: "Password logins (API, login page, sign-in after sign-up) by outcome: success (the password was right; for a two-step account the second step then begins), failure (wrong credentials, unknown or disabled account), throttled (refused with 429 before the password was tried).",
	}, []string{"result"})
	seconds := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_second_steps_total",
		Help: "Second steps of two-step logins (a TOTP or recovery code) by outcome: success, failure (a wrong code, or an expired step), throttled.",
	}, []string{"result"})
	for _, r := range []models.LoginResult{models.LoginSuccess, models.LoginFailure, models.LoginThrottled} {
		// Every result exists from the start, at 0, so rate() and ratios
		// work before the first failure.
		m.logins[r] = logins.WithLabelValues(r.String())
		m.seconds[r] = seconds.WithLabelValues(r.String())
	}
	m.http.vec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "latchkey_http_request_duration_seconds",
		Help:    "Time from routing to the answer written, by route pattern (unmatched: no route), method and status code.",
		Buckets: durationBuckets,
	}, []string{"route", "method", "code"})
	m.http.byKey.Store(&map[requestKey]prometheus.Observer{})
	m.reg.MustRegister(logins, seconds, m.http.vec)

	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	if log != nil {
		opts.ErrorLog = slogPrinter{log}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, opts))
	m.handler = mux
	return m
}

// Watch registers the metrics read from src at scrape time. Call it once,
// before the first scrape.
func (m *Metrics) Watch(src Sources) {
	if src.Outbox != nil {
		if src.OutboxTimeout <= 0 {
			src.OutboxTimeout = time.Second
		}
		m.reg.MustRegister(&outboxCollector{stats: src.Outbox, timeout: src.OutboxTimeout,
			desc: prometheus.NewDesc("latchkey_mail_outbox",
				"Mail in the outbox by state: pending (waiting for its first attempt), retrying (failed at least once, to be tried again), dead (given up). pending + retrying is /healthz's pending.",
				[]string{"state"}, nil),
			hooks: prometheus.NewDesc("latchkey_webhook_outbox",
				"Webhook deliveries in the outbox by state, as latchkey_mail_outbox counts mail (/healthz's webhooks).",
				[]string{"state"}, nil)})
	}
	if src.HashQueue != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latchkey_hash_queue_depth",
			Help: "Password hashes waiting for a hashing worker (LATCHKEY_HASH_QUEUE more answer 503).",
		}, func() float64 { return float64(src.HashQueue()) }))
	}
	if src.AuthCache != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "latchkey_auth_cache_hits_total",
				Help: "Auth cache lookups (a token with its user, or a user by id) answered from memory.",
			}, func() float64 { h, _ := src.AuthCache(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "latchkey_auth_cache_misses_total",
				Help: "Auth cache lookups that went to the database (absent, stale, or the cache bypassed while the change feed is down).",
			}, func() float64 { _, mi := src.AuthCache(); return float64(mi) }),
		)
	}
}

// Handler serves GET /metrics in the Prometheus text (or negotiated)
// format, and 404 for every other path.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer is the registry, for tests.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Login counts a login step's outcome: models.Config.OnLogin.
func (m *Metrics) Login(step models.LoginStep, r models.LoginResult) {
	if int(r) >= len(m.logins) {
		return
	}
	if step == models.StepSecond {
		m.seconds[r].Inc()
		return
	}
	m.logins[r].Inc()
}

// ObserveRequest records one answered request: handlers.RequestObserver.
func (m *Metrics) ObserveRequest(route, method string, status int, elapsed time.Duration) {
	m.http.observer(route, method, status).Observe(elapsed.Seconds())
}

// requestDurations keeps, for every route, method and code seen, its
// curried histogram, so a request costs one map lookup and the
// histogram's atomic adds: no label hashing, no allocation, no lock. The
// map is copied on write (a new route, method and code: a few dozen
// times in a process's life) and read through an atomic pointer.
type requestDurations struct {
	vec   *prometheus.HistogramVec
	byKey atomic.Pointer[map[requestKey]prometheus.Observer]
	mu    sync.Mutex // serialises the copies
}

type requestKey struct {
	route, method string
	status        int
}

func (d *requestDurations) observer(route, method string, status int) prometheus.Observer {
	k := requestKey{route, method, status}
	if o, ok := (*d.byKey.Load())[k]; ok {
		return o
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.byKey.Load()
	if o, ok := old[k]; ok {
		return o
	}
	o := d.vec.WithLabelValues(route, method, strconv.Itoa(status))
	next := make(map[requestKey]prometheus.Observer, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = o
	d.byKey.Store(&next)
	return o
}

// outboxCollector reads the outbox counts at scrape time.
type outboxCollector struct {
	stats       func(context.Context) (models.OutboxStats, error)
	timeout     time.Duration
	desc, hooks *prometheus.Desc // mail, webhook deliveries
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.hooks }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		// The scrape still serves every other metric (ContinueOnError);
		// the gauge is absent, which absent() alerts can catch.
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.Pending-st.Retrying), "pending")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.Retrying), "retrying")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(st.Dead), "dead")
	w := st.Webhooks
	ch <- prometheus.MustNewConstMetric(c.hooks, prometheus.GaugeValue, float64(w.Pending-w.Retrying), "pending")
	ch <- prometheus.MustNewConstMetric(c.hooks, prometheus.GaugeValue, float64(w.Retrying), "retrying")
	ch <- prometheus.MustNewConstMetric(c.hooks, prometheus.GaugeValue, float64(w.Dead), "dead")
}

// slogPrinter is promhttp's error log over slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics scrape", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
