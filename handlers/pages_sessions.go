package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// The "Your sessions" page: where the account is signed in, with a button
// to end each other session and "Log out everywhere else" (password again).

// registerSessionPages adds /sessions with the page middleware (headers
// with no-store, CSRF, session).
func (p *pages) registerSessionPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.GET("/sessions", p.handleSessionsPage, mw...)
	e.POST("/sessions/revoke", p.handleSessionRevoke, mw...)
	e.POST("/sessions/revoke-others", p.handleSessionsRevokeOthers, mw...)
}

// sessionsNotice words the result of the last action, named in the query
// after the redirect (only these fixed texts can appear).
func sessionsNotice(key string) string {
	switch key {
	case "revoked":
		return "That session is logged out."
	case "gone":
		return "That session had already ended."
	case "others":
		return "You are logged out everywhere else."
	}
	return ""
}

func formatSeen(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

func (p *pages) sessionsView(c echo.Context, s *models.Session) (views.SessionsView, error) {
	list, err := p.Users.ListSessions(c.Request().Context(), s)
	if err != nil {
		return views.SessionsView{}, err
	}
	v := views.SessionsView{Notice: sessionsNotice(c.QueryParam("done")), NoPassword: !s.User.HasPassword(),
		Recent: p.Users.RecentlyAuthenticated(s)}
	for _, x := range list {
		method := "password"
		if x.Method == "passkey" {
			method = "a passkey"
		} else if x.Method != "" {
			method = p.providerView(x.Method).Label
		}
		v.Sessions = append(v.Sessions, views.SessionRow{Handle: x.Handle, Created: formatSeen(x.Created),
			LastSeen: formatSeen(x.LastUsed), IP: x.IP, UserAgent: x.UserAgent, Current: x.Current, Method: method})
	}
	for i := range v.Sessions {
		v.Sessions[i].Device = p.deviceName(v.Sessions[i].UserAgent)
	}
	if v.NoPassword {
		m, err := p.signInMethods(c, s)
		if err != nil {
			return v, err
		}
		v.Reauth = m.Reauth
	}
	return v, nil
}

// handleSessionsPage is GET /sessions (signed in).
func (p *pages) handleSessionsPage(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	v, err := p.sessionsView(c, s)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.SessionsPage(p.page(c, "Your sessions"), v))
}

// handleSessionRevoke is POST /sessions/revoke (field sid): that session
// ends at once. Ending this browser's own session is a log-out.
func (p *pages) handleSessionRevoke(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	sid := c.FormValue("sid")
	ok, err := p.Users.RevokeSession(c.Request().Context(), s, sid, clientMeta(c))
	if err != nil {
		return err
	}
	if ok && sid == s.Token.DigestHex() {
		p.endSession(c)
		p.setFlash(c, "logged-out")
		return seeOther(c, "/")
	}
	if !ok {
		return seeOther(c, "/sessions?done=gone")
	}
	return seeOther(c, "/sessions?done=revoked")
}

// handleSessionsRevokeOthers is POST /sessions/revoke-others (field
// password): every other session ends; this one stays.
func (p *pages) handleSessionsRevokeOthers(c echo.Context) error {
	s := sessionOf(c)
	if s == nil {
		return seeOther(c, "/login")
	}
	_, err := p.Users.RevokeOtherSessions(c.Request().Context(), s, c.FormValue("password"), clientMeta(c))
	if resp, status, ok := busyResponse(c, err); ok {
		return render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	if errors.Is(err, models.ErrWrongPassword) || errors.Is(err, models.ErrReauthRequired) {
		v, verr := p.sessionsView(c, s)
		if verr != nil {
			return verr
		}
		v.PasswordError = "That password is not right. Enter the password you log in with."
		if errors.Is(err, models.ErrReauthRequired) {
			v.PasswordError = "Confirm it is you with the provider you sign in with first."
		}
		return render(c, http.StatusUnprocessableEntity, views.SessionsPage(p.page(c, "Your sessions"), v))
	}
	if err != nil {
		return err
	}
	return seeOther(c, "/sessions?done=others")
}

// deviceName words a User-Agent as people know their devices: "Chrome on
// Linux", "Safari on iOS", "Firefox" when the system is not named, "a
// browser on Windows" for one the parser does not know; "" when it knows
// neither (the page then says unknown, and shows the raw string beside).
func (p *pages) deviceName(ua string) string {
	if ua == "" {
		return ""
	}
	a := p.agents.Parse(ua)
	browser, os := string(a.Browser()), string(a.OS())
	switch os {
	case "MacOS":
		os = "macOS"
	}
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return "A browser on " + os
	}
	return ""
}
