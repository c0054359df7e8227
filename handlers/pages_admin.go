package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/views"
)

// The admin pages (issue 13, SECURITY A1): for accounts with the admin
// role (latchkey user grant-admin). Everyone else gets 403 on every route
// under /admin, except a signed-out GET, which goes to /login. Every action
// is a POST with the CSRF token that asks for the admin's own password
// again (an admin without one: a sign-in within RecentAuth, else 403 and
// the way to confirm on /account), goes through the models' operator
// actions with ClientMeta.Actor = admin:<id> (the audit row on the target
// account names the admin) and lands back on the page with a flash. An
// admin cannot disable or delete their own account here: that would lock
// them out mid-action; the CLI can.

const (
	adminPageSize   = 50
	adminAuditLimit = 50
	adminDeadLimit  = 200
)

func (p *pages) registerAdminPages(e *echo.Echo, mw []echo.MiddlewareFunc) {
	amw := append(slices.Clip(mw), p.requireAdmin)
	// Every path takes every method behind requireAdmin, so a non-admin
	// gets 403 whatever they send (the router would answer 405 before any
	// middleware ran); an admin gets 405 for a method the page lacks.
	route := func(methods []string, path string, h echo.HandlerFunc) {
		e.Any(path, methodNotAllowed(methods), amw...)
		e.Match(methods, path, h, amw...)
	}
	get, post := []string{http.MethodGet, http.MethodHead}, []string{http.MethodPost}
	route(get, "/admin", p.handleAdminUsers)
	route(get, "/admin/users/:id", p.handleAdminUser)
	for action, do := range map[string]adminActionFunc{
		"disable":         p.adminDisable,
		"enable":          p.adminEnable,
		"revoke-sessions": p.adminRevokeSessions,
		"reset-link":      p.adminResetLink,
		"reset-factors":   p.adminResetFactors,
		"grant-admin":     p.adminSetAdmin(true),
		"revoke-admin":    p.adminSetAdmin(false),
		"delete":          p.adminDelete,
	} {
		route(post, "/admin/users/:id/"+action, p.adminAction(do))
	}
	route(get, "/admin/outbox", p.handleAdminOutbox)
	route(post, "/admin/outbox/:id/retry", p.handleAdminRetry)
	// Anything else under /admin: 403 for a non-admin too, 404 for an admin.
	e.Any("/admin/*", func(echo.Context) error { return echo.ErrNotFound }, amw...)
}

// methodNotAllowed answers 405 with the methods a path takes.
func methodNotAllowed(allow []string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, strings.Join(allow, ", "))
		return echo.ErrMethodNotAllowed
	}
}

// requireAdmin lets only a session of an admin through.
func (p *pages) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s := sessionOf(c)
		if s == nil && (c.Request().Method == http.MethodGet || c.Request().Method == http.MethodHead) {
			return seeOther(c, "/login")
		}
		if s == nil || !s.User.Admin {
			return render(c, http.StatusForbidden, views.ResponsePage(p.page(c, "Admins only"), views.Response{
				Title: "Admins only", Tone: "error",
				Content:    "These pages are for the administrators of this site, and your account is not one.",
				RedirectTo: "/", RedirectToLinkText: "Go home"}))
		}
		return next(c)
	}
}

// adminPage is the layout data of an admin page: full width.
func (p *pages) adminPage(c echo.Context, title string) views.Page {
	pg := p.page(c, title)
	pg.Full = true
	return pg
}

// adminAuth is what the admin's forms ask of them.
func (p *pages) adminAuth(s *models.Session) views.AdminAuth {
	if s.User.HasPassword() {
		return views.AdminAuth{Password: true}
	}
	return views.AdminAuth{Stale: !p.Users.RecentlyAuthenticated(s)}
}

// adminMeta is the ClientMeta of an admin's action: the request, and the
// admin as the actor.
func adminMeta(c echo.Context, s *models.Session) models.ClientMeta {
	meta := clientMeta(c)
	meta.Actor = models.AdminActor(s.User.ID)
	return meta
}

// adminFailure is a readable page for a refused action, with the way back.
func (p *pages) adminFailure(c echo.Context, status int, title, content, back string) error {
	return render(c, status, views.ResponsePage(p.page(c, title), views.Response{
		Title: title, Content: content, RedirectTo: back, RedirectToLinkText: "Go back", Tone: "error"}))
}

