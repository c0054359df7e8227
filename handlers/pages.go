package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/medama-io/go-useragent"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/static"
	"github.com/latchkey/latchkey/views"
)

// pages serves the HTML face: the boot-script routes of
// loopback-example-user-management as templ pages with cookie sessions.
// Every action is a models.Users call, as in the JSON API; neither face
// calls the other.
type pages struct {
	*Handler
	// minPassword is the password policy's minimum length, for the hints.
	minPassword int
	// agents words a User-Agent for the sessions page (deviceName).
	agents *useragent.Parser
}

// registerPages adds the pages and /static. Every page route gets the page
// headers (CSP, no-store), the session from its cookie and CSRF
// protection (csrfGuard: Sec-Fetch-Site, and a token bound to the cookie
// and the session in the _csrf form field).
func (h *Handler) registerPages(e *echo.Echo) {
	p := &pages{Handler: h, minPassword: h.Users.PasswordMinLength(), agents: useragent.NewParser()}

	mw := []echo.MiddlewareFunc{h.pageHeaders, h.loadSession, h.csrfGuard}

	e.GET("/", p.handleHome, mw...)
	e.GET("/login", p.handleLoginPage, mw...)
	e.POST("/login", p.handleLoginSubmit, mw...)
	e.GET("/signup", p.handleSignupPage, mw...)
	e.POST("/signup", p.handleSignupSubmit, mw...)
	e.GET("/logout", p.handleLogoutPage, mw...)
	e.POST("/logout", p.handleLogoutSubmit, mw...)
	e.GET("/check-email", p.handleCheckEmail, mw...)
	e.GET("/verified", p.handleVerified, mw...)
	e.GET("/request-password-reset", p.handleForgotPage, mw...)
	e.POST("/request-password-reset", p.handleForgotSubmit, mw...)
	e.GET(resetPath, p.handleResetPage, mw...)
	e.POST(resetPath, p.handleResetSubmit, mw...)
	p.registerSessionPages(e, mw)
	p.registerOAuthPages(e, mw)
	p.registerMFAPages(e, mw)
	p.registerAccountPages(e, mw)
	p.registerPasskeyPages(e, mw)
	e.GET("/explorer", p.handleExplorer, mw...) // the API reference (explorer.go)
	p.registerAdminPages(e, mw)

	e.GET(static.Prefix+"*", p.handleStatic)
}

// humanDuration words a link lifetime: "24 hours", "15 minutes".
func humanDuration(seconds int64) string {
	switch {
	case seconds >= 7200 && seconds%3600 == 0:
		return strconv.FormatInt(seconds/3600, 10) + " hours"
	case seconds == 3600:
		return "1 hour"
	case seconds >= 120:
		return strconv.FormatInt(seconds/60, 10) + " minutes"
	}
	return strconv.FormatInt(seconds, 10) + " seconds"
}

// page is the layout data of a page request.
func (p *pages) page(c echo.Context, title string) views.Page {
	v := views.Page{Title: title, Asset: p.assets.URL, Flash: p.takeFlash(c), Brand: p.Brand}
	if s := sessionOf(c); s != nil {
		v.Email, v.Admin = s.User.Email, s.User.Admin
	}
	v.CSRF, _ = c.Get(ctxCSRF).(string)
	return v
}

// seeOther is the redirect of Post/Redirect/Get: a reload never re-posts.
func seeOther(c echo.Context, to string) error { return c.Redirect(http.StatusSeeOther, to) }

func (p *pages) handleStatic(c echo.Context) error {
	if !p.assets.Has(strings.TrimPrefix(c.Request().URL.Path, static.Prefix)) {
		return echo.ErrNotFound
	}
	p.assets.ServeHTTP(c.Response(), c.Request())
	return nil
}

// handleHome is GET /: the login form when signed out, a welcome with the
// way to the account page when signed in.
func (p *pages) handleHome(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return render(c, http.StatusOK, views.HomePage(p.page(c, "Log in"), nil, views.LoginForm{Providers: p.providerButtons(), Passkeys: p.Users.PasskeysEnabled()}))
	}
	a := &views.Account{Email: s.User.Email, Username: s.User.Username,
		Verified: s.User.EmailVerified != nil && *s.User.EmailVerified, Placeholder: s.User.EmailPlaceholder}
	pg := p.page(c, "Your account")
	return render(c, http.StatusOK, views.HomePage(pg, a, views.LoginForm{}))
}

// handleLoginPage is GET /login.
func (p *pages) handleLoginPage(c echo.Context) error {
	if sessionOf(c) != nil {
		return seeOther(c, "/")
	}
	return render(c, http.StatusOK, views.LoginPage(p.page(c, "Log in"), views.LoginForm{Providers: p.providerButtons(), Passkeys: p.Users.PasskeysEnabled()}))
}

