package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// The reset pages: the seed's /request-password-reset and /reset-password.

// resetRequested is the one answer to a reset request, whether or not the
// address has an account and whether or not the request was throttled.
func resetRequested() views.Response {
	return views.Response{
		Title:              "Password reset requested",
		Content:            "Check your email for further instructions.",
		RedirectTo:         "/login",
		RedirectToLinkText: "Log in",
		Tone:               "mail",
	}
}

// resetLinkInvalid explains a link that cannot be used any more.
func resetLinkInvalid() views.Response {
	return views.Response{
		Title: "This reset link can't be used",
		Content: "It has expired, was already used, or a newer link was sent since. " +
			"A link works once and for a short time. Ask for a new one and use the latest email.",
		RedirectTo:         "/request-password-reset",
		RedirectToLinkText: "Request a new link",
		Tone:               "error",
	}
}

// handleForgotPage is GET /request-password-reset.
func (p *pages) handleForgotPage(c echo.Context) error {
	return render(c, http.StatusOK, views.ForgotPasswordPage(p.page(c, "Reset your password"), views.ForgotForm{}))
}

// handleForgotSubmit is POST /request-password-reset (field email). The
// answer is the same page for every address: it does not tell who has an
// account. The models write the token and its email in one transaction;
// the outbox sends it.
func (p *pages) handleForgotSubmit(c echo.Context) error {
	email := strings.TrimSpace(c.FormValue("email"))
	if email == "" {
		return render(c, http.StatusUnprocessableEntity, views.ForgotPasswordPage(p.page(c, "Reset your password"),
			views.ForgotForm{Errors: views.FieldErrors{"email": "Enter your email address."}}))
	}
	err := p.Users.RequestPasswordReset(c.Request().Context(), email, clientMeta(c))
	if me, ok := models.AsError(err); ok && (errors.Is(err, models.ErrEmailNotFound) || me.Kind == models.KindTooMany) {
		err = nil // the same answer as for anyone else
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ResponsePage(p.page(c, "Password reset requested"), resetRequested()))
}

// resetCookieName: the reset cookie is scoped to /reset-password, so it can
// carry __Secure- but not __Host-.
func (p *pages) resetCookieName() string {
	if p.SecureCookies {
		return "__Secure-" + resetCookie
	}
	return resetCookie
}

func (p *pages) setResetCookie(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{Name: p.resetCookieName(), Value: token, Path: resetPath,
		MaxAge: int(p.Users.ResetTTL()), HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (p *pages) clearResetCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: p.resetCookieName(), Value: "", Path: resetPath, MaxAge: -1,
		Expires: time.Unix(0, 0), HttpOnly: true, Secure: p.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (p *pages) resetToken(c echo.Context) string {
	if ck, err := c.Cookie(p.resetCookieName()); err == nil {
		return ck.Value
	}
	return ""
}

// handleResetPage is GET /reset-password, the link in the email. Opening
// it never uses the token up (mail scanners open links). The token leaves
// the URL at once: it moves into a cookie scoped to this path and the
// browser is sent to /reset-password without it, so it cannot leak through
// history, Referer or logs; the form then carries it in a hidden field.
func (p *pages) handleResetPage(c echo.Context) error {
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	ctx := c.Request().Context()
	if c.QueryParams().Has("access_token") {
		raw := c.QueryParam("access_token")
		if _, err := p.Users.CheckResetToken(ctx, raw); err != nil {
			return p.resetInvalid(c, err)
		}
		p.setResetCookie(c, raw)
		return seeOther(c, resetPath)
	}
	raw := p.resetToken(c)
	if raw == "" {
		return p.resetInvalid(c, models.ErrInvalidToken)
	}
	u, err := p.Users.CheckResetToken(ctx, raw)
	if err != nil {
		return p.resetInvalid(c, err)
	}
	return render(c, http.StatusOK, views.ResetPasswordPage(p.page(c, "Choose a new password"),
		views.ResetForm{Token: raw, Email: u.Email, MinPassword: p.minPassword}))
}

// resetInvalid answers for a token that cannot be used: a page that says so
// and offers a new request. Other errors go to the error handler.
func (p *pages) resetInvalid(c echo.Context, err error) error {
	if !errors.Is(err, models.ErrInvalidToken) && !errors.Is(err, models.ErrAuthRequired) {
		return err
	}
	p.clearResetCookie(c)
	return render(c, http.StatusBadRequest, views.ResponsePage(p.page(c, "Reset link expired"), resetLinkInvalid()))
}

// handleResetSubmit is POST /reset-password (password, confirmation and the
// token from the hidden field). It sets the password, uses the token up and
// ends every session of the user. No automatic login: the person logs in
// with the new password.
func (p *pages) handleResetSubmit(c echo.Context) error {
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	ctx, meta := c.Request().Context(), clientMeta(c)
	raw := c.FormValue("access_token")
	if raw == "" {
		raw = p.resetToken(c)
	}
	u, err := p.Users.CheckResetToken(ctx, raw)
	if err != nil {
		return p.resetInvalid(c, err)
	}
	password, confirmation := c.FormValue("password"), c.FormValue("confirmation")
	form := views.ResetForm{Token: raw, Email: u.Email, Errors: views.FieldErrors{}, MinPassword: p.minPassword}
	if password == "" {
		form.Errors["password"] = "Enter a new password."
	} else if err := p.Users.CheckPasswordPolicy(password, u.PasswordContext()); err != nil {
		me, ok := models.AsError(err)
		if !ok {
			return err
		}
		form.Errors["password"] = me.Message
	}
	if confirmation == "" {
		form.Errors["confirmation"] = "Enter the new password again."
	} else if form.Errors["password"] == "" && confirmation != password {
		form.Errors["confirmation"] = "The two passwords are not the same. Type the new password twice."
	}
	if len(form.Errors) > 0 {
		return render(c, http.StatusUnprocessableEntity, views.ResetPasswordPage(p.page(c, "Choose a new password"), form))
	}

	if err := p.Users.ResetPassword(ctx, raw, password, meta); err != nil {
		if resp, status, ok := busyResponse(c, err); ok {
			return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
		}
		if me, ok := models.AsError(err); ok && me.Kind == models.KindUnprocessable {
			form.Errors["password"] = me.Message
			return render(c, http.StatusUnprocessableEntity, views.ResetPasswordPage(p.page(c, "Choose a new password"), form))
		}
		return p.resetInvalid(c, err)
	}
	p.clearResetCookie(c)
	// The reset ended every session of the user, this browser's included.
	if s := sessionOf(c); s != nil && s.User.ID == u.ID {
		p.endSession(c)
	}
	return render(c, http.StatusOK, views.ResponsePage(p.page(c, "Password reset success"), views.Response{
		Title:              "Password reset success",
		Content:            "Your password has been changed and you were logged out everywhere. Log in with your new password.",
		RedirectTo:         "/login",
		RedirectToLinkText: "Log in",
		Tone:               "ok",
	}))
}