// adminConfirm asks the admin to confirm it is them (models.Users.Confirm,
// SECURITY S9): their password from the form, or a recent sign-in. A
// failure is answered here: 422 with no password typed, 401 for a wrong
// one (counted against the admin's account like a login), 403 when a
// recent sign-in is needed, 429 when throttled.
func (p *pages) adminConfirm(c echo.Context, s *models.Session, back string) (bool, error) {
	pw := c.FormValue("password")
	if pw == "" && s.User.HasPassword() {
		return false, p.adminFailure(c, http.StatusUnprocessableEntity, "Type your password",
			"Every admin action asks for your own password again. Type it beside the button.", back)
	}
	err := p.Users.Confirm(c.Request().Context(), s, pw, clientMeta(c))
	if err == nil {
		return true, nil
	}
	if resp, status, ok := busyResponse(c, err); ok {
		return false, render(c, status, views.ResponsePage(p.page(c, resp.Title), resp))
	}
	switch {
	case errors.Is(err, models.ErrWrongPassword):
		return false, p.adminFailure(c, http.StatusUnauthorized, "Wrong password",
			"That is not your password, so nothing was done. Type the password you log in with.", back)
	case errors.Is(err, models.ErrReauthRequired):
		return false, render(c, http.StatusForbidden, views.ResponsePage(p.page(c, "Confirm it's you first"), views.Response{
			Title: "Confirm it's you first", Tone: "error",
			Content:    "Admin actions need a recent sign-in, and yours is not recent. Confirm it's you on your account page, then try again.",
			RedirectTo: accountPath, RedirectToLinkText: "Go to your account"}))
	}
	return false, err
}

// pathID is the numeric id in the path, or 0.
func pathID(c echo.Context) int64 {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

func adminUserPath(id int64) string { return "/admin/users/" + strconv.FormatInt(id, 10) }

// handleAdminUsers is GET /admin?q=…&page=N: a page of the user list.
func (p *pages) handleAdminUsers(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	page, err := strconv.Atoi(c.QueryParam("page"))
	if err != nil || page < 1 {
		page = 1
	}
	page = min(page, 1_000_000)
	res, err := p.Users.ListUsers(c.Request().Context(), models.UserQuery{Query: q, Limit: adminPageSize, Offset: (page - 1) * adminPageSize})
	if err != nil {
		return err
	}
	v := views.AdminUsersView{Query: q, Total: res.Total, Page: page, Pages: (res.Total + adminPageSize - 1) / adminPageSize}
	for _, u := range res.Users {
		v.Users = append(v.Users, views.AdminUserRow{ID: u.ID, Email: u.Email, Username: u.Username, Admin: u.Admin,
			Disabled: u.Disabled, Unverified: u.EmailVerified != nil && !*u.EmailVerified, HasPassword: u.HasPassword,
			Created: formatSeen(u.Created), LastLogin: formatNever(u.LastLogin), Sessions: u.Sessions})
	}
	if len(v.Users) > 0 {
		v.From, v.To = res.Offset+1, res.Offset+len(v.Users)
	}
	link := func(n int) string {
		vals := url.Values{}
		if q != "" {
			vals.Set("q", q)
		}
		if n > 1 {
			vals.Set("page", strconv.Itoa(n))
		}
		if len(vals) == 0 {
			return "/admin"
		}
		return "/admin?" + vals.Encode()
	}
	if page > 1 {
		v.PrevURL = link(min(page-1, max(v.Pages, 1)))
	}
	if page < v.Pages {
		v.NextURL = link(page + 1)
	}
	return render(c, http.StatusOK, views.AdminUsersPage(p.adminPage(c, "Users"), v))
}

// formatNever is formatSeen with "never" for a zero time.
func formatNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return formatSeen(t)
}

