package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// Passkeys in the browser (SECURITY M5, M6). Each ceremony is two POSTs
// of a page form, both behind the pages' CSRF check (the form's _csrf
// field): static/passkeys.js posts the form to the options route with
// fetch and gets JSON, calls navigator.credentials, then submits the form
// itself, with the answer in its "credential" field, to the finish route,
// which answers as every page form does (303, or a readable page with a
// 4xx). Ceremonies are bound to this browser by the flows' cookie.
//
//	POST /login/passkey/options          signed out → options (conditional=1: for autofill)
//	POST /login/passkey                  credential → signed in, as after a password
//	POST /login/verify/passkey/options   the pending second step → options
//	POST /login/verify/passkey           credential → signed in
//	POST /account/passkeys/options       name, password → options (the password as for every factor)
//	POST /account/passkeys               credential → added, back to return_to
//	POST /account/passkeys/:id/remove    password → removed (a plain form, no script)
func (p *pages) registerPasskeyPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.POST("/login/passkey/options", p.handlePasskeyLoginOptions, mw...)
	e.POST("/login/passkey", p.handlePasskeyLogin, mw...)
	e.POST(secondStepPath+"/passkey/options", p.handlePasskeySecondStepOptions, mw...)
	e.POST(secondStepPath+"/passkey", p.handlePasskeySecondStep, mw...)
	e.POST("/account/passkeys/options", p.handlePasskeyRegisterOptions, mw...)
	e.POST("/account/passkeys", p.handlePasskeyRegister, mw...)
	e.POST("/account/passkeys/:id/remove", p.handlePasskeyRemove, mw...)
}

// passkeyJSONError is an options route's refusal, shown by the script
// beside the button.
func passkeyJSONError(c echo.Context, status int, msg string) error {
	return c.JSON(status, map[string]string{"error": msg})
}

// passkeyOptionsFailure answers an options route's error as JSON.
func (p *pages) passkeyOptionsFailure(c echo.Context, err error) error {
	if me, ok := models.AsError(err); ok && (me.Kind == models.KindTooMany || me.Kind == models.KindBusy) {
		_, status, _ := busyResponse(c, err)
		return passkeyJSONError(c, status, "There were too many attempts. Wait a little and try again.")
	}
	switch {
	case errors.Is(err, models.ErrPasskeysOff):
		return passkeyJSONError(c, http.StatusNotFound, "Passkeys are not available on this site.")
	case errors.Is(err, models.ErrMFAInvalid):
		return passkeyJSONError(c, http.StatusUnauthorized, "The second step has to follow the password within 5 minutes. Log in again.")
	case errors.Is(err, models.ErrNoPasskeys):
		return passkeyJSONError(c, http.StatusUnprocessableEntity, "This account has no passkey.")
	case errors.Is(err, models.ErrWrongPassword):
		return passkeyJSONError(c, http.StatusUnauthorized, "That is not your current password.")
	case errors.Is(err, models.ErrReauthRequired):
		return passkeyJSONError(c, http.StatusForbidden,
			"Adding a passkey needs a recent sign-in. Confirm it's you with your provider, then try again.")
	}
	if me, ok := models.AsError(err); ok && me.Kind == models.KindUnprocessable {
		return passkeyJSONError(c, http.StatusUnprocessableEntity, me.Message+".")
	}
	return err
}

