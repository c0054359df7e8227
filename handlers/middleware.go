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

// accessLog writes one line per request. Secrets never appear: the query's
// access_token (LoopBack clients send it) is redacted and bodies are not logged.
func (h *Handler) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
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
			slog.Duration("duration", time.Since(start)),
			slog.String("ip", c.RealIP()),
			slog.String("request_id", requestID(c)),
		)
		return nil
	}
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
