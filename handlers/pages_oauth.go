package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// Third-party sign-in, on LoopBack Passport's paths:
//
//	GET|POST /auth/<id>          start (the login page's buttons POST with CSRF)
//	GET      /auth/<id>/callback finish
//	POST     /link/<id>          add a provider to the signed-in account
//	POST     /unlink/<identity>  remove one (never the last way to sign in)
//
// The flow's state, nonce and PKCE verifier are kept in the store (a
// callback may reach any replica), bound to this browser by the
// oauthCookie and used once (SECURITY O1). What a provider account may do
// to the accounts here is models.ExternalSignIn's (O3, O4).
const (
	oauthCookie = "latchkey_oauth" // binds flows to the browser that started them
	linkCookie  = "latchkey_link"  // a provider account waiting for the password of its account
	// exchangeTimeout bounds the call to the provider's token endpoint.
	exchangeTimeout = 15 * time.Second
)

func (p *pages) registerOAuthPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.GET("/auth/:provider", p.handleAuthStart, mw...)
	e.POST("/auth/:provider", p.handleAuthStart, mw...)
	e.GET("/auth/:provider/callback", p.handleAuthCallback, mw...)
	e.POST("/link/:provider", p.handleLink, mw...)
	e.POST("/unlink/:identity", p.handleUnlink, mw...)
}

// providerButtons are the ready providers, for the login and sign-up pages.
func (p *pages) providerButtons() []views.Provider {
	if p.Providers == nil {
		return nil
	}
	var out []views.Provider
	for _, pr := range p.Providers.List() {
		if pr.Ready() {
			out = append(out, views.Provider{ID: pr.ID(), Label: pr.Label(), Kind: pr.Kind()})
		}
	}
	return out
}

// provider is the configured provider the route names, or nil.
func (p *pages) provider(c echo.Context) oauth.Provider {
	pr, _ := p.providerOf(c.Param("provider"))
	return pr
}

// oauthFailure is the page of a flow that went wrong: what happened, in
// words, a 4xx status, and a way back. The cause goes to the log only.
func (p *pages) oauthFailure(c echo.Context, status int, title, content string) error {
	to, text := "/login", "Back to log in"
	if sessionOf(c) != nil {
		to, text = "/", "Back to your account"
	}
	return render(c, status, views.ResponsePage(p.page(c, title), views.Response{
		Title: title, Content: content, RedirectTo: to, RedirectToLinkText: text, Tone: "error"}))
}

// randomString is n random bytes, URL-safe base64.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// browserBinding is this browser's flow-binding secret, made (and its
// cookie set) when it has none; the cookie lives as long as a flow.
func (p *pages) browserBinding(c echo.Context) string {
	if ck, err := c.Cookie(p.cookieName(oauthCookie)); err == nil && len(ck.Value) >= 32 {
		c.SetCookie(p.newCookie(oauthCookie, ck.Value, int(models.FlowTTL/time.Second)))
		return ck.Value
	}
	v := randomString(32)
	c.SetCookie(p.newCookie(oauthCookie, v, int(models.FlowTTL/time.Second)))
	return v
}

// cookieValue is a cookie's value, "" when absent.
func (p *pages) cookieValue(c echo.Context, base string) string {
	ck, err := c.Cookie(p.cookieName(base))
	if err != nil {
		return ""
	}
	return ck.Value
}

// localPath keeps return_to only when it is a path on this site (SECURITY
// O5): "/sessions" yes; "//evil.test", "https://evil.test", "/\evil" no.
// It answers the string as given, never re-encoded: re-encoding a decoded
// path turned "/%2fevil.test " into "//evil.test%20", a path that leaves
// the site (found by FuzzLocalPath).
func localPath(s string) string {
	if s == "" || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return s
}

// handleAuthStart is GET or POST /auth/<id> (return_to: a local path to
// land on). Signed in, with reauth=1, it is a re-authentication for a
// sensitive change instead of a sign-in.
func (p *pages) handleAuthStart(c echo.Context) error {
	pr := p.provider(c)
	if pr == nil {
		return p.oauthFailure(c, http.StatusNotFound, "No such sign-in", "This site does not offer that way to sign in.")
	}
	f := models.Flow{Purpose: models.FlowLogin, Provider: pr.ID(), ReturnTo: localPath(c.FormValue("return_to"))}
	if s := sessionOf(c); s != nil {
		if c.Request().Method != http.MethodPost || c.FormValue("reauth") == "" {
			return seeOther(c, orHome(f.ReturnTo))
		}
		f.Purpose, f.UserID, f.Session = models.FlowReauth, s.User.ID, s.Token.Digest
	}
	return p.startFlow(c, pr, f)
}

