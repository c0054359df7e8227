package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// Cookie names. With an https base URL they get the __Host- prefix (Secure,
// Path=/, no Domain: a sibling subdomain cannot plant or overwrite them).
// The reset cookie is scoped to /reset-password, which __Host- forbids, so
// it takes __Secure-.
const (
	sessionCookie = "latchkey_session"
	csrfCookie    = "latchkey_csrf"
	flashCookie   = "latchkey_flash"
	resetCookie   = "latchkey_reset"
	resetPath     = "/reset-password"
	// deviceCookie remembers the accounts this browser signed in to
	// (models.Users.DeviceCookie, SECURITY N1). It outlives sessions: a
	// logout keeps it.
	deviceCookie = "latchkey_device"

	// ctxSession is the echo.Context key of the page request's *models.Session.
	ctxSession = "latchkey.session"
	// ctxCSRF is where the CSRF guard leaves the form token of this request.
	ctxCSRF = "csrf"
	// csrfMaxAge is how long the CSRF cookie lives after the last page.
	csrfMaxAge = 12 * 60 * 60

	// maxCookieAge is what browsers accept at most (400 days); an eternal
	// token's cookie gets that.
	maxCookieAge = 400 * 24 * 60 * 60
)

// cookieName adds the __Host- prefix when cookies are Secure.
func (h *Handler) cookieName(base string) string {
	if h.SecureCookies {
		return "__Host-" + base
	}
	return base
}

