package handlers

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/labstack/echo/v4"
)

// maxRequestID bounds an id taken from a proxy: long enough for a UUID, a
// ULID or nginx's 32 hex digits, short enough for a log line and a column.
const maxRequestID = 64

// setRequestID gives the request an id, sent back as X-Request-Id on every
// response, written into each log line of the request and into its audit
// rows, and shown on error pages as the "reference" a user can quote. An id
// sent by a trusted proxy (LATCHKEY_TRUSTED_PROXIES) is kept, so the proxy's
// log and ours share it; from anyone else, or malformed, it is replaced:
// a client must not choose what lands in our logs.
//
// The response header is where the id lives for the rest of the request
// (requestID reads it back): no context value, no allocation beyond the id.
func (h *Handler) setRequestID(c echo.Context) {
	r := c.Request()
	id := ""
	if v := r.Header[echo.HeaderXRequestID]; len(v) > 0 && validRequestID(v[0]) && h.fromTrustedProxy(r) {
		id = v[0]
	}
	if id == "" {
		id = rand.Text() // 128 random bits, 26 characters of base32
	}
	c.Response().Header()[echo.HeaderXRequestID] = []string{id}
}

// validRequestID accepts 1 to 64 characters of [A-Za-z0-9._-]: nothing that
// could split a log line, fake a field or carry markup.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestID {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// fromTrustedProxy reports whether the TCP peer is one of the configured
// proxies (the same list that makes X-Forwarded-For believed).
func (h *Handler) fromTrustedProxy(r *http.Request) bool {
	if len(h.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range h.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// requestID is the id setRequestID gave this request ("" outside one).
func requestID(c echo.Context) string {
	if v := c.Response().Header()[echo.HeaderXRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// reqLog is the handler's logger with this request's id on every line:
// what an error logged during a request goes through.
func (h *Handler) reqLog(c echo.Context) *slog.Logger {
	return h.Log.With(slog.String("request_id", requestID(c)))
}
