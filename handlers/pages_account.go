package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// The account page (issue 12): profile, password, email address, sessions,
// sign-in methods and deleting the account. Every action is a POST with
// the CSRF token; the ones that change the account ask for the current
// password, or for an account without one a sign-in within
// Users.RecentAuth (models.Users.Confirm: SECURITY S9), and each leaves an
// audit row and the mail SECURITY.md asks for (models). A failure renders
// the page again with the message beside its field: 422 for what was
// typed, 401 for a wrong password, 403 when a recent sign-in is needed
// (with the "Confirm with …" buttons), 429 when throttled.
//
// The address changes the secure way here (SECURITY R10): it waits for the
// link mailed to the new address, and the old one is told with a link
// that cancels it. The LoopBack API's PATCH {email} keeps changing it at
// once.

func (p *pages) registerAccountPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.GET("/account", p.handleAccountPage, mw...)
	e.POST("/account/verify", p.handleAccountVerify, mw...)
	e.POST("/account/password", p.handleAccountPassword, mw...)
	e.POST("/account/password/set", p.handleAccountSetPassword, mw...)
	e.POST("/account/email", p.handleAccountEmail, mw...)
	e.POST("/account/email/withdraw", p.handleAccountEmailWithdraw, mw...)
	e.GET("/account/email/confirm", p.handleEmailChangeLink, mw...)
	e.POST("/account/email/confirm", p.handleEmailChangeConfirm, mw...)
	e.GET("/account/email/cancel", p.handleEmailChangeLink, mw...)
	e.POST("/account/email/cancel", p.handleEmailChangeCancel, mw...)
	e.POST("/account/delete", p.handleAccountDelete, mw...)
}

// accountView is the account page's data for the session's user, read
// afresh (the session's copy may predate a change).
func (p *pages) accountView(c echo.Context, s *models.Session) (views.AccountView, error) {
	ctx := c.Request().Context()
	u, err := p.Users.FindUserByID(ctx, s.User.ID)
	if err != nil {
		return views.AccountView{}, err
	}
	methods, err := p.signInMethods(c, s)
	if err != nil {
		return views.AccountView{}, err
	}
	v := views.AccountView{Email: u.Email, Username: u.Username, Verified: u.EmailVerified != nil && *u.EmailVerified,
		Placeholder: u.EmailPlaceholder, HasPassword: u.HasPassword(), Recent: p.Users.RecentlyAuthenticated(s),
		Reauth: methods.Reauth, MinPassword: p.minPassword, Methods: methods, Errors: views.FieldErrors{}, Alerts: map[string]string{}}
	f, err := p.Users.SecondFactors(ctx, u.ID)
	if err != nil {
		return v, err
	}
	v.Factors = views.Factors{TOTP: f.TOTP, RecoveryLeft: f.RecoveryLeft, Passkeys: f.Passkeys, HasPassword: u.HasPassword()}
	if v.Passkeys, err = p.passkeysView(c, s, accountPath); err != nil {
		return v, err
	}
	pending, err := p.Users.PendingEmailChange(ctx, u.ID)
	if err != nil {
		return v, err
	}
	if pending != nil {
		v.PendingEmail, v.PendingUntil = pending.NewEmail, formatSeen(pending.Expires)
	}
	return v, nil
}

func (p *pages) renderAccount(c echo.Context, status int, v views.AccountView) error {
	pg := p.page(c, "Your account")
	pg.Wide = true
	return render(c, status, views.AccountPage(pg, v))
}

// accountFailure renders the page again after a failed action: v was
// filled by the caller (what was typed, the field errors).
func (p *pages) accountFailure(c echo.Context, s *models.Session, status int, fill func(*views.AccountView)) error {
	v, err := p.accountView(c, s)
	if err != nil {
		return err
	}
	fill(&v)
	return p.renderAccount(c, status, v)
}

// confirmFailed answers a failed re-authentication (models.Users.Confirm)
// of the form in section whose password field is field; handled is false
// when err is no such failure.
func (p *pages) confirmFailed(c echo.Context, s *models.Session, err error, section, field string, fill func(*views.AccountView)) (handled bool, _ error) {
	if resp, status, ok := busyResponse(c, err); ok {
		return true, render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	switch {
	case errors.Is(err, models.ErrWrongPassword):
		return true, p.accountFailure(c, s, http.StatusUnauthorized, func(v *views.AccountView) {
			fill(v)
			v.Errors[field] = "That password is not right. Enter the password you log in with."
		})
	case errors.Is(err, models.ErrReauthRequired):
		return true, p.accountFailure(c, s, http.StatusForbidden, func(v *views.AccountView) {
			fill(v)
			v.Alerts[section] = "This needs a recent sign-in. Confirm it's you with the button below, then try again."
		})
	}
	return false, nil
}

func nothing(*views.AccountView) {}

// handleAccountPage is GET /account.
func (p *pages) handleAccountPage(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	v, err := p.accountView(c, s)
	if err != nil {
		return err
	}
	return p.renderAccount(c, http.StatusOK, v)
}

// handleAccountVerify is POST /account/verify: the confirmation link
// again (a new one replaces the older). Beyond one a minute per address
// nothing is sent and the answer is the same: the link sent a moment ago
// still works. It asks for no password: the mail goes to the account's own
// address and changes nothing.
func (p *pages) handleAccountVerify(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	ctx := c.Request().Context()
	u, err := p.Users.FindUserByID(ctx, s.User.ID)
	if err != nil {
		return err
	}
	switch {
	case u.EmailVerified != nil && *u.EmailVerified:
		p.setFlash(c, "already-verified")
		return seeOther(c, "/account")
	case u.EmailPlaceholder:
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(v *views.AccountView) {
			v.Alerts["verify"] = "No mail reaches " + u.Email + ": change your email address to yours first."
		})
	}
	if err := p.Users.RequestVerification(ctx, u.ID, "/verified", clientMeta(c)); err != nil {
		return err
	}
	p.setFlash(c, "verify-sent")
	return seeOther(c, "/account")
}

