package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/skip2/go-qrcode"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// Second factors in the browser: the login's second step, and turning two-
// step verification on and off from the account page.
//
//	GET|POST /login/verify              the code after the password (or a recovery code)
//	POST     /account/two-step/start    the current password → the QR code and the secret
//	POST     /account/two-step/confirm  a code from the app → on, and the recovery codes (shown once)
//	POST     /account/two-step/off      the current password → off
//	POST     /account/recovery-codes    the current password → a new set (shown once)
const (
	mfaCookie      = "latchkey_mfa" // the pending second step's token, for 5 minutes
	secondStepPath = "/login/verify"
	// accountPath is the account page, where factors are managed.
	accountPath = "/account"
)

func (p *pages) registerMFAPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.GET(secondStepPath, p.handleSecondStepPage, mw...)
	e.POST(secondStepPath, p.handleSecondStep, mw...)
	e.POST("/account/two-step/start", p.handleTOTPStart, mw...)
	e.POST("/account/two-step/confirm", p.handleTOTPConfirm, mw...)
	e.POST("/account/two-step/off", p.handleTOTPOff, mw...)
	e.POST("/account/recovery-codes", p.handleRecoveryCodes, mw...)
}

// pendingSecondStep is the browser's pending second step, or nil.
func (p *pages) pendingSecondStep(c echo.Context) (string, *models.MFAChallenge) {
	tok := p.cookieValue(c, mfaCookie)
	ch, err := p.Users.PendingMFA(c.Request().Context(), tok)
	if err != nil {
		return "", nil
	}
	return tok, ch
}

// handleSecondStepPage is GET /login/verify.
func (p *pages) handleSecondStepPage(c echo.Context) error {
	if sessionOf(c) != nil {
		return seeOther(c, "/")
	}
	tok, ch := p.pendingSecondStep(c)
	if tok == "" {
		p.expireCookie(c, mfaCookie)
		return seeOther(c, "/login")
	}
	return render(c, http.StatusOK, views.SecondStepPage(p.page(c, "Two-step verification"), p.secondStepView(c, ch, "")))
}

// secondStepView is the second-step page for the pending login's account:
// its passkeys offered beside the code, or instead of it when it has no
// authenticator app.
func (p *pages) secondStepView(c echo.Context, ch *models.MFAChallenge, msg string) views.SecondStep {
	v := views.SecondStep{Error: msg}
	if f, err := p.Users.SecondFactors(c.Request().Context(), ch.UserID); err == nil && f.Passkeys > 0 && p.Users.PasskeysEnabled() {
		v.Passkey, v.PasskeyOnly = true, !f.TOTP
	}
	return v
}