// newCookie is a cookie with the flags every Latchkey cookie has: HttpOnly,
// SameSite=Lax, Path=/, Secure behind https, no Domain.
func (h *Handler) newCookie(base, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: h.cookieName(base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// expireCookie tells the browser to drop a cookie.
func (h *Handler) expireCookie(c echo.Context, base string) {
	ck := h.newCookie(base, "", -1)
	ck.Expires = time.Unix(0, 0)
	c.SetCookie(ck)
}

// setSessionCookie puts a new access token in the session cookie; the
// cookie lives as long as the token.
func (h *Handler) setSessionCookie(c echo.Context, tok *models.AccessToken) {
	age := int(tok.TTL)
	if tok.TTL < 0 || tok.TTL > maxCookieAge {
		age = maxCookieAge
	}
	c.SetCookie(h.newCookie(sessionCookie, tok.ID, age))
}

// startSession signs this browser in with tok. Every sign-in of the pages
// (a password, a second step, a provider, a sign-up) goes through it: the
// session the browser had before ends (one browser, one session), the
// cookie holds the new token, the CSRF token is replaced (SECURITY L6,
// L6b), and the device cookie gains this account (N1).
func (h *Handler) startSession(c echo.Context, tok *models.AccessToken) {
	if old := sessionOf(c); old != nil {
		if _, err := h.Users.Logout(c.Request().Context(), old, clientMeta(c)); err != nil {
			h.reqLog(c).Warn("ending the previous session at login", "err", err)
		}
	}
	h.setSessionCookie(c, tok)
	h.rotateCSRF(c)
	if v, err := h.Users.DeviceCookie(c.Request().Context(), tok.UserID, deviceCookieValue(c)); err != nil {
		h.reqLog(c).Warn("making the device cookie", "err", err)
	} else {
		c.SetCookie(h.newCookie(deviceCookie, v, int(models.DeviceCookieTTL/time.Second)))
	}
}

// endSession is the browser's side of a session that ended (a logout, a
// revoked own session, a reset, a deleted account): the cookie goes, the
// request is signed out from here on, and the CSRF token is replaced.
func (h *Handler) endSession(c echo.Context) {
	c.Set(ctxSession, nil)
	h.expireCookie(c, sessionCookie)
	h.rotateCSRF(c)
}

// rotateCSRF drops the CSRF cookie, also the one the guard set for this
// response, so the next page gets a fresh token: a token known before
// login (or planted) is useless after it. The form token is bound to the
// session besides (csrfToken), so even the old cookie sent again with the
// old token is refused once the session changed.
func (h *Handler) rotateCSRF(c echo.Context) {
	hdr := c.Response().Header()
	prefix := h.cookieName(csrfCookie) + "="
	kept := hdr.Values(echo.HeaderSetCookie)[:0:0]
	for _, v := range hdr.Values(echo.HeaderSetCookie) {
		if len(v) < len(prefix) || v[:len(prefix)] != prefix {
			kept = append(kept, v)
		}
	}
	hdr.Del(echo.HeaderSetCookie)
	for _, v := range kept {
		hdr.Add(echo.HeaderSetCookie, v)
	}
	h.expireCookie(c, csrfCookie)
}

// csrfToken is the form token of a browser whose CSRF cookie holds nonce:
// the nonce itself when signed out (double submit), and when signed in an
// HMAC of the session's token digest keyed by the nonce, so the token of a
// page changes with the session and one from before a login or a logout
// never matches after it, whatever cookie comes with it. Nobody without
// the session token can compute it.
func csrfToken(nonce string, s *models.Session) string {
	if s == nil {
		return nonce
	}
	m := hmac.New(sha256.New, []byte(nonce))
	m.Write([]byte("latchkey csrf\x00"))
	m.Write(s.Token.Digest[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfGuard protects the page routes from cross-site requests (SECURITY
// C1, C3, L6b). It runs after loadSession. A state change (any method but
// GET, HEAD, OPTIONS, TRACE):
//   - with Sec-Fetch-Site: cross-site is refused;
//   - with a _csrf form field must carry this browser's token (csrfToken):
//     a stale token is refused even from a same-origin browser;
//   - without one is let through only when the browser says it is
//     same-origin (or none: typed in the address bar), as Echo's Fetch
//     Metadata check does; otherwise it is refused.
//
// Each page gets the token in the context (ctxCSRF) for its forms, and the
// cookie's life is renewed. A refusal is 403, the error page explains.
func (h *Handler) csrfGuard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		nonce := ""
		if ck, err := c.Cookie(h.cookieName(csrfCookie)); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 128 {
			nonce = ck.Value
		}
		if nonce == "" {
			nonce = randomString(32)
		}
		want := csrfToken(nonce, sessionOf(c))
		c.SetCookie(h.newCookie(csrfCookie, nonce, csrfMaxAge))
		c.Set(ctxCSRF, want)
		c.Response().Header().Add(echo.HeaderVary, echo.HeaderCookie)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		site := c.Request().Header.Get(echo.HeaderSecFetchSite)
		if site == "cross-site" {
			return echo.NewHTTPError(http.StatusForbidden, "cross-site request blocked")
		}
		got := c.FormValue("_csrf")
		if got == "" && (site == "same-origin" || site == "none") {
			return next(c)
		}
		if got == "" || !hmac.Equal([]byte(got), []byte(want)) {
			return echo.NewHTTPError(http.StatusForbidden, "invalid csrf token")
		}
		return next(c)
	}
}

// loadSession resolves the session cookie of a page request to a session
// (Users.Authenticate) and keeps it in the context. A cookie that names no
// live session is dropped. Only page routes use this: cookies never
// authenticate the JSON API.
func (h *Handler) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(h.cookieName(sessionCookie))
		if err != nil || ck.Value == "" {
			return next(c)
		}
		sess, err := h.Users.Authenticate(c.Request().Context(), ck.Value, models.ScopeSession)
		if err != nil {
			return err
		}
		if sess == nil {
			h.expireCookie(c, sessionCookie)
			return next(c)
		}
		c.Set(ctxSession, sess)
		return next(c)
	}
}

// sessionOf is the page request's session, or nil when signed out.
func sessionOf(c echo.Context) *models.Session {
	s, _ := c.Get(ctxSession).(*models.Session)
	return s
}

// flashText is the one-time notice a redirect can leave for the next page.
// The cookie holds only the key, so no text can be injected through it.
func flashText(key string) string {
	switch key {
	case "logged-out":
		return "You have logged out."
	case "passkey-added":
		return "The passkey is added: you can sign in with it now."
	case "passkey-removed":
		return "The passkey is removed from your account."
	case "two-step-off":
		return "Two-step verification is off. Your password alone signs you in now."
	case "linked":
		return "The new way to sign in is linked to your account."
	case "unlinked":
		return "That way to sign in is removed from your account."
	case "reauthenticated":
		return "Thanks: you can make the change now."
	case "link-expired":
		return "You are logged in, but linking took too long: add the sign-in method from your account page."
	case "password-changed":
		return "Your password is changed. Your other sessions were logged out."
	case "verify-sent":
		return "We sent a confirmation link to your address. If you asked a moment ago, the link sent then still works."
	case "already-verified":
		return "Your email address is already verified."
	case "set-password-sent":
		return "We sent a link to your address: open it to choose your password."
	case "email-change-sent":
		return "We sent a confirmation link to the new address. Your address changes when you open it."
	case "email-change-withdrawn":
		return "The change of email address is cancelled."
	case "email-changed":
		return "Your email address is changed: log in with the new one from now on."
	case "account-deleted":
		return "Your account is deleted. Goodbye!"
	case "admin-disabled":
		return "The account is disabled: its sessions ended, and its logins fail as with a wrong password."
	case "admin-enabled":
		return "The account is enabled: it can sign in again."
	case "admin-was-enabled":
		return "The account was enabled already."
	case "admin-sessions-revoked":
		return "Every session of the account is logged out."
	case "admin-reset-sent":
		return "A reset link is on its way to the account's address."
	case "admin-factors-reset":
		return "Two-step verification is reset: the account signs in with its password alone, and its sessions ended."
	case "admin-granted":
		return "The account is an admin now."
	case "admin-revoked":
		return "The account is no longer an admin."
	case "admin-deleted":
		return "The account is deleted."
	case "admin-retried":
		return "The message is queued again: the server sends it within seconds."
	case "link-failed":
		return "You are logged in, but that account could not be linked: it may sign in to another account here."
	}
	return ""
}

// setFlash leaves a notice for the next page.
func (h *Handler) setFlash(c echo.Context, key string) {
	c.SetCookie(h.newCookie(flashCookie, key, 60))
}

// takeFlash reads and clears the notice left by the previous response.
func (h *Handler) takeFlash(c echo.Context) string {
	ck, err := c.Cookie(h.cookieName(flashCookie))
	if err != nil {
		return ""
	}
	h.expireCookie(c, flashCookie)
	return flashText(ck.Value)
}
