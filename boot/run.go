// Package boot is the composition root: it reads the configuration, opens
// the store, wires the mailer and the outbox worker, builds the Echo server
// with the handlers and serves until its context ends.
package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
)

// App is a built server: the store, the account service and the HTTP handler.
type App struct {
	Config Config
	Log    *slog.Logger
	DB     *models.DB
	Users  *models.Users
	Echo   *echo.Echo
	// Metrics is the Prometheus registry that serve puts on
	// LATCHKEY_METRICS_ADDR; nil when that is empty.
	Metrics *metrics.Metrics

	background []func(context.Context) // run by Serve until shutdown
}

// New opens the database and builds everything, without listening.
func New(ctx context.Context, cfg Config, log *slog.Logger, now func() time.Time) (*App, error) {
	if now == nil {
		now = time.Now
	}
	db, err := models.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("LATCHKEY_DB: %w", err)
	}
	hasher := newHasher(cfg)
	go hasher.Warm()
	limits := cfg.Limits
	limits.Now = now
	limiter := models.NewLimiter(db, limits)
	rules := accountRules(cfg, now, authCacheSize(cfg.AuthCache))
	var m *metrics.Metrics
	if cfg.MetricsAddr != "" {
		m = metrics.New(log)
		rules.OnLogin = m.Login
	}
	users := models.NewUsers(db, hasher, limiter, rules)
	if !users.PasskeysEnabled() {
		log.Warn("passkeys are off: the base URL's host is not a domain a browser accepts as a WebAuthn RP ID", "base_url", cfg.BaseURL)
	}
	app := &App{Config: cfg, Log: log, DB: db, Users: users, Metrics: m}
	app.background = append(app.background, pruneThrottle(limiter, log))

	// mail: subscribers and the outbox worker are wired here.
	sender, err := NewSMTPSender(cfg.SMTP)
	if err != nil {
		db.Close()
		return nil, err
	}
	outbox := models.NewOutbox(db, models.OutboxConfig{Now: now})
	maxAge := map[string]time.Duration{KindResetPassword: time.Duration(cfg.ResetTTL) * time.Second, KindVerifyEmail: time.Duration(cfg.VerifyTTL) * time.Second,
		KindEmailChangeConfirm:                                time.Duration(cfg.VerifyTTL) * time.Second,
		models.WebhookKindPrefix + EventResetRequested:        time.Duration(cfg.ResetTTL) * time.Second,
		models.WebhookKindPrefix + EventVerificationRequested: time.Duration(cfg.VerifyTTL) * time.Second}
	// Two workers over the one outbox: mail, and webhook deliveries, each
	// claiming only its own kinds, so a slow or failing receiver never
	// holds up mail (a reset above all) nor a slow mail server webhooks.
	senders := withWebhooks(sender, cfg.Webhook, now)
	mailer := NewOutboxWorker(outbox, senders, log, WorkerConfig{MaxAge: maxAge, Class: models.MailKinds})
	hooker := NewOutboxWorker(outbox, senders, log, WorkerConfig{MaxAge: maxAge, Class: models.WebhookKinds})
	// What the sign-in method notices call each method: a provider by its
	// button label, the second factors in words.
	labels := map[string]string{"totp": "Two-step verification with an authenticator app", "passkey": "A passkey"}
	for _, p := range cfg.Providers {
		labels[p.ID] = p.Label
	}
	assets, brand, mail, err := cfg.Brand.assets(cfg.BaseURL)
	if err != nil {
		db.Close()
		return nil, err
	}
	registerMail(users, mail, cfg.BaseURL, labels, cfg.Webhook.ResetDelivery == "webhook", mailer.Notify)
	registerWebhooks(users, cfg.Webhook, cfg.BaseURL, hooker.Notify)
	app.background = append(app.background, mailer.Run, hooker.Run)

	app.background = append(app.background, app.pruneTokens)

	// A nil *metrics.Metrics must not become a non-nil Observer.
	var observer handlers.RequestObserver
	if m != nil {
		m.Watch(metrics.Sources{Outbox: outbox.Stats, HashQueue: hasher.QueueDepth, AuthCache: users.AuthCacheCounts})
		observer = m
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	h := handlers.New(handlers.Options{
		Users:          users,
		Log:            log,
		BaseURL:        cfg.BaseURL,
		SecureCookies:  cfg.SecureCookies(),
		CORSOrigins:    cfg.CORSOrigins,
		TrustedProxies: cfg.TrustedProxies,
		AccessLog:      true,
		MailStats:      outbox.Stats,
		Outbox:         outbox,
		Ping:           db.Ping,
		FeedUp:         db.FeedUp,
		Providers:      oauth.NewRegistry(ctx, cfg.Providers, &http.Client{Timeout: 15 * time.Second}, log),
		Observer:       observer,
		Assets:         assets,
		Brand:          brand,
	})
	h.Register(e)
	app.Echo = e
	return app, nil
}

