package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

const sessionKey = "latchkey.apiSession"

// apiSession resolves the request's token (LoopBack transports) to a
// session once per request. nil means anonymous: no token, or one that is
// unknown, expired, revoked or of another scope.
func (h *Handler) apiSession(c echo.Context) (*models.Session, error) {
	if v, ok := c.Get(sessionKey).(*models.Session); ok {
		return v, nil
	}
	raw := TokenFromRequest(c.Request())
	if raw == "" {
		return nil, nil
	}
	s, err := h.Users.Authenticate(c.Request().Context(), raw, models.ScopeSession)
	if err != nil || s == nil {
		return nil, err
	}
	c.Set(sessionKey, s)
	return s, nil
}

// ownerID checks that the caller's token belongs to the user in the :id
// path segment: an integer id, or an ObjectId that is the user's alias
// (userIDParam). Anything else — no token, another user, an id that is not
// a number or not there, an ObjectId of no user — is LoopBack's 401
// AUTHORIZATION_REQUIRED.
func (h *Handler) ownerID(c echo.Context) (*models.Session, int64, error) {
	raw, err := h.userIDParam(c.Request().Context(), c.Param("id"))
	if err != nil {
		return nil, 0, err
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, 0, models.ErrAuthRequired
	}
	s, err := h.apiSession(c)
	if err != nil {
		return nil, 0, err
	}
	if s == nil || s.User.ID != id {
		return nil, 0, models.ErrAuthRequired
	}
	return s, id, nil
}

// handleAPICreate is POST /api/users (User.create).
func (h *Handler) handleAPICreate(c echo.Context) error {
	body, err := ReadBody(c)
	if errors.Is(err, errArrayBody) {
		return &APIError{Status: 400, Name: "Error", Code: "BULK_CREATE_UNSUPPORTED", Message: "Create one user per request"}
	}
	if err != nil {
		return err
	}
	u, err := h.Users.CreateUser(c.Request().Context(), body, clientMeta(c))
	if err != nil {
		return err
	}
	return writeRaw(c, http.StatusOK, MarshalUser(u))
}

// loginResponse is LoopBack's AccessToken JSON.
type loginResponse struct {
	ID      string          `json:"id"`
	TTL     int64           `json:"ttl"`
	Created string          `json:"created"`
	UserID  int64           `json:"userId"`
	User    json.RawMessage `json:"user,omitempty"`
}

// ISOTime formats a time as LoopBack does: ISO-8601 UTC with milliseconds.
func ISOTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// handleAPILogin is POST /api/users/login.
func (h *Handler) handleAPILogin(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	var cred models.Credentials
	email, present, ok := body.String("email")
	if present && !ok {
		return models.ErrInvalidEmail
	}
	cred.Email = email
	username, present, ok := body.String("username")
	if present && !ok {
		return models.ErrInvalidUser
	}
	cred.Username = username
	if cred.Email == "" && cred.Username == "" {
		return models.ErrLoginRequired
	}
	// A password that is not a string can never match (no operator injection).
	pw, _, pwOK := body.String("password")
	if !pwOK {
		pw = ""
	}
	cred.Password = pw
	if raw, ok := body.Get("ttl"); ok {
		if cred.TTL, err = ParseTTL(raw); err != nil {
			return err
		}
	}
	tok, u, err := h.Users.Login(c.Request().Context(), cred, clientMeta(c))
	if err != nil {
		return err
	}
	return h.writeLogin(c, tok, u)
}

// writeLogin is a login's answer, LoopBack's {id, ttl, created, userId}
// and, with ?include=user, the user.
func (h *Handler) writeLogin(c echo.Context, tok *models.AccessToken, u *models.User) error {
	resp := loginResponse{ID: tok.ID, TTL: tok.TTL, Created: ISOTime(tok.Created), UserID: u.ID}
	if strings.EqualFold(c.QueryParam("include"), "user") {
		resp.User = MarshalUser(u)
	}
	return writeJSON(c, http.StatusOK, resp)
}

