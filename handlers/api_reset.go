package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// registerAPIReset adds LoopBack's reset and verification remote methods to
// the /api/users group (paths are already lower-cased by a Pre middleware).
func (h *Handler) registerAPIReset(g *echo.Group) {
	g.POST("/reset", h.handleAPIReset)
	g.POST("/reset-password", h.handleAPIResetPassword)
	g.POST("/:id/verify", h.handleAPIVerify)
	g.GET("/confirm", h.handleAPIConfirm)
}

// handleAPIReset is POST /api/users/reset (User.resetPassword). Every
// well-formed email gets the same empty 204, known or not, and whether the
// mail server is up or not: the mail goes through the outbox. With
// CompatEmailNotFound an unknown email is LoopBack's 404 EMAIL_NOT_FOUND.
func (h *Handler) handleAPIReset(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	// LoopBack: typeof email !== 'string' -> 400 EMAIL_REQUIRED (also for a
	// missing body). We also refuse the empty string with it.
	email, present, ok := body.String("email")
	if !present || !ok || email == "" {
		return models.ErrEmailRequired
	}
	// LoopBack validates a password sent along (options.password) with the
	// password rules: {"email":..., "password": <80 chars>} is 422
	// PASSWORD_TOO_LONG. Only a non-empty string is checked, as there, and
	// only its length: it is never stored, so the common-password and
	// context rules (which LoopBack never had) would only break clients.
	if pw, present, ok := body.String("password"); present && ok && pw != "" {
		if err := h.Users.CheckPasswordLength(pw); err != nil {
			return err
		}
	}
	if err := h.Users.RequestPasswordReset(c.Request().Context(), email, clientMeta(c)); err != nil {
		return err
	}
	return noContent(c)
}

// handleAPIResetPassword is POST /api/users/reset-password
// (User.setPassword). Only a live reset token (scope reset-password, from
// any LoopBack transport: ?access_token=, X-Access-Token, Authorization) is
// accepted; a session token, a used, superseded or expired reset token, or
// none is 401 AUTHORIZATION_REQUIRED — checked before the arguments, as the
// ACL check comes before the method.
func (h *Handler) handleAPIResetPassword(c echo.Context) error {
	ctx := c.Request().Context()
	raw := TokenFromRequest(c.Request())
	if raw == "" {
		return models.ErrAuthRequired
	}
	sess, err := h.Users.Authenticate(ctx, raw, models.ScopeReset)
	if err != nil {
		return err
	}
	if sess == nil {
		return models.ErrAuthRequired
	}
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	newPw, _, err := stringArg(body, "newPassword")
	if err != nil {
		return err
	}
	if newPw == "" {
		return models.RequiredArg("newPassword")
	}
	if err := h.Users.ResetPassword(ctx, raw, newPw, clientMeta(c)); err != nil {
		return err
	}
	return noContent(c)
}

// handleAPIVerify is POST /api/users/:id/verify (User.prototype.verify).
// Unlike LoopBack (anyone could mail any user), only the owner may ask: a
// session token whose user is :id, else 401. The confirm link is mailed
// through the outbox; its redirect is the "address verified" page (the mail
// subscriber fills in the default for an empty redirect).
func (h *Handler) handleAPIVerify(c echo.Context) error {
	_, id, err := h.ownerID(c)
	if err != nil {
		return err
	}
	if err := h.Users.RequestVerification(c.Request().Context(), id, "", clientMeta(c)); err != nil {
		return err
	}
	return noContent(c)
}

// handleAPIConfirm is GET /api/users/confirm?uid&token[&redirect]
// (User.confirm): 204, or 302 to redirect. uid may be an ObjectId alias
// (userIDParam).
//
// redirect is accepted only as a path on this site ("/x", not "//x", no
// backslash or control character) or a URL under the configured base URL.
// Anything else is 400 INVALID_REDIRECT, checked before the token is looked
// at, so a tampered link does not use up the token: we chose a clear error
// over silently answering 204, because a client that sends a redirect
// expects the browser to land somewhere.
func (h *Handler) handleAPIConfirm(c echo.Context) error {
	q := c.Request().URL.Query()
	uid, token, redirect := q.Get("uid"), q.Get("token"), q.Get("redirect")
	if uid == "" {
		return models.RequiredArg("uid")
	}
	if token == "" {
		return models.RequiredArg("token")
	}
	if !h.safeRedirect(redirect) {
		return &APIError{Status: http.StatusBadRequest, Name: "Error", Code: "INVALID_REDIRECT",
			Message: "redirect must be a path on this site or a URL under " + h.BaseURL}
	}
	// The link LoopBack mailed a MongoDB user names the ObjectId.
	uid, err := h.userIDParam(c.Request().Context(), uid)
	if err != nil {
		return err
	}
	_, err = h.Users.ConfirmEmail(c.Request().Context(), uid, token, clientMeta(c))
	if me, ok := models.AsError(err); ok && me.Code == models.ErrInvalidToken.Code {
		// LoopBack's message names the token it got.
		return &models.Error{Kind: me.Kind, Code: me.Code, Message: "Invalid token: " + truncateRunes(token, 128)}
	}
	if err != nil {
		return err
	}
	if redirect == "" {
		return noContent(c)
	}
	return c.Redirect(http.StatusFound, redirect)
}

// safeRedirect reports whether confirm may send the browser to r.
func (h *Handler) safeRedirect(r string) bool {
	if r == "" {
		return true
	}
	if strings.ContainsRune(r, '\\') || strings.ContainsFunc(r, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return false
	}
	if strings.HasPrefix(r, "/") {
		return !strings.HasPrefix(r, "//")
	}
	base := strings.TrimRight(h.BaseURL, "/")
	if base == "" || !strings.HasPrefix(r, base) {
		return false
	}
	// The base must end where a path, query or fragment starts, so
	// http://localhost:3000.evil.test does not pass for http://localhost:3000.
	rest := r[len(base):]
	return rest == "" || rest[0] == '/' || rest[0] == '?' || rest[0] == '#'
}

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