func orHome(path string) string {
	if path == "" {
		return "/"
	}
	return path
}

// startFlow stores the flow and sends the browser to the provider.
func (p *pages) startFlow(c echo.Context, pr oauth.Provider, f models.Flow) error {
	if !pr.Ready() {
		c.Response().Header().Set("Retry-After", "30")
		return p.oauthFailure(c, http.StatusServiceUnavailable, pr.Label()+" is not available right now",
			"Signing in with "+pr.Label()+" does not work at the moment. Try again in a little while, or log in with your password.")
	}
	state := randomString(32)
	f.Nonce, f.Verifier = randomString(32), randomString(48)
	to, err := pr.AuthURL(state, f.Nonce, f.Verifier)
	if err != nil {
		return err
	}
	if err := p.Users.SaveFlow(c.Request().Context(), state, p.browserBinding(c), f); err != nil {
		return err
	}
	if c.Request().Method == http.MethodPost {
		return seeOther(c, to)
	}
	return c.Redirect(http.StatusFound, to)
}

// handleAuthCallback is GET /auth/<id>/callback: the provider sends the
// browser back with code and state (or error).
func (p *pages) handleAuthCallback(c echo.Context) error {
	ctx := c.Request().Context()
	pr := p.provider(c)
	if pr == nil {
		return p.oauthFailure(c, http.StatusNotFound, "No such sign-in", "This site does not offer that way to sign in.")
	}
	flow, err := p.Users.TakeFlow(ctx, c.QueryParam("state"), p.cookieValue(c, oauthCookie))
	switch {
	case errors.Is(err, models.ErrFlowExpired):
		return p.oauthFailure(c, http.StatusBadRequest, "That took too long",
			"The sign-in with "+pr.Label()+" took more than 10 minutes, so it was stopped. Start again.")
	case errors.Is(err, models.ErrFlowInvalid):
		return p.oauthFailure(c, http.StatusBadRequest, "That sign-in link does not work",
			"It was used already, or it was started in another browser. Start again from the log-in page.")
	case err != nil:
		return err
	}
	if flow.Provider != pr.ID() { // a callback for one provider with another's flow: a mix-up
		return p.oauthFailure(c, http.StatusBadRequest, "That sign-in link does not work", "Start again from the log-in page.")
	}
	if e := c.QueryParam("error"); e != "" {
		if e == "access_denied" {
			return p.oauthFailure(c, http.StatusBadRequest, "Sign-in cancelled",
				"You did not finish signing in with "+pr.Label()+". Nothing was changed.")
		}
		p.reqLog(c).Warn("provider answered with an error", "provider", pr.ID(), "error", truncateParam(e))
		return p.oauthFailure(c, http.StatusBadRequest, pr.Label()+" could not sign you in",
			pr.Label()+" answered with an error. Try again, or log in with your password.")
	}
	if iss := c.QueryParam("iss"); iss != "" { // RFC 9207: the answer must come from the provider the flow went to
		if pr.Issuer() != "" && pr.Issuer() != iss {
			return p.oauthFailure(c, http.StatusBadRequest, "That sign-in link does not work", "Start again from the log-in page.")
		}
	}
	xctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	got, err := pr.Exchange(xctx, c.QueryParam("code"), flow.Verifier, flow.Nonce)
	if err != nil {
		p.reqLog(c).Warn("third-party sign-in failed", "provider", pr.ID(), "err", err)
		return p.oauthFailure(c, http.StatusBadRequest, pr.Label()+" could not sign you in",
			"The answer from "+pr.Label()+" could not be checked, so nobody was signed in. Try again.")
	}
	acct := models.ExternalAccount{Provider: pr.ID(), Subject: got.Subject, Email: got.Email, EmailVerified: got.EmailVerified,
		Name: got.Name, Login: got.Login}
	switch flow.Purpose {
	case models.FlowLogin:
		return p.finishSignIn(c, pr, acct, flow.ReturnTo)
	case models.FlowLink, models.FlowReauth:
		s := sessionOf(c)
		if s == nil || s.User.ID != flow.UserID || s.Token.Digest != flow.Session {
			return p.oauthFailure(c, http.StatusUnauthorized, "Please log in again",
				"The session that started this is no longer signed in here.")
		}
		if flow.Purpose == models.FlowLink {
			return p.finishLink(c, s, pr, acct)
		}
		return p.finishReauth(c, s, pr, acct, flow.ReturnTo)
	}
	return p.oauthFailure(c, http.StatusBadRequest, "That sign-in link does not work", "Start again from the log-in page.")
}