// newHasher is the password hasher cfg asks for.
func newHasher(cfg Config) *models.Hasher {
	return models.NewHasher(models.HashConfig{
		Algorithm:  cfg.PasswordHash,
		BcryptCost: cfg.BcryptCost,
		Queue:      cfg.HashQueue,
	})
}

// accountRules is the account service's configuration from cfg, the same
// for the server and latchkey user …; cacheSize is models.Config.CacheSize.
func accountRules(cfg Config, now func() time.Time, cacheSize int) models.Config {
	return models.Config{
		TokenTTL:            cfg.TokenTTL,
		TokenMaxTTL:         cfg.TokenMaxTTL,
		ResetTTL:            cfg.ResetTTL,
		VerifyTTL:           cfg.VerifyTTL,
		RecentAuth:          time.Duration(cfg.ReauthAfter) * time.Second,
		BaseURL:             cfg.BaseURL, // passkeys: RP ID its host, origin its origin
		AllowEternalTokens:  cfg.AllowEternalTokens,
		CompatEmailNotFound: cfg.CompatEmailNotFound,
		Password: models.Policy{
			MinLength:      cfg.PasswordMin,
			NoBlocklist:    !cfg.PasswordBlocklist,
			NoContextCheck: !cfg.PasswordContext,
		},
		Now:       now,
		CacheSize: cacheSize,
		SecretKey: []byte(cfg.SecretKey),
		// SECURITY S5; 0 is off.
		IdleTimeout: time.Duration(cfg.SessionIdleTimeout) * time.Second,
	}
}

