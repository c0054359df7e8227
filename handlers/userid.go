package handlers

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/models"
)

// A user id as a request gives it (the :id of /api/users/:id/…, confirm's
// uid) is LoopBack's integer id, or — after `latchkey import lb3` from
// MongoDB, where users had ObjectIds and got new integer ids — the
// ObjectId the import kept as the user's alias, so that clients and mailed
// links holding the old id keep working.

// objectIDLength is the length of a MongoDB ObjectId in hex.
const objectIDLength = 24

// userIDParam returns raw with an ObjectId (24 hex digits, any case) that
// is a user's alias replaced by that user's integer id in decimal.
// Anything else comes back as it is — an integer id, a malformed id, an
// ObjectId that is nobody's alias — for the caller to answer as it always
// has for an id of no user. Only an ObjectId costs a look-up.
//
// The one place a request's user id is read: ownerID (every /api/users/:id
// route that acts on a user) and handleAPIConfirm (uid) go through it.
func (h *Handler) userIDParam(ctx context.Context, raw string) (string, error) {
	if !isObjectID(raw) {
		return raw, nil
	}
	// Aliases are stored lower-case; the /api path is lower-cased already
	// (lowerAPIPath), confirm's query is not.
	id, err := h.Users.UserIDByAlias(ctx, strings.ToLower(raw))
	if errors.Is(err, models.ErrNotFound) {
		return raw, nil
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// isObjectID reports whether s has the shape of a MongoDB ObjectId: 24 hex
// digits, any case. 24 decimal digits are one too, and never an integer id
// (int64 has at most 19).
func isObjectID(s string) bool {
	if len(s) != objectIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