// truncateParam keeps a provider's error code short in the log.
func truncateParam(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// finishSignIn signs the provider account in (or up), as a password login
// does: a new session cookie, a fresh CSRF token, the previous session of
// this browser ended.
func (p *pages) finishSignIn(c echo.Context, pr oauth.Provider, acct models.ExternalAccount, returnTo string) error {
	ctx, meta := c.Request().Context(), clientMeta(c)
	res, err := p.Users.ExternalSignIn(ctx, acct, pr.AutoLink(), 0, meta)
	var link *models.LinkRequiredError
	switch {
	case errors.As(err, &link):
		return p.askToLink(c, pr, link.Account, returnTo)
	case errors.Is(err, models.ErrLoginFailed):
		return p.oauthFailure(c, http.StatusForbidden, "This account is disabled", "It cannot be signed in to.")
	case err != nil:
		return err
	}
	p.startSession(c, res.Token)
	if res.Linked {
		p.setFlash(c, "linked")
	}
	return seeOther(c, orHome(returnTo))
}

// askToLink is "an account with this email exists": the provider account
// waits (server-side, bound to this browser, 10 minutes) for its owner to
// log in with their password, which links it (SECURITY O4).
func (p *pages) askToLink(c echo.Context, pr oauth.Provider, acct models.ExternalAccount, returnTo string) error {
	handle := randomString(32)
	f := models.Flow{Purpose: models.FlowPendingLink, Provider: pr.ID(), Account: &acct, ReturnTo: returnTo}
	if err := p.Users.SaveFlow(c.Request().Context(), handle, p.browserBinding(c), f); err != nil {
		return err
	}
	c.SetCookie(p.newCookie(linkCookie, handle, int(models.FlowTTL/time.Second)))
	pg := p.page(c, "Log in to link "+pr.Label())
	return render(c, http.StatusConflict, views.LinkPromptPage(pg, views.LinkPrompt{Provider: views.Provider{ID: pr.ID(),
		Label: pr.Label(), Kind: pr.Kind()}, Email: acct.Email}))
}

// linkPending links the provider account waiting in this browser (see
// askToLink) to the user who just logged in with a password, when that is
// the account whose address the provider gave: a pending link planted in
// someone's browser cannot attach itself to whatever account they log in
// to. It says what happened, for the flash.
func (p *pages) linkPending(c echo.Context, u *models.User) string {
	handle := p.cookieValue(c, linkCookie)
	if handle == "" {
		return ""
	}
	p.expireCookie(c, linkCookie)
	ctx := c.Request().Context()
	f, err := p.Users.TakeFlow(ctx, handle, p.cookieValue(c, oauthCookie))
	if err != nil || f.Purpose != models.FlowPendingLink || f.Account == nil {
		return "link-expired"
	}
	if models.EmailKey(f.Account.Email) != models.EmailKey(u.Email) {
		return "link-failed"
	}
	if err := p.Users.LinkIdentity(ctx, u.ID, *f.Account, clientMeta(c)); err != nil {
		if !errors.Is(err, models.ErrIdentityTaken) {
			p.reqLog(c).Warn("linking after login", "provider", f.Provider, "err", err)
		}
		return "link-failed"
	}
	return "linked"
}

// handleLink is POST /link/<id>: add a provider to the signed-in account.
// It needs a recent authentication: the password typed with the button,
// or a login (or re-authentication) within Users.RecentAuth.
func (p *pages) handleLink(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	pr := p.provider(c)
	if pr == nil {
		return p.oauthFailure(c, http.StatusNotFound, "No such sign-in", "This site does not offer that way to sign in.")
	}
	if err := p.Users.Confirm(c.Request().Context(), s, c.FormValue("password"), clientMeta(c)); err != nil {
		if resp, status, ok := busyResponse(c, err); ok {
			return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
		}
		if errors.Is(err, models.ErrReauthRequired) {
			return p.oauthFailure(c, http.StatusForbidden, "Confirm it's you first",
				"Adding a way to sign in needs a recent sign-in. Use “Confirm with …” on your account page, then add it.")
		}
		if errors.Is(err, models.ErrWrongPassword) {
			return p.oauthFailure(c, http.StatusUnauthorized, "Wrong password",
				"To add a way to sign in, type your current password with it.")
		}
		return err
	}
	return p.startFlow(c, pr, models.Flow{Purpose: models.FlowLink, Provider: pr.ID(), UserID: s.User.ID, Session: s.Token.Digest, ReturnTo: "/"})
}

func (p *pages) finishLink(c echo.Context, s *models.Session, pr oauth.Provider, acct models.ExternalAccount) error {
	err := p.Users.LinkIdentity(c.Request().Context(), s.User.ID, acct, clientMeta(c))
	if errors.Is(err, models.ErrIdentityTaken) {
		return p.oauthFailure(c, http.StatusConflict, "Linked to another account",
			"This "+pr.Label()+" account already signs in to another account here. Unlink it there first.")
	}
	if err != nil {
		return err
	}
	p.setFlash(c, "linked")
	return seeOther(c, "/account")
}

// finishReauth accepts the provider's answer as a fresh authentication
// only when it is one of the account's own identities.
func (p *pages) finishReauth(c echo.Context, s *models.Session, pr oauth.Provider, acct models.ExternalAccount, returnTo string) error {
	ctx := c.Request().Context()
	u, err := p.Users.FindUserByIdentity(ctx, acct.Provider, acct.Subject)
	if errors.Is(err, models.ErrNotFound) || err == nil && u.ID != s.User.ID {
		return p.oauthFailure(c, http.StatusForbidden, "That is not this account's "+pr.Label(),
			"Confirm with the "+pr.Label()+" account that signs in to this account.")
	}
	if err != nil {
		return err
	}
	if err := p.Users.Reauthenticated(ctx, s, pr.ID(), clientMeta(c)); err != nil {
		return err
	}
	p.setFlash(c, "reauthenticated")
	return seeOther(c, orHome(returnTo))
}

// handleUnlink is POST /unlink/<identity id>.
func (p *pages) handleUnlink(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	id, err := strconv.ParseInt(c.Param("identity"), 10, 64)
	if err != nil {
		return p.oauthFailure(c, http.StatusNotFound, "No such sign-in method", "It may have been removed already.")
	}
	_, err = p.Users.UnlinkIdentity(c.Request().Context(), s.User.ID, id, clientMeta(c))
	switch {
	case errors.Is(err, models.ErrLastSignInMethod):
		return p.oauthFailure(c, http.StatusConflict, "That is your only way to sign in",
			"Set a password (use “Reset password”) or add another way to sign in first, then remove this one.")
	case errors.Is(err, models.ErrNotFound):
		return p.oauthFailure(c, http.StatusNotFound, "No such sign-in method", "It may have been removed already.")
	case err != nil:
		return err
	}
	p.setFlash(c, "unlinked")
	return seeOther(c, "/account")
}

// providerView is the button data of a configured provider; one that is
// no longer configured (its identities remain) shows under its id.
func (p *pages) providerView(id string) views.Provider {
	if p.Providers != nil {
		if pr, ok := p.Providers.Get(id); ok {
			return views.Provider{ID: pr.ID(), Label: pr.Label(), Kind: pr.Kind()}
		}
	}
	return views.Provider{ID: id, Label: id, Kind: "oidc"}
}

// signInMethods is the account page's "Sign-in methods": the password,
// the linked providers (removable), the ready ones to add, and for an
// account without a password the providers it can confirm itself with.
func (p *pages) signInMethods(c echo.Context, s *models.Session) (views.Methods, error) {
	ids, err := p.Users.IdentitiesOf(c.Request().Context(), s.User.ID)
	if err != nil {
		return views.Methods{}, err
	}
	m := views.Methods{HasPassword: s.User.HasPassword(), Recent: p.Users.RecentlyAuthenticated(s)}
	m.NeedPassword = m.HasPassword && !m.Recent
	linked := map[string]bool{}
	for _, id := range ids {
		linked[id.Provider] = true
		detail := ""
		for _, k := range []string{"email", "login", "displayName"} {
			if v, ok, _ := id.Profile.String(k); ok && v != "" {
				detail = v
				break
			}
		}
		pv := p.providerView(id.Provider)
		m.Linked = append(m.Linked, views.Method{IdentityID: id.ID, Provider: pv, Detail: detail, LinkedAt: formatSeen(id.Created)})
		if pr, ok := p.providerOf(id.Provider); ok && pr.Ready() {
			m.Reauth = append(m.Reauth, pv)
		}
	}
	for _, pr := range p.providerButtons() {
		if !linked[pr.ID] && (m.HasPassword || m.Recent) {
			m.Available = append(m.Available, pr)
		}
	}
	return m, nil
}

func (p *pages) providerOf(id string) (oauth.Provider, bool) {
	if p.Providers == nil {
		return nil, false
	}
	return p.Providers.Get(id)
}