// authCacheSize is models.Config.CacheSize for LATCHKEY_AUTH_CACHE, where 0
// means off (models takes a negative size for that, and 0 for its default).
func authCacheSize(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// pruneTokens deletes expired tokens in the background in batches of 500.
// After a full batch it pauses nine times as long as the batch took, so a
// backlog (a million expired rows after a long downtime, or the load test's
// growth database) is worked off with about a tenth of one core and of the
// writer, instead of starving logins and reads for minutes.
func (a *App) pruneTokens(ctx context.Context) {
	const batch = 500
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		for {
			start := time.Now()
			n, err := a.Users.PruneExpired(ctx, batch)
			if err != nil {
				if ctx.Err() == nil {
					a.Log.Error("pruning expired tokens", "err", err)
				}
				break
			}
			if n < batch {
				break
			}
			pause := time.NewTimer(max(10*time.Millisecond, 9*time.Since(start)))
			select {
			case <-ctx.Done():
				pause.Stop()
				return
			case <-pause.C:
			}
		}
		if _, err := a.Users.PruneFlows(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("pruning expired sign-in flows", "err", err)
		}
		if _, err := a.Users.PrunePasskeyCeremonies(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("pruning expired passkey ceremonies", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Serve accepts connections on ln until ctx ends, then stops taking new
// requests, lets in-flight ones finish (up to ShutdownTimeout), stops the
// background work and closes the database.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	return a.ServeMetrics(ctx, ln, nil)
}

// ServeMetrics is Serve with a.Metrics on a listener of its own, metricsLn
// (nil: none), which stops with the app: /metrics is never on ln.
func (a *App) ServeMetrics(ctx context.Context, ln, metricsLn net.Listener) error {
	stopMetrics := a.serveMetrics(metricsLn)
	srv := &http.Server{
		Handler:           a.Echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, fn := range a.background {
		wg.Add(1)
		go func() { defer wg.Done(); fn(bgCtx) }()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		a.Log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
		serveErr = srv.Shutdown(sctx)
		cancel()
		if serveErr == nil {
			serveErr = <-errc
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	stopMetrics()
	stopBG()
	wg.Wait()
	if err := a.DB.Close(); err != nil {
		serveErr = errors.Join(serveErr, fmt.Errorf("closing database: %w", err))
	}
	return serveErr
}

// serveMetrics serves a.Metrics on ln in the background until the function
// it returns is called; with no ln, or no metrics, it does nothing.
func (a *App) serveMetrics(ln net.Listener) (stop func()) {
	if ln == nil || a.Metrics == nil {
		return func() {}
	}
	srv := &http.Server{
		Handler:           a.Metrics.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("serving metrics", "err", err)
		}
	}()
	return func() {
		// Scrapes are short; one still running gets a moment to finish.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-done
	}
}

// Run is the whole program: args pick a command (commands.go; serve, the
// default, when args[0] is not a command name) and its flags, environ
// (os.Environ's "KEY=value" list) the LATCHKEY_* variables; logs and help
// go to stdout. serve runs until ctx is cancelled (SIGINT/SIGTERM in main).
// The environment is a list rather than a lookup because some settings are
// found by their names (LATCHKEY_OIDC_<ID>_ISSUER for every <ID>).
// Its standard input is empty: main calls RunInput.
func Run(ctx context.Context, args []string, environ []string, stdout io.Writer) error {
	return RunInput(ctx, args, environ, strings.NewReader(""), stdout)
}

// RunInput is Run with a standard input, which latchkey user create
// --password-stdin reads.
func RunInput(ctx context.Context, args []string, environ []string, stdin io.Reader, stdout io.Writer) error {
	return dispatch(ctx, commands(time.Now(), nil, stdin), args, environ, stdout)
}

// RunReady is Run with a readiness callback: ready, when not nil, receives
// the listening address once requests can be served (tests use it with
// LATCHKEY_ADDR=127.0.0.1:0).
func RunReady(ctx context.Context, args []string, environ []string, stdout io.Writer, ready func(addr string)) error {
	return dispatch(ctx, commands(time.Now(), ready, strings.NewReader("")), args, environ, stdout)
}

// Environ turns a map of variables into the list Run takes, in key order.
func Environ(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		out = append(out, k+"="+vars[k])
	}
	return out
}

// lookup is the getenv of an environ list; a later entry wins, as in the
// process environment.
func lookup(environ []string) func(string) string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return func(k string) string { return vars[k] }
}

// serve is the serve command: log to stdout, listen, serve until ctx ends.
// start is when the program started, for the start-up time in the log.
func serve(ctx context.Context, cfg Config, stdout io.Writer, start time.Time, ready func(addr string)) error {
	out := newLogBuffer(stdout, logFlushEvery)
	defer out.Close()
	log := NewLogger(cfg.LogFormat, out)
	app, err := New(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		app.DB.Close()
		return fmt.Errorf("listen on %s (LATCHKEY_ADDR): %w", cfg.Addr, err)
	}
	var metricsLn net.Listener
	if app.Metrics != nil {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			app.DB.Close()
			return fmt.Errorf("listen on %s (LATCHKEY_METRICS_ADDR): %w", cfg.MetricsAddr, err)
		}
	}
	log.Info("latchkey listening", "addr", "http://"+ln.Addr().String(), "base_url", cfg.BaseURL,
		"db", models.RedactDSN(cfg.DB), "smtp", fmt.Sprintf("%s:%d", cfg.SMTP.Host, cfg.SMTP.Port), "startup", time.Since(start).Round(time.Microsecond))
	if metricsLn != nil {
		log.Info("metrics listening", "addr", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	return app.ServeMetrics(ctx, ln, metricsLn)
}

// NewLogger returns a text or JSON slog logger writing to w.
func NewLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// The garbage collector's settings, unless the operator sets GOGC or
// GOMEMLIMIT. The live heap is small (the auth cache and connection buffers,
// 1-2 MiB), so Go's default GOGC=100 collects every 3 MiB or so of
// allocation: dozens of times a second at 20k authenticated reads/s, about
// a fifth of the server CPU of each request (BENCHMARKS.md). 200 removes
// most of that and keeps the heap goal at 8 MiB: 300 saved another
// microsecond a request but pushed the peak RSS past the 40 MiB budget with
// a million users. The soft limit sits above the largest live heap a full
// default auth cache makes (about 70 MiB), so a big cache makes the
// collector tighten before the process balloons, never thrash.
//
// A batch command (Command.Batch) gets no soft limit: its live heap is
// the data it holds, not a cache, so a limit below it makes the collector
// run without pause. latchkey import lb3 of 1M users + 2M tokens holds
// about 250 MiB of plan (a few numbers per user): under the 96 MiB limit
// it spent two thirds of its 104 s collecting, without it 44 s in all.
const (
	gcPercent   = 200
	memoryLimit = 96 << 20
)

// tuneGC applies gcPercent and, unless batch, memoryLimit where the
// environment does not set them. It changes process-wide runtime settings,
// so only the program's entry point (dispatch, for every command) calls it,
// never New.
func tuneGC(getenv func(string) string, batch bool) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" && !batch {
		debug.SetMemoryLimit(memoryLimit)
	}
}

// logFlushEvery bounds how late a log line reaches stdout.
const logFlushEvery = 100 * time.Millisecond

// logBuffer batches log output. At tens of thousands of requests a second,
// one write(2) per access-log line costs more than formatting the line
// (measured in BENCHMARKS.md), so lines collect in a 32 KiB buffer that is
// written out when full, every logFlushEvery, and on Close. slog hands over
// one whole line per Write, so lines never interleave. A crash loses at most
// the last logFlushEvery of log.
type logBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 32<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				b.flush()
			}
		}
	}()
	return b
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.w.Flush()
}

// Close stops the timer and writes out what is left.
func (b *logBuffer) Close() {
	close(b.stop)
	<-b.done
	b.flush()
}