// handleLoginSubmit is POST /login (fields email — an email or a username —
// and password). Success: a new session cookie and 303 to /. Failure: the
// seed's "Login failed" response page with 401, the same for every wrong
// credential.
func (p *pages) handleLoginSubmit(c echo.Context) error {
	login, password := c.FormValue("email"), c.FormValue("password")
	errs := views.FieldErrors{}
	if strings.TrimSpace(login) == "" {
		errs["email"] = "Enter your email address or username."
	}
	if password == "" {
		errs["password"] = "Enter your password."
	}
	if len(errs) > 0 {
		return render(c, http.StatusUnprocessableEntity, views.LoginPage(p.page(c, "Log in"),
			views.LoginForm{Email: login, Errors: errs, Providers: p.providerButtons(), Passkeys: p.Users.PasskeysEnabled()}))
	}
	ctx, meta := c.Request().Context(), clientMeta(c)
	tok, user, err := p.Users.Login(ctx, models.Credentials{Login: login, Password: password}, meta)
	var mfa *models.MFARequiredError
	if errors.As(err, &mfa) { // the password was right; the second step decides
		c.SetCookie(p.newCookie(mfaCookie, mfa.Token, int(models.MFATokenTTL/time.Second)))
		return seeOther(c, secondStepPath)
	}
	if err != nil {
		if resp, status, ok := busyResponse(c, err); ok {
			return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
		}
		if me, ok := models.AsError(err); ok && (me.Kind == models.KindUnauthorized || me.Kind == models.KindInvalid) {
			return render(c, http.StatusUnauthorized, views.ResponsePage(p.page(c, "Login failed"), views.Response{
				Title:              "Login failed",
				Content:            "The email, username or password is not right. Check them and try again.",
				RedirectTo:         "/",
				RedirectToLinkText: "Try again",
				Tone:               "error",
			}))
		}
		return err
	}
	return p.signedIn(c, tok, user)
}

// signedIn finishes a login in the browser (a password, or a password and
// a second step): the session this browser had before ends (one browser,
// one session), the new one goes in the cookie, the CSRF token changes,
// and a provider waiting to be linked to this account is linked.
func (p *pages) signedIn(c echo.Context, tok *models.AccessToken, user *models.User) error {
	p.startSession(c, tok)
	if msg := p.linkPending(c, user); msg != "" {
		p.setFlash(c, msg)
	}
	return seeOther(c, "/")
}

// busyResponse turns throttling (429) and overload (503) from the models
// into a response page with Retry-After.
func busyResponse(c echo.Context, err error) (views.Response, int, bool) {
	me, ok := models.AsError(err)
	if !ok || me.Kind != models.KindTooMany && me.Kind != models.KindBusy {
		return views.Response{}, 0, false
	}
	if me.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(me.RetryAfter))
	}
	wait := "a moment"
	if me.RetryAfter > 1 {
		wait = strconv.Itoa(me.RetryAfter) + " seconds"
	}
	if me.Kind == models.KindTooMany {
		return views.Response{Title: "Too many attempts", Tone: "error",
			Content:    "There were too many attempts. Wait " + wait + " and try again. If you forgot your password, you can reset it.",
			RedirectTo: "/request-password-reset", RedirectToLinkText: "Reset password"}, http.StatusTooManyRequests, true
	}
	return views.Response{Title: "We're busy right now", Tone: "error",
		Content:    "Too many people are logging in at once. Wait " + wait + " and try again.",
		RedirectTo: "/", RedirectToLinkText: "Try again"}, http.StatusServiceUnavailable, true
}

// handleSignupPage is GET /signup.
func (p *pages) handleSignupPage(c echo.Context) error {
	if sessionOf(c) != nil {
		return seeOther(c, "/")
	}
	return render(c, http.StatusOK, views.SignupPage(p.page(c, "Sign up"), views.SignupForm{MinPassword: p.minPassword, Providers: p.providerButtons()}))
}

