package handlers

import (
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

	// ctxSession is the echo.Context key of the page request's *models.Session.
	ctxSession = "latchkey.session"
	// ctxCSRF is where Echo's CSRF middleware leaves the form token.
	ctxCSRF = "csrf"

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

// rotateCSRF drops the CSRF cookie, also the one Echo's middleware set for
// this response, so the next page gets a fresh token: a token known before
// login (or planted) is useless after it.
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
