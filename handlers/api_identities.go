package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// registerAPIIdentities adds LoopBack Passport's UserIdentity relation of
// the user, for the owner (":id" may also be "me"):
// GET /api/users/:id/identities and DELETE /api/users/:id/identities/:fk.
// Provider tokens are never stored, so never shown.
func (h *Handler) registerAPIIdentities(g *echo.Group) {
	g.GET("/:id/identities", h.handleAPIIdentities)
	g.DELETE("/:id/identities/:fk", h.handleAPIUnlink)
}

// identityJSON is one identity: LoopBack's UserIdentity fields that are
// not secret, plus the provider account's email.
type identityJSON struct {
	ID            int64  `json:"id"`
	Provider      string `json:"provider"`
	ExternalID    string `json:"externalId"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"emailVerified,omitempty"`
	Created       string `json:"created"`
	Modified      string `json:"modified"`
	UserID        int64  `json:"userId"`
}

// handleAPIIdentities is GET /api/users/:id/identities.
func (h *Handler) handleAPIIdentities(c echo.Context) error {
	s, err := h.sessionOwner(c)
	if err != nil {
		return err
	}
	ids, err := h.Users.IdentitiesOf(c.Request().Context(), s.User.ID)
	if err != nil {
		return err
	}
	out := make([]identityJSON, 0, len(ids))
	for _, id := range ids {
		j := identityJSON{ID: id.ID, Provider: id.Provider, ExternalID: id.Subject, Created: ISOTime(id.Created),
			Modified: ISOTime(id.Updated), UserID: id.UserID}
		j.Email, _, _ = id.Profile.String("email")
		if raw, ok := id.Profile.Get("emailVerified"); ok {
			v := string(raw) == "true"
			j.EmailVerified = &v
		}
		out = append(out, j)
	}
	return writeJSON(c, http.StatusOK, out)
}

// handleAPIUnlink is DELETE /api/users/:id/identities/:fk: 204, or 422
// LAST_SIGN_IN_METHOD when it is the account's only way to sign in, or
// 404 for an identity that is not the user's.
func (h *Handler) handleAPIUnlink(c echo.Context) error {
	s, err := h.sessionOwner(c)
	if err != nil {
		return err
	}
	fk := c.Param("fk")
	id, perr := strconv.ParseInt(fk, 10, 64)
	if perr == nil {
		_, err = h.Users.UnlinkIdentity(c.Request().Context(), s.User.ID, id, clientMeta(c))
	}
	if perr != nil || errors.Is(err, models.ErrNotFound) {
		return &models.Error{Kind: models.KindNotFound, Code: models.ErrNotFound.Code,
			Message: "Unknown \"UserIdentity\" id " + strconv.Quote(truncateRunes(fk, 64)) + "."}
	}
	if err != nil {
		return err
	}
	return noContent(c)
}