// handleAPILoginMFA is POST /api/users/login/mfa {mfaToken, code}: the
// second step of a login that answered MFA_REQUIRED. The answer is the
// login's. Not in LoopBack: an account without a second factor never
// sees it.
func (h *Handler) handleAPILoginMFA(c echo.Context) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	token, _, err := stringArg(body, "mfaToken")
	if err != nil {
		return err
	}
	if token == "" {
		return models.RequiredArg("mfaToken")
	}
	code, _, err := stringArg(body, "code")
	if err != nil {
		return err
	}
	if code == "" {
		return models.RequiredArg("code")
	}
	tok, u, err := h.Users.CompleteMFA(c.Request().Context(), token, code, clientMeta(c))
	if err != nil {
		return err
	}
	return h.writeLogin(c, tok, u)
}

// handleAPILogout is POST /api/users/logout: it deletes the presented token.
func (h *Handler) handleAPILogout(c echo.Context) error {
	s, err := h.apiSession(c)
	if err != nil {
		return err
	}
	errLogout := &APIError{Status: 401, Name: "Error", Message: "accessToken is required to logout"}
	if s == nil {
		return errLogout
	}
	ok, err := h.Users.Logout(c.Request().Context(), s, clientMeta(c))
	if err != nil {
		return err
	}
	if !ok {
		return errLogout
	}
	return noContent(c)
}

// handleAPIGetUser is GET /api/users/:id (owner only).
func (h *Handler) handleAPIGetUser(c echo.Context) error {
	s, _, err := h.ownerID(c)
	if err != nil {
		return err
	}
	return writeRaw(c, http.StatusOK, MarshalUser(&s.User))
}

// handleAPIPatchUser is PATCH /api/users/:id (owner only).
func (h *Handler) handleAPIPatchUser(c echo.Context) error {
	s, id, err := h.ownerID(c)
	if err != nil {
		return err
	}
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	u, err := h.Users.UpdateUser(c.Request().Context(), id, body, s.Token.Digest, clientMeta(c))
	if err != nil {
		return err
	}
	return writeRaw(c, http.StatusOK, MarshalUser(u))
}

// handleAPIReplaceUser is PUT /api/users/:id and POST /api/users/:id/replace
// (replaceById, owner only). A replace must carry the password, which may
// not be set this way, so it always ends in 422 — as LoopBack's does when
// the password is absent.
func (h *Handler) handleAPIReplaceUser(c echo.Context) error {
	if _, _, err := h.ownerID(c); err != nil {
		return err
	}
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	var v models.ValidationError
	if body.Has("password") {
		v.Add("password", "readonly", "can't be changed here: use change-password", "[hidden]")
	} else {
		v.Add("password", "presence", "can't be blank", "undefined")
	}
	return &v
}

// handleAPIDeleteUser is DELETE /api/users/:id (owner only).
func (h *Handler) handleAPIDeleteUser(c echo.Context) error {
	_, id, err := h.ownerID(c)
	if err != nil {
		return err
	}
	n, err := h.Users.DeleteUser(c.Request().Context(), id, clientMeta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]int64{"count": n})
}

// handleAPIChangePassword is POST /api/users/change-password.
func (h *Handler) handleAPIChangePassword(c echo.Context) error {
	s, err := h.apiSession(c)
	if err != nil {
		return err
	}
	if s == nil {
		return models.ErrAuthRequired
	}
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	oldPw, _, err := stringArg(body, "oldPassword")
	if err != nil {
		return err
	}
	if oldPw == "" && s.User.HasPassword() { // an account made through a provider has none: a recent sign-in stands in
		return models.RequiredArg("oldPassword")
	}
	newPw, _, err := stringArg(body, "newPassword")
	if err != nil {
		return err
	}
	if newPw == "" {
		return models.RequiredArg("newPassword")
	}
	if err := h.Users.ChangePassword(c.Request().Context(), s, oldPw, newPw, clientMeta(c)); err != nil {
		return err
	}
	return noContent(c)
}

// handleAPIDenied answers LoopBack's remote methods that the User ACLs deny
// to everyone (find, count, exists, accessTokens, ...).
func (h *Handler) handleAPIDenied(c echo.Context) error { return models.ErrAuthRequired }
