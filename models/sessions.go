package models

import (
	"context"
	"database/sql"
	"encoding/hex"
	"time"
)

// Session is an authenticated request: the token presented and its user.
type Session struct {
	Token AccessToken
	User  User
}

// Logout deletes the token of a session. It reports false when the token was
// already gone.
func (s *Users) Logout(ctx context.Context, sess *Session, meta ClientMeta) (bool, error) {
	var n int64
	now := s.now()
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropToken(sess.Token.Digest)
		res, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE digest = ?`, sess.Token.Digest[:])
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionEnded, User: &sess.User, Reason: "logout", Sessions: n, Meta: meta}); err != nil {
			return err
		}
		return tx.Audit(ctx, "logout", sess.User.ID, meta, "")
	})
	return n > 0, err
}

// SessionInfo is one live login of a user, as the sessions list shows it:
// never the token or its digest, only a short handle to revoke it by.
type SessionInfo struct {
	Handle    string // 16 hex characters: the first 8 bytes of the token's digest
	Created   time.Time
	LastUsed  time.Time // written at most once per TouchEvery, so up to a minute old
	Expires   time.Time // zero when eternal
	IP        string
	UserAgent string
	Current   bool // the session that asked
	// Method is how it signed in: "" a password, else the provider's id.
	Method string
}

// maxListedSessions bounds the list; a user with more is shown the most recent.
const maxListedSessions = 200

// ListSessions returns the live login tokens (API logins and browser
// sessions; not reset tokens) of the session's user, most recently used
// first.
func (s *Users) ListSessions(ctx context.Context, sess *Session) ([]SessionInfo, error) {
	return s.listSessions(ctx, sess.User.ID, sess.Token.Digest)
}

// listSessions is ListSessions for any user; current is the digest of the
// session asking (zero for an operator, who asks from none of them).
func (s *Users) listSessions(ctx context.Context, userID int64, current [32]byte) ([]SessionInfo, error) {
	now := s.now()
	rows, err := s.db.Query(ctx, `SELECT `+tokenColumns+` FROM access_tokens
		WHERE user_id = ? AND scopes = ? AND (expires IS NULL OR expires > ?)
		ORDER BY COALESCE(last_used, created) DESC, created DESC LIMIT ?`,
		userID, ScopeSession, ms(now), maxListedSessions)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SessionInfo
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		if t.TTL < 0 && !s.cfg.AllowEternalTokens {
			continue
		}
		info := SessionInfo{Handle: t.DigestHex(), Created: t.Created, LastUsed: t.LastUsed, Expires: t.Expires,
			IP: t.IP, UserAgent: t.UA, Current: current != [32]byte{} && t.Digest == current, Method: t.Method}
		if info.Current {
			info.LastUsed = now.Truncate(time.Millisecond)
		}
		if info.LastUsed.IsZero() {
			info.LastUsed = info.Created
		}
		out = append(out, info)
	}
	return out, rows.Err()
}

// RevokeSession ends one login of the session's user, named by its handle;
// the token fails at once everywhere. It reports false when the handle
// names no live session of that user.
func (s *Users) RevokeSession(ctx context.Context, sess *Session, handle string, meta ClientMeta) (bool, error) {
	prefix, err := hex.DecodeString(handle)
	if err != nil || len(prefix) != 8 {
		return false, nil
	}
	var gone [][32]byte
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		gone = gone[:0]
		rows, err := tx.Query(ctx, `DELETE FROM access_tokens
			WHERE user_id = ? AND scopes = ? AND substr(digest, 1, 8) = ? RETURNING digest`,
			sess.User.ID, ScopeSession, prefix)
		if err != nil {
			return err
		}
		if gone, err = scanDigests(rows); err != nil || len(gone) == 0 {
			return err
		}
		for _, d := range gone {
			tx.dropToken(d)
		}
		if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionEnded, User: &sess.User, Reason: "revoked", Sessions: int64(len(gone)), Meta: meta}); err != nil {
			return err
		}
		return tx.Audit(ctx, "session.revoked", sess.User.ID, meta, "")
	})
	return len(gone) > 0, err
}

// RevokeOtherSessions ends every login of the session's user except the
// one asking ("log out everywhere else"), after checking their password
// again. It returns how many ended.
func (s *Users) RevokeOtherSessions(ctx context.Context, sess *Session, password string, meta ClientMeta) (int64, error) {
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return 0, err
	}
	if err := s.confirmUser(ctx, sess, u, password, meta); err != nil {
		return 0, err
	}
	var n int64
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(u.ID)
		res, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND scopes = ? AND digest != ?`,
			u.ID, ScopeSession, sess.Token.Digest[:])
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if n > 0 {
			if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionEnded, User: u, Reason: "revoked", Sessions: n, Meta: meta}); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, "session.revoked-others", u.ID, meta, "")
	})
	return n, err
}

func scanDigests(rows *sql.Rows) ([][32]byte, error) {
	defer rows.Close()
	var out [][32]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var d [32]byte
		copy(d[:], b)
		out = append(out, d)
	}
	return out, rows.Err()
}
