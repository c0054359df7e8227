package handlers

import (
	"cmp"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// registerAPISessions adds the sessions list, which LoopBack does not have:
// GET /api/users/:id/sessions and DELETE /api/users/:id/sessions/:sid, for
// the owner (":id" may also be "me").
func (h *Handler) registerAPISessions(g *echo.Group) {
	g.GET("/:id/sessions", h.handleAPISessions)
	g.DELETE("/:id/sessions/:sid", h.handleAPIRevokeSession)
}

// sessionJSON is one session in the list: a handle, never the token.
type sessionJSON struct {
	ID        string `json:"id"`
	Created   string `json:"created"`
	LastUsed  string `json:"lastUsed"`
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
	Current   bool   `json:"current"`
	// Method is how it signed in: "password" or the provider's id.
	Method string `json:"method"`
}

// sessionOwner is ownerID that also accepts "me" for the caller.
func (h *Handler) sessionOwner(c echo.Context) (*models.Session, error) {
	if c.Param("id") != "me" {
		s, _, err := h.ownerID(c)
		return s, err
	}
	s, err := h.apiSession(c)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, models.ErrAuthRequired
	}
	return s, nil
}

// handleAPISessions is GET /api/users/:id/sessions: the user's live logins
// (created, last used — updated at most once a minute —, IP, user agent),
// the caller's own marked current.
func (h *Handler) handleAPISessions(c echo.Context) error {
	s, err := h.sessionOwner(c)
	if err != nil {
		return err
	}
	list, err := h.Users.ListSessions(c.Request().Context(), s)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{ID: x.Handle, Created: ISOTime(x.Created), LastUsed: ISOTime(x.LastUsed),
			IP: x.IP, UserAgent: x.UserAgent, Current: x.Current, Method: cmp.Or(x.Method, "password")})
	}
	return writeJSON(c, http.StatusOK, out)
}

// handleAPIRevokeSession is DELETE /api/users/:id/sessions/:sid: the token
// behind the handle fails at once (204). An unknown handle is 404 as
// LoopBack words a missing related model.
func (h *Handler) handleAPIRevokeSession(c echo.Context) error {
	s, err := h.sessionOwner(c)
	if err != nil {
		return err
	}
	sid := c.Param("sid")
	ok, err := h.Users.RevokeSession(c.Request().Context(), s, sid, clientMeta(c))
	if err != nil {
		return err
	}
	if !ok {
		return &models.Error{Kind: models.KindNotFound, Code: models.ErrNotFound.Code,
			Message: "Unknown \"session\" id " + strconv.Quote(truncateRunes(sid, 64)) + "."}
	}
	return noContent(c)
}