// handleSignupSubmit is POST /signup (email, optional username, password):
// create the account, sign in, ask for a confirmation mail, 303 to the
// "check your email" page. Errors are shown beside their fields (422); the
// password rules are the API's, word for word.
func (p *pages) handleSignupSubmit(c echo.Context) error {
	email, username, password := c.FormValue("email"), c.FormValue("username"), c.FormValue("password")
	form := views.SignupForm{Email: email, Username: username, Errors: views.FieldErrors{}, MinPassword: p.minPassword,
		Providers: p.providerButtons()}
	// Check what can be checked without the database first, so every
	// field's problem shows at once.
	switch {
	case strings.TrimSpace(email) == "":
		form.Errors["email"] = signupMessage("email", "presence", "")
	case !models.ValidEmail(email):
		form.Errors["email"] = signupMessage("email", "custom.email", "")
	}
	if password == "" {
		form.Errors["password"] = "Enter a password."
	} else if err := p.Users.CheckPasswordPolicy(password, models.PasswordContext{Email: email, Username: username}); err != nil {
		me, ok := models.AsError(err)
		if !ok {
			return err
		}
		form.Errors["password"] = me.Message
	}
	if len(form.Errors) > 0 {
		return render(c, http.StatusUnprocessableEntity, views.SignupPage(p.page(c, "Sign up"), form))
	}

	kv := []string{"email", email}
	if username != "" {
		kv = append(kv, "username", username)
	}
	kv = append(kv, "password", password)
	ctx, meta := c.Request().Context(), clientMeta(c)
	u, err := p.Users.CreateUser(ctx, models.StringFields(kv...), meta)
	if err != nil {
		if v, ok := models.AsValidation(err); ok {
			for _, f := range v.Fields {
				if _, seen := form.Errors[f.Field]; !seen {
					form.Errors[f.Field] = signupMessage(f.Field, f.Code, f.Message)
				}
			}
			if form.Errors["email"] == "" && form.Errors["username"] == "" && form.Errors["password"] == "" {
				form.Alert = "The account could not be created. Check the fields and try again."
			}
			return render(c, http.StatusUnprocessableEntity, views.SignupPage(p.page(c, "Sign up"), form))
		}
		if resp, status, ok := busyResponse(c, err); ok {
			return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
		}
		if me, ok := models.AsError(err); ok && me.Kind == models.KindUnprocessable {
			form.Errors["password"] = me.Message
			return render(c, http.StatusUnprocessableEntity, views.SignupPage(p.page(c, "Sign up"), form))
		}
		return err
	}

	tok, _, err := p.Users.Login(ctx, models.Credentials{Email: u.Email, Password: password}, meta)
	if err != nil {
		// The account exists; only the automatic sign-in failed (throttled
		// or busy). Logging in by hand works.
		p.reqLog(c).Warn("sign-in after sign-up failed", "user_id", u.ID, "err", err)
		return seeOther(c, "/login")
	}
	if err := p.Users.RequestVerification(ctx, u.ID, "/verified", meta); err != nil {
		// The account is made; the link can be asked for again through the API.
		p.reqLog(c).Error("queueing the confirmation mail after sign-up", "user_id", u.ID, "err", err)
	}
	p.startSession(c, tok)
	return seeOther(c, "/check-email")
}

// signupMessage words a validation failure for a person. Duplicates say no
// more than the API does ("Email already exists").
func signupMessage(field, code, fallback string) string {
	switch field + "/" + code {
	case "email/presence":
		return "Enter your email address."
	case "email/custom.email":
		return "Enter a valid email address, like name@example.com."
	case "email/uniqueness":
		return "Email already exists"
	case "username/uniqueness":
		return "User already exists"
	case "username/custom.username":
		return "This username can't be used: at most 256 characters, no control characters."
	case "password/presence":
		return "Enter a password."
	}
	if fallback == "" {
		return "This value is invalid."
	}
	return fallback
}

// handleLogoutPage is GET /logout. The seed logged out on GET; here a GET
// changes nothing (a cross-site link or image cannot log anyone out): it
// asks, with a button that posts the form with its CSRF token.
func (p *pages) handleLogoutPage(c echo.Context) error {
	if sessionOf(c) == nil {
		return seeOther(c, "/")
	}
	return render(c, http.StatusOK, views.LogoutPage(p.page(c, "Log out")))
}

// handleLogoutSubmit is POST /logout: the token is deleted (it fails at
// once everywhere), the cookies go, the browser is told to drop its cache.
func (p *pages) handleLogoutSubmit(c echo.Context) error {
	if s := sessionOf(c); s != nil {
		if _, err := p.Users.Logout(c.Request().Context(), s, clientMeta(c)); err != nil {
			return err
		}
	}
	p.endSession(c)
	p.setFlash(c, "logged-out")
	c.Response().Header().Set("Clear-Site-Data", `"cache"`)
	return seeOther(c, "/")
}

// handleCheckEmail is the page after sign-up: a confirmation link is on its way.
func (p *pages) handleCheckEmail(c echo.Context) error {
	if sessionOf(c) == nil {
		return seeOther(c, "/login")
	}
	return render(c, http.StatusOK, views.CheckEmailPage(p.page(c, "Check your email"), humanDuration(p.Users.VerifyTTL())))
}

// handleVerified is where the confirmation link (GET /api/users/confirm
// with redirect=/verified) lands.
func (p *pages) handleVerified(c echo.Context) error {
	return render(c, http.StatusOK, views.VerifiedPage(p.page(c, "Email address verified")))
}
