package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// lowerAPIPath makes /api paths case-insensitive, as Express routing was
// (/api/Users/login == /api/users/login). Ids are numbers or ObjectIds
// (hex, any case: userIDParam), so nothing under /api is case-significant.
func lowerAPIPath(c echo.Context) {
	r := c.Request()
	p := r.URL.Path
	if len(p) >= 4 && strings.EqualFold(p[:4], "/api") && (len(p) == 4 || p[4] == '/') {
		if lp := strings.ToLower(p); lp != p {
			r.URL.Path = lp
			r.URL.RawPath = ""
		}
	}
}

// prelude runs first on every request, before routing, so that every
// answer (a 404 included) carries the request id, no answer to HEAD has a
// body, an /api answer may be gzipped and /api paths route in any case.
// One middleware rather than four: Echo v4 wraps each global middleware
// around the handler anew for every request, one allocation each.
func (h *Handler) prelude(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h.setRequestID(c)
		dropHeadBody(c)
		lowerAPIPath(c)
		h.offerGzip(c)
		return next(c)
	}
}

// The values of the headers every response carries. Each is its own
// one-element slice with no spare capacity, shared by all responses: an
// Add to the same header appends into a new array, never into this one.
var (
	hdrNosniff = []string{"nosniff"}
	hdrDeny    = []string{"DENY"}
	hdrSameOrg = []string{"same-origin"}
	hdrNoStore = []string{"no-store"}
)

// secureHeaders sets the headers every response carries. The keys are
// already canonical, so they are assigned directly instead of through
// Header.Set, which allocates a new one-element slice per header per
// request (four allocations of each authenticated GET; BENCHMARKS.md).
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrSameOrg
		if isAPI(c.Request().URL.Path) {
			h["Cache-Control"] = hdrNoStore
		}
		return next(c)
	}
}

// recoverPanics turns a panic into a 500 through the error handler, logging
// the stack.
func (h *Handler) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				h.reqLog(c).Error("panic", "method", c.Request().Method, "path", c.Request().URL.Path,
					"panic", fmt.Sprint(r), "stack", string(buf))
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// finish is the outermost middleware after routing: once the handler
// and the error handler have answered, it tells the Observer (metrics) and
// writes the access-log line. One middleware for both, as prelude is one
// for four: each global middleware costs an allocation per request.
func (h *Handler) finish(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)
		if h.Observer != nil {
			h.Observer.ObserveRequest(h.routeOf(c), methodLabel(c.Request().Method), c.Response().Status, elapsed)
		}
		if h.AccessLog {
			h.logRequest(c, elapsed)
		}
		return nil
	}
}

// UnmatchedRoute is the route an Observer hears for a request that no
// route served (Echo's own 404 or 405).
const UnmatchedRoute = "unmatched"

// routeOf is the pattern of the route that served c (/api/users/:id), never
// the path asked for: an Observer's label must not grow with the ids and
// paths clients make up. Echo names some pattern even for a request no
// route matched (the nearest node of its tree), so only registered
// patterns count as themselves.
func (h *Handler) routeOf(c echo.Context) string {
	if p := c.Path(); h.routes[p] {
		return p
	}
	return UnmatchedRoute
}

// methodLabel is the request method for an Observer: the standard ones as
// they are, anything else OTHER, so a client cannot make new labels.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// logRequest writes the access-log line of c. Secrets never appear: the
// query's access_token (LoopBack clients send it) is redacted and bodies
// are not logged.
func (h *Handler) logRequest(c echo.Context, elapsed time.Duration) {
	r := c.Request()
	status := c.Response().Status
	level := slog.LevelInfo
	switch {
	case status >= 500 && c.Response().Header().Get("Retry-After") != "":
		// A deliberate 503 (hashing queue full): expected under a storm,
		// not an error to page anyone about.
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	}
	h.Log.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("query", RedactQuery(r.URL.RawQuery)),
		slog.Int("status", status),
		slog.Int64("bytes", c.Response().Size),
		slog.Duration("duration", elapsed),
		slog.String("ip", c.RealIP()),
		slog.String("request_id", requestID(c)),
	)
}

// secretParams are query parameters whose values never reach a log: tokens
// and passwords, and a provider's callback (code and state: an
// authorization code and the flow's handle).
var secretParams = map[string]bool{"access_token": true, "token": true, "password": true, "code": true, "state": true}

// RedactQuery replaces the values of secret query parameters with [REDACTED].
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	// Split on ';' too: Go's parser ignores such pairs, but they still reach the log.
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range parts {
		name, _, found := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if found && secretParams[strings.ToLower(name)] {
			k, _, _ := strings.Cut(p, "=")
			parts[i] = k + "=[REDACTED]"
		}
	}
	return strings.Join(parts, "&")
}