// handleSecondStep is POST /login/verify (field code): the code from the
// authenticator app, or a recovery code.
func (p *pages) handleSecondStep(c echo.Context) error {
	tok, ch := p.pendingSecondStep(c)
	if ch == nil {
		p.expireCookie(c, mfaCookie)
		return p.oauthFailure(c, http.StatusUnauthorized, "That took too long",
			"The second step has to follow the password within 5 minutes. Log in again.")
	}
	code := c.FormValue("code")
	if strings.TrimSpace(code) == "" {
		return render(c, http.StatusUnprocessableEntity, views.SecondStepPage(p.page(c, "Two-step verification"),
			p.secondStepView(c, ch, "Enter the 6-digit code from your app, or a recovery code.")))
	}
	user, err := p.Users.FindUserByID(c.Request().Context(), ch.UserID)
	if err != nil {
		return err
	}
	sess, _, err := p.Users.CompleteMFA(c.Request().Context(), tok, code, clientMeta(c))
	if resp, status, ok := busyResponse(c, err); ok {
		return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	switch {
	case errors.Is(err, models.ErrMFACode):
		return render(c, http.StatusUnauthorized, views.SecondStepPage(p.page(c, "Two-step verification"),
			p.secondStepView(c, ch, "That code is not right, or it was used already. Wait for the next one and try again.")))
	case errors.Is(err, models.ErrMFAInvalid):
		p.expireCookie(c, mfaCookie)
		return p.oauthFailure(c, http.StatusUnauthorized, "That took too long", "Log in again.")
	case err != nil:
		return err
	}
	p.expireCookie(c, mfaCookie)
	return p.signedIn(c, sess, user)
}

// confirmForFactors asks what changing a factor needs (SECURITY S9, M6):
// the current password, or a recent sign-in for an account without one.
// It answers the page itself when that fails.
func (p *pages) confirmForFactors(c echo.Context, s *models.Session) (bool, error) {
	err := p.Users.Confirm(c.Request().Context(), s, c.FormValue("password"), clientMeta(c))
	if err == nil {
		return true, nil
	}
	if resp, status, ok := busyResponse(c, err); ok {
		return false, render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	switch {
	case errors.Is(err, models.ErrWrongPassword):
		return false, p.factorFailure(c, http.StatusUnauthorized, "Wrong password",
			"To change two-step verification, type your current password with it.")
	case errors.Is(err, models.ErrReauthRequired):
		return false, p.factorFailure(c, http.StatusForbidden, "Confirm it's you first",
			"Changing two-step verification needs a recent sign-in. Confirm with your provider on your account page, then try again.")
	}
	return false, err
}

// factorFailure is a readable page for a refused change of a factor, with
// the way back to the account.
func (p *pages) factorFailure(c echo.Context, status int, title, content string) error {
	return render(c, status, views.ResponsePage(p.page(c, title), views.Response{
		Title: title, Content: content, RedirectTo: accountPath, RedirectToLinkText: "Back to your account", Tone: "error"}))
}

// handleTOTPStart is POST /account/two-step/start (field password).
func (p *pages) handleTOTPStart(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	if ok, err := p.confirmForFactors(c, s); !ok {
		return err
	}
	e, err := p.Users.BeginTOTP(c.Request().Context(), s, p.Brand.AppName()) // the issuer authenticator apps show
	if errors.Is(err, models.ErrTOTPEnabled) {
		return seeOther(c, accountPath)
	}
	if err != nil {
		return err
	}
	return p.renderEnrolment(c, http.StatusOK, e, "")
}

func (p *pages) renderEnrolment(c echo.Context, status int, e *models.TOTPEnrolment, msg string) error {
	qr, err := qrSVG(e.URI)
	if err != nil {
		return err
	}
	return render(c, status, views.TOTPEnrolPage(p.page(c, "Turn on two-step verification"),
		views.TOTPEnrol{QR: qr, Secret: groupSecret(e.Secret), Error: msg}))
}

// handleTOTPConfirm is POST /account/two-step/confirm (field code): on,
// and the recovery codes, shown this once.
func (p *pages) handleTOTPConfirm(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	codes, err := p.Users.ConfirmTOTP(c.Request().Context(), s, c.FormValue("code"), clientMeta(c))
	switch {
	case errors.Is(err, models.ErrMFACode):
		return p.factorFailure(c, http.StatusUnprocessableEntity, "That code is not right",
			"Two-step verification is still off. Start again and enter the code your app shows for "+p.Brand.AppName()+".")
	case errors.Is(err, models.ErrTOTPNotEnrolling), errors.Is(err, models.ErrTOTPEnabled):
		return seeOther(c, accountPath)
	case err != nil:
		return err
	}
	return render(c, http.StatusOK, views.RecoveryCodesPage(p.page(c, "Your recovery codes"), views.RecoveryCodes{Codes: codes, JustEnabled: true}))
}

// handleTOTPOff is POST /account/two-step/off (field password).
func (p *pages) handleTOTPOff(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	if ok, err := p.confirmForFactors(c, s); !ok {
		return err
	}
	if err := p.Users.DisableTOTP(c.Request().Context(), s, clientMeta(c)); err != nil {
		return err
	}
	p.setFlash(c, "two-step-off")
	return seeOther(c, accountPath)
}

// handleRecoveryCodes is POST /account/recovery-codes (field password): a
// new set replaces the old, shown this once.
func (p *pages) handleRecoveryCodes(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	if ok, err := p.confirmForFactors(c, s); !ok {
		return err
	}
	codes, err := p.Users.RegenerateRecoveryCodes(c.Request().Context(), s, clientMeta(c))
	if errors.Is(err, models.ErrTOTPNotEnrolling) {
		return seeOther(c, accountPath)
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.RecoveryCodesPage(p.page(c, "Your recovery codes"), views.RecoveryCodes{Codes: codes}))
}

// qrMinPixels is the QR code's smallest drawn size.
const qrMinPixels = 200

// qrSVG draws the otpauth:// URI as a QR code in inline SVG: one path of
// unit squares, no script, no image request (the CSP allows neither data:
// nor remote images), so it prints and scales cleanly.
func qrSVG(content string) (string, error) {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("qr code: %w", err)
	}
	bits := q.Bitmap()
	var d strings.Builder
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&d, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	// The bitmap has the 4-module quiet zone around it. A whole number of
	// pixels per module (at least 200 px in all) keeps every module the
	// same size on screen.
	n := len(bits)
	px := n * ((qrMinPixels + n - 1) / n)
	return fmt.Sprintf(`<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="QR code for your authenticator app" shape-rendering="crispEdges"><rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`,
		n, n, px, px, n, n, d.String()), nil
}

// groupSecret writes the base32 secret in groups of four, as apps that
// take it typed expect to show it.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