// handleAccountPassword is POST /account/password (currentPassword,
// newPassword): models.Users.ChangePassword — the other sessions end, the
// notice is mailed.
func (p *pages) handleAccountPassword(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	current, next := c.FormValue("currentPassword"), c.FormValue("newPassword")
	errs := views.FieldErrors{}
	if current == "" && s.User.HasPassword() {
		errs["currentPassword"] = "Enter your current password."
	}
	if next == "" {
		errs["newPassword"] = "Enter a new password."
	} else if err := p.Users.CheckPasswordPolicy(next, s.User.PasswordContext()); err != nil {
		me, ok := models.AsError(err)
		if !ok {
			return err
		}
		errs["newPassword"] = me.Message
	}
	if len(errs) > 0 {
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(v *views.AccountView) { v.Errors = errs })
	}
	err := p.Users.ChangePassword(c.Request().Context(), s, current, next, clientMeta(c))
	if ok, r := p.confirmFailed(c, s, err, "password", "currentPassword", nothing); ok {
		return r
	}
	if err != nil {
		return err
	}
	p.setFlash(c, "password-changed")
	return seeOther(c, "/account")
}

// handleAccountSetPassword is POST /account/password/set, for an account
// without a password: the reset link goes to the account's address
// (models.Users.RequestPasswordReset, throttled as every reset request),
// where the password is chosen. An address that reaches nobody gets a
// clear message instead.
func (p *pages) handleAccountSetPassword(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	ctx := c.Request().Context()
	u, err := p.Users.FindUserByID(ctx, s.User.ID)
	if err != nil {
		return err
	}
	if u.EmailPlaceholder {
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(v *views.AccountView) {
			v.Alerts["password"] = "No mail reaches " + u.Email + ", so the link cannot be sent: change your email address to yours first."
		})
	}
	if err := p.Users.RequestPasswordReset(ctx, u.Email, clientMeta(c)); err != nil {
		return err
	}
	p.setFlash(c, "set-password-sent")
	return seeOther(c, "/account")
}

// emailMessage words a refused new address.
func emailMessage(code string) string {
	switch code {
	case "presence":
		return "Enter the new email address."
	case "custom.email":
		return "Enter a valid email address, like name@example.com."
	case "same":
		return "That is already your address."
	case "uniqueness":
		return "Email already exists"
	}
	return "This address can't be used."
}

// handleAccountEmail is POST /account/email (newEmail, emailPassword):
// models.Users.RequestEmailChange. The current password is required
// (SECURITY S9); without one, a recent sign-in.
func (p *pages) handleAccountEmail(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	newEmail, password := strings.TrimSpace(c.FormValue("newEmail")), c.FormValue("emailPassword")
	keep := func(v *views.AccountView) { v.NewEmail = newEmail }
	errs := views.FieldErrors{}
	switch {
	case newEmail == "":
		errs["newEmail"] = emailMessage("presence")
	case !models.ValidEmail(newEmail):
		errs["newEmail"] = emailMessage("custom.email")
	}
	if password == "" && s.User.HasPassword() {
		errs["emailPassword"] = "Enter your current password."
	}
	if len(errs) > 0 {
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(v *views.AccountView) { keep(v); v.Errors = errs })
	}
	_, err := p.Users.RequestEmailChange(c.Request().Context(), s, password, newEmail, clientMeta(c))
	if v, ok := models.AsValidation(err); ok {
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(av *views.AccountView) {
			keep(av)
			av.Errors["newEmail"] = emailMessage(v.Fields[0].Code)
		})
	}
	if errors.Is(err, models.ErrEmailChangeTooSoon) {
		me, _ := models.AsError(err)
		c.Response().Header().Set("Retry-After", "60")
		return p.accountFailure(c, s, http.StatusTooManyRequests, func(v *views.AccountView) { keep(v); v.Alerts["email"] = me.Message })
	}
	if ok, r := p.confirmFailed(c, s, err, "email", "emailPassword", keep); ok {
		return r
	}
	if err != nil {
		return err
	}
	p.setFlash(c, "email-change-sent")
	return seeOther(c, "/account")
}