// handleAdminUser is GET /admin/users/:id.
func (p *pages) handleAdminUser(c echo.Context) error {
	id := pathID(c)
	if id == 0 {
		return echo.ErrNotFound
	}
	ctx := c.Request().Context()
	d, err := p.Users.UserDetail(ctx, id, adminAuditLimit)
	if errors.Is(err, models.ErrNotFound) {
		return echo.ErrNotFound
	}
	if err != nil {
		return err
	}
	s := sessionOf(c)
	u := d.User
	v := views.AdminUserView{ID: u.ID, Email: u.Email, Username: u.Username, Verified: u.EmailVerified != nil && *u.EmailVerified,
		Placeholder: u.EmailPlaceholder, Disabled: u.Disabled, DisabledAt: formatSeen(u.DisabledAt), Admin: u.Admin,
		HasPassword: u.HasPassword(), Created: formatSeen(u.Created), LastLogin: formatNever(d.LastLogin),
		TOTP: d.Factors.TOTP, Recovery: d.Factors.RecoveryLeft, Passkeys: d.Factors.Passkeys,
		Self: u.ID == s.User.ID, Auth: p.adminAuth(s)}
	for _, x := range d.Sessions {
		method := "password"
		if x.Method != "" {
			method = p.providerView(x.Method).Label
		}
		expires := "never"
		if !x.Expires.IsZero() {
			expires = formatSeen(x.Expires)
		}
		v.Sessions = append(v.Sessions, views.AdminSessionRow{Created: formatSeen(x.Created), LastSeen: formatSeen(x.LastUsed),
			Expires: expires, IP: x.IP, UserAgent: x.UserAgent, Method: method})
	}
	for _, x := range d.Identities {
		v.Identities = append(v.Identities, views.AdminIdentityRow{Provider: p.providerView(x.Provider).Label,
			Subject: x.Subject, Linked: formatSeen(x.Created)})
	}
	admins := map[string]string{} // actor → what the column shows
	for _, a := range d.Audit {
		row := views.AdminAuditRow{Time: formatSeen(a.Time), Kind: a.Kind, Actor: a.Actor, IP: a.IP, Detail: a.Detail}
		if a.Actor == models.ActorCLI {
			row.Actor = "latchkey user (CLI)"
		} else if rest, ok := strings.CutPrefix(a.Actor, "admin:"); ok {
			if aid, err := strconv.ParseInt(rest, 10, 64); err == nil {
				name, seen := admins[a.Actor]
				if !seen {
					name = "admin " + rest + " (deleted)"
					if au, err := p.Users.FindUserByID(ctx, aid); err == nil {
						name = au.Email
					} else if !errors.Is(err, models.ErrNotFound) {
						return err
					}
					admins[a.Actor] = name
				}
				row.Actor, row.ActorURL = name, adminUserPath(aid)
			}
		}
		v.Audit = append(v.Audit, row)
	}
	return render(c, http.StatusOK, views.AdminUserPage(p.adminPage(c, u.Email), v))
}

// adminActionFunc does one action on target for the admin of s and
// returns the flash key of the page it lands on and that page ("" for the
// target's own page).
type adminActionFunc func(c echo.Context, s *models.Session, target *models.User, meta models.ClientMeta) (flash, to string, err error)

// adminAction wraps an action: the target must exist (404), the admin
// confirms it is them, then the action runs with the admin as the actor
// and the browser lands back with a flash.
func (p *pages) adminAction(do adminActionFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := pathID(c)
		if id == 0 {
			return echo.ErrNotFound
		}
		s := sessionOf(c)
		back := adminUserPath(id)
		target, err := p.Users.FindUserByID(c.Request().Context(), id)
		if errors.Is(err, models.ErrNotFound) {
			return p.adminFailure(c, http.StatusNotFound, "No such account", "That account does not exist (any more).", "/admin")
		}
		if err != nil {
			return err
		}
		if ok, err := p.adminConfirm(c, s, back); !ok {
			return err
		}
		flash, to, err := do(c, s, target, adminMeta(c, s))
		if errors.Is(err, models.ErrNotFound) { // deleted meanwhile
			return p.adminFailure(c, http.StatusNotFound, "No such account", "That account does not exist (any more).", "/admin")
		}
		if me, ok := models.AsError(err); ok && me.Kind == models.KindUnprocessable {
			return p.adminFailure(c, http.StatusUnprocessableEntity, "That can't be done", me.Message, back)
		}
		if err != nil {
			return err
		}
		if to == "" {
			to = back
		}
		p.setFlash(c, flash)
		return seeOther(c, to)
	}
}

// errSelf refuses an action that would lock the admin out of their own
// account from these pages.
var errSelf = &models.Error{Kind: models.KindUnprocessable, Code: "ADMIN_SELF",
	Message: "You can't disable or delete your own account from the admin pages. Another admin can, or the CLI (latchkey user)."}