// passkeyFailure is the readable page of a passkey that did not sign in
// or was not added (the cause goes to the log, never to the page).
func (p *pages) passkeyFailure(c echo.Context, err error, back, backText string) error {
	if resp, status, ok := busyResponse(c, err); ok {
		return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	status, title, content := http.StatusUnauthorized, "That passkey was not accepted",
		"It may have been removed from your account, or it belongs to another site. Try again, or use your password."
	switch {
	case errors.Is(err, models.ErrPasskeyCeremony):
		title, content = "That took too long", "A passkey has to answer within 5 minutes, once. Try again."
	case errors.Is(err, models.ErrMFAInvalid):
		title, content, back, backText = "That took too long", "The second step has to follow the password within 5 minutes. Log in again.",
			"/login", "Back to log in"
	case errors.Is(err, models.ErrPasskeysOff):
		status, title, content = http.StatusNotFound, "Passkeys are not available", "This site does not offer passkeys."
	case errors.Is(err, models.ErrPasskeyNotRegistered):
		status, title, content = http.StatusUnprocessableEntity, "The passkey was not added",
			"Your device's answer could not be checked, or this passkey is on your account already. Try again."
	case errors.Is(err, models.ErrTooManyPasskeys):
		status, title, content = http.StatusUnprocessableEntity, "The passkey was not added", models.ErrTooManyPasskeys.Message+"."
	case errors.Is(err, models.ErrPasskeyRefused), errors.Is(err, models.ErrLoginFailed):
	default:
		return err
	}
	p.Log.Info("passkey refused", "path", c.Path(), "err", err)
	return render(c, status, views.ResponsePage(p.page(c, title), views.Response{
		Title: title, Content: content, RedirectTo: back, RedirectToLinkText: backText, Tone: "error"}))
}

// credential is the browser's answer the script put in the form.
func credential(c echo.Context) []byte { return []byte(c.FormValue("credential")) }

// handlePasskeyLoginOptions is POST /login/passkey/options.
func (p *pages) handlePasskeyLoginOptions(c echo.Context) error {
	if sessionOf(c) != nil {
		return passkeyJSONError(c, http.StatusConflict, "You are signed in already.")
	}
	opts, err := p.Users.BeginPasskeyLogin(c.Request().Context(), p.browserBinding(c), c.FormValue("conditional") == "1")
	if err != nil {
		return p.passkeyOptionsFailure(c, err)
	}
	return c.JSONBlob(http.StatusOK, opts)
}

// handlePasskeyLogin is POST /login/passkey (field credential): signed in
// with no password, as after a password.
func (p *pages) handlePasskeyLogin(c echo.Context) error {
	tok, user, err := p.Users.FinishPasskeyLogin(c.Request().Context(), p.cookieValue(c, oauthCookie), credential(c), 0, clientMeta(c))
	if err != nil {
		return p.passkeyFailure(c, err, "/login", "Back to log in")
	}
	return p.signedIn(c, tok, user)
}

// handlePasskeySecondStepOptions is POST /login/verify/passkey/options.
func (p *pages) handlePasskeySecondStepOptions(c echo.Context) error {
	opts, err := p.Users.BeginPasskeySecondStep(c.Request().Context(), p.cookieValue(c, mfaCookie), p.browserBinding(c))
	if err != nil {
		return p.passkeyOptionsFailure(c, err)
	}
	return c.JSONBlob(http.StatusOK, opts)
}

// handlePasskeySecondStep is POST /login/verify/passkey (field
// credential): the passkey as the second step after the password.
func (p *pages) handlePasskeySecondStep(c echo.Context) error {
	tok, user, err := p.Users.CompletePasskeyMFA(c.Request().Context(), p.cookieValue(c, mfaCookie), p.cookieValue(c, oauthCookie),
		credential(c), clientMeta(c))
	if errors.Is(err, models.ErrMFAInvalid) {
		p.expireCookie(c, mfaCookie)
	}
	if err != nil {
		return p.passkeyFailure(c, err, secondStepPath, "Try again")
	}
	p.expireCookie(c, mfaCookie)
	return p.signedIn(c, tok, user)
}

// passkeysReturn is where the passkey forms go back to: their return_to
// when it is a local path, else the account page.
func passkeysReturn(c echo.Context) string {
	if to := localPath(c.FormValue("return_to")); to != "" {
		return to
	}
	return accountPath
}

// handlePasskeyRegisterOptions is POST /account/passkeys/options (fields
// name, password): the current password (or a recent sign-in) first, as
// for every factor (M6).
func (p *pages) handlePasskeyRegisterOptions(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return passkeyJSONError(c, http.StatusUnauthorized, "Log in again to add a passkey.")
	}
	ctx := c.Request().Context()
	if err := p.Users.Confirm(ctx, s, c.FormValue("password"), clientMeta(c)); err != nil {
		return p.passkeyOptionsFailure(c, err)
	}
	opts, err := p.Users.BeginPasskeyRegistration(ctx, s, c.FormValue("name"), p.browserBinding(c))
	if err != nil {
		return p.passkeyOptionsFailure(c, err)
	}
	return c.JSONBlob(http.StatusOK, opts)
}

// handlePasskeyRegister is POST /account/passkeys (field credential).
func (p *pages) handlePasskeyRegister(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	back := passkeysReturn(c)
	if _, err := p.Users.FinishPasskeyRegistration(c.Request().Context(), s, p.cookieValue(c, oauthCookie), credential(c), clientMeta(c)); err != nil {
		return p.passkeyFailure(c, err, back, "Back to your account")
	}
	p.setFlash(c, "passkey-added")
	return seeOther(c, back+"#passkeys")
}

// handlePasskeyRemove is POST /account/passkeys/:id/remove (field
// password), a form that needs no script.
func (p *pages) handlePasskeyRemove(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	id := models.ParsePasskeyHandle(c.Param("id"))
	if id == nil {
		return echo.ErrNotFound
	}
	if ok, err := p.confirmForFactors(c, s); !ok {
		return err
	}
	back := passkeysReturn(c)
	err := p.Users.DeletePasskey(c.Request().Context(), s, id, clientMeta(c))
	switch {
	case errors.Is(err, models.ErrNotFound):
		return echo.ErrNotFound
	case errors.Is(err, models.ErrLastSignInMethod):
		return render(c, http.StatusUnprocessableEntity, views.ResponsePage(p.page(c, "The passkey was not removed"), views.Response{
			Title: "The passkey was not removed", Tone: "error", RedirectTo: back, RedirectToLinkText: "Back to your account",
			Content: "It is your account's only way to sign in. Set a password or add another passkey first."}))
	case err != nil:
		return err
	}
	p.setFlash(c, "passkey-removed")
	return seeOther(c, back+"#passkeys")
}

// passkeysView is the "Passkeys" section of the signed-in user, whose
// forms come back to returnTo ("/account").
func (p *pages) passkeysView(c echo.Context, s *models.Session, returnTo string) (views.Passkeys, error) {
	v := views.Passkeys{Enabled: p.Users.PasskeysEnabled(), HasPassword: s.User.HasPassword(), ReturnTo: returnTo, Max: models.MaxPasskeys}
	if !v.Enabled {
		return v, nil
	}
	list, err := p.Users.ListPasskeys(c.Request().Context(), s.User.ID)
	if err != nil {
		return v, err
	}
	for _, k := range list {
		row := views.PasskeyRow{Handle: k.Handle(), Name: k.Name, Created: k.Created.Format("2 Jan 2006"), Synced: k.BackupState}
		if !k.LastUsed.IsZero() {
			row.LastUsed = formatSeen(k.LastUsed)
		}
		v.List = append(v.List, row)
	}
	return v, nil
}