// handleAccountEmailWithdraw is POST /account/email/withdraw: the pending
// change goes (its link stops working).
func (p *pages) handleAccountEmailWithdraw(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	if err := p.Users.WithdrawEmailChange(c.Request().Context(), s, clientMeta(c)); err != nil {
		return err
	}
	p.setFlash(c, "email-change-withdrawn")
	return seeOther(c, "/account")
}

// badEmailChangeLink is the page of a link that does not work (any more).
func (p *pages) badEmailChangeLink(c echo.Context) error {
	return render(c, http.StatusBadRequest, views.ResponsePage(p.page(c, "This link doesn't work"), views.Response{
		Title:      "This link doesn't work",
		Content:    "It was used already, the change was cancelled or asked for again, or it expired. Nothing was changed.",
		RedirectTo: "/account", RedirectToLinkText: "Go to your account", Tone: "error"}))
}

// handleEmailChangeLink is GET /account/email/confirm?token=… and
// /account/email/cancel?token=…: a page with the button that acts.
// Opening a link changes nothing (mail scanners open links); the page is
// not cached and sends no Referer with the token.
func (p *pages) handleEmailChangeLink(c echo.Context) error {
	cancel := strings.HasSuffix(c.Path(), "/cancel")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	token := c.QueryParam("token")
	ch, err := p.Users.CheckEmailChange(c.Request().Context(), token, cancel)
	if errors.Is(err, models.ErrInvalidToken) {
		return p.badEmailChangeLink(c)
	}
	if err != nil {
		return err
	}
	title := "Confirm your new email address"
	if cancel {
		title = "Cancel the change of email address"
	}
	return render(c, http.StatusOK, views.EmailChangePage(p.page(c, title),
		views.EmailChangeAction{Cancel: cancel, NewEmail: ch.NewEmail, Token: token}))
}

// handleEmailChangeConfirm is POST /account/email/confirm (token): the
// account takes the new address (models.Users.ConfirmEmailChange). Only
// this browser's session stays, when it is the account's.
func (p *pages) handleEmailChangeConfirm(c echo.Context) error {
	var keep [32]byte
	s := sessionOf(c)
	if s != nil {
		keep = s.Token.Digest
	}
	u, err := p.Users.ConfirmEmailChange(c.Request().Context(), c.FormValue("token"), keep, clientMeta(c))
	if errors.Is(err, models.ErrInvalidToken) {
		return p.badEmailChangeLink(c)
	}
	if _, ok := models.AsValidation(err); ok {
		return render(c, http.StatusConflict, views.ResponsePage(p.page(c, "That address is taken"), views.Response{
			Title:      "That address is taken",
			Content:    "Another account uses that address now, so the change could not be made. Your account keeps its address.",
			RedirectTo: "/account", RedirectToLinkText: "Go to your account", Tone: "error"}))
	}
	if err != nil {
		return err
	}
	p.setFlash(c, "email-changed")
	if s != nil && s.User.ID == u.ID {
		return seeOther(c, "/account")
	}
	return seeOther(c, "/")
}

// handleEmailChangeCancel is POST /account/email/cancel (token), from the
// notice to the old address: the pending change goes.
func (p *pages) handleEmailChangeCancel(c echo.Context) error {
	err := p.Users.CancelEmailChange(c.Request().Context(), c.FormValue("token"), clientMeta(c))
	if errors.Is(err, models.ErrInvalidToken) {
		return p.badEmailChangeLink(c)
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ResponsePage(p.page(c, "The change is cancelled"), views.Response{
		Title: "The change is cancelled",
		Content: "Your account keeps its email address. If you did not ask for the change, someone knows your password: " +
			"reset it now, which also logs out every session.",
		RedirectTo: "/request-password-reset", RedirectToLinkText: "Reset my password", Tone: "ok"}))
}

// handleAccountDelete is POST /account/delete (deletePassword):
// models.Users.DeleteAccount — every session ends and the goodbye notice is
// mailed; the browser lands on / with a flash.
func (p *pages) handleAccountDelete(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	password := c.FormValue("deletePassword")
	if password == "" && s.User.HasPassword() {
		return p.accountFailure(c, s, http.StatusUnprocessableEntity, func(v *views.AccountView) {
			v.Errors["deletePassword"] = "Enter your current password."
		})
	}
	err := p.Users.DeleteAccount(c.Request().Context(), s, password, clientMeta(c))
	if ok, r := p.confirmFailed(c, s, err, "delete", "deletePassword", nothing); ok {
		return r
	}
	if err != nil {
		return err
	}
	p.endSession(c)
	p.setFlash(c, "account-deleted")
	c.Response().Header().Set("Clear-Site-Data", `"cache"`)
	return seeOther(c, "/")
}