func (p *pages) adminDisable(c echo.Context, s *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	if u.ID == s.User.ID {
		return "", "", errSelf
	}
	_, err := p.Users.DisableUser(c.Request().Context(), u.ID, meta)
	return "admin-disabled", "", err
}

func (p *pages) adminEnable(c echo.Context, _ *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	changed, err := p.Users.EnableUser(c.Request().Context(), u.ID, meta)
	if !changed {
		return "admin-was-enabled", "", err
	}
	return "admin-enabled", "", err
}

func (p *pages) adminRevokeSessions(c echo.Context, _ *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	_, err := p.Users.RevokeSessions(c.Request().Context(), u.ID, meta)
	return "admin-sessions-revoked", "", err
}

func (p *pages) adminResetLink(c echo.Context, _ *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	_, err := p.Users.SendResetLink(c.Request().Context(), u.ID, meta)
	return "admin-reset-sent", "", err
}

func (p *pages) adminResetFactors(c echo.Context, _ *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	return "admin-factors-reset", "", p.Users.ResetSecondFactors(c.Request().Context(), u.ID, meta)
}

func (p *pages) adminSetAdmin(on bool) adminActionFunc {
	return func(c echo.Context, s *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
		_, err := p.Users.SetAdmin(c.Request().Context(), u.ID, on, meta)
		switch {
		case on:
			return "admin-granted", "", err
		case u.ID == s.User.ID: // the admin pages are closed to them now
			return "admin-revoked", "/", err
		}
		return "admin-revoked", "", err
	}
}

// adminDelete deletes the account once the form's confirm field repeats
// its address (a slip of the mouse deletes nothing).
func (p *pages) adminDelete(c echo.Context, s *models.Session, u *models.User, meta models.ClientMeta) (string, string, error) {
	if u.ID == s.User.ID {
		return "", "", errSelf
	}
	if models.EmailKey(c.FormValue("confirm")) != models.EmailKey(u.Email) {
		return "", "", &models.Error{Kind: models.KindUnprocessable, Code: "CONFIRM",
			Message: "To delete the account, type its email address, " + u.Email + ", in the box beside the button. Nothing was deleted."}
	}
	_, err := p.Users.DeleteUser(c.Request().Context(), u.ID, meta)
	return "admin-deleted", "/admin", err
}

// handleAdminOutbox is GET /admin/outbox: the dead mail, with its last
// error and a retry; never a body (they hold links).
func (p *pages) handleAdminOutbox(c echo.Context) error {
	v := views.AdminOutboxView{Auth: p.adminAuth(sessionOf(c)), Unavailable: p.Outbox == nil}
	if p.Outbox != nil {
		dead, err := p.Outbox.ListDead(c.Request().Context(), adminDeadLimit)
		if err != nil {
			return err
		}
		for _, m := range dead {
			v.Mail = append(v.Mail, views.AdminMailRow{ID: m.ID, Kind: m.Kind, To: m.To, Created: formatSeen(m.Created),
				DeadAt: formatSeen(m.DeadAt), Attempts: m.Attempts, LastError: m.LastError, Retryable: m.Retryable})
		}
	}
	return render(c, http.StatusOK, views.AdminOutboxPage(p.adminPage(c, "Dead mail"), v))
}

// handleAdminRetry is POST /admin/outbox/:id/retry: the message goes back
// in the queue (models.Outbox.RetryDead), audited with the admin actor.
func (p *pages) handleAdminRetry(c echo.Context) error {
	const back = "/admin/outbox"
	id := pathID(c)
	if id == 0 || p.Outbox == nil {
		return echo.ErrNotFound
	}
	s := sessionOf(c)
	if ok, err := p.adminConfirm(c, s, back); !ok {
		return err
	}
	_, err := p.Outbox.RetryDead(c.Request().Context(), id, adminMeta(c, s))
	switch {
	case errors.Is(err, models.ErrNotFound):
		return p.adminFailure(c, http.StatusNotFound, "Not in the dead mail",
			"That message is not dead (any more): it was retried already, or deleted as old.", back)
	case errors.Is(err, models.ErrMailCleared):
		me, _ := models.AsError(err)
		return p.adminFailure(c, http.StatusUnprocessableEntity, "That can't be done", me.Message, back)
	case err != nil:
		return err
	}
	p.setFlash(c, "admin-retried")
	return seeOther(c, back)
}
