package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"
)

// TokenLength is LoopBack's access-token id length (uid2, 64 characters).
const TokenLength = 64

// Token scopes. A browser session and an API login are both ScopeSession.
const (
	ScopeSession = ""
	ScopeReset   = "reset-password"
)

const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewTokenID returns 64 characters of base62 from crypto/rand (about 381
// bits), with rejection sampling so every character is equally likely.
func NewTokenID() string {
	out := make([]byte, 0, TokenLength)
	var buf [96]byte
	for len(out) < TokenLength {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("models: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keep the distribution uniform
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == TokenLength {
				break
			}
		}
	}
	return string(out)
}

// Digest is what the database stores for a token: its SHA-256.
func Digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// ValidTokenShape reports whether s could be a token we issued; anything else
// is rejected without a database read.
func ValidTokenShape(s string) bool {
	if len(s) != TokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// AccessToken is a session, API login or reset token. ID is the token itself
// and is only known right after it is created; the database has its digest.
type AccessToken struct {
	ID       string
	Digest   [32]byte
	UserID   int64
	TTL      int64 // seconds; -1 eternal
	Created  time.Time
	Expires  time.Time // zero when eternal
	Scopes   string
	LastUsed time.Time
	IP       string
	UA       string
	// Method is how the session signed in: "" with a password, else the
	// provider's id ("google", "dex").
	Method string
	// AuthAt is when its owner last proved who they are in this session:
	// Created, or a later re-authentication through a provider.
	AuthAt time.Time
}

// Expired reports whether the token is past its lifetime at now.
func (t *AccessToken) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// DigestHex is the digest as hex, a stable handle for a session that is not the token.
func (t *AccessToken) DigestHex() string { return hex.EncodeToString(t.Digest[:8]) }

// insertToken creates a token for a user inside tx; method is how it
// signed in ("" a password, else the provider's id).
func (t *Tx) insertToken(ctx context.Context, userID, ttl int64, scope, method string, meta ClientMeta) (*AccessToken, error) {
	id := NewTokenID()
	tok := &AccessToken{ID: id, Digest: Digest(id), UserID: userID, TTL: ttl, Created: t.now.Truncate(time.Millisecond),
		Scopes: scope, IP: meta.IP, UA: truncate(meta.UserAgent, 512), LastUsed: t.now.Truncate(time.Millisecond), Method: method}
	tok.AuthAt = tok.Created
	var expires any
	if ttl >= 0 {
		tok.Expires = tok.Created.Add(time.Duration(ttl) * time.Second)
		expires = ms(tok.Expires)
	}
	_, err := t.Exec(ctx, `INSERT INTO access_tokens(digest, user_id, ttl, created, expires, scopes, last_used, ip, user_agent, method)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, tok.Digest[:], userID, ttl, ms(tok.Created), expires, scope, ms(tok.Created), tok.IP, tok.UA, method)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

const tokenColumns = `digest, user_id, ttl, created, expires, scopes, last_used, ip, user_agent, method, auth_at`

func scanToken(row rowScanner) (*AccessToken, error) {
	var (
		t        AccessToken
		digest   []byte
		created  int64
		expires  sql.NullInt64
		lastUsed sql.NullInt64
		authAt   sql.NullInt64
	)
	err := row.Scan(&digest, &t.UserID, &t.TTL, &created, &expires, &t.Scopes, &lastUsed, &t.IP, &t.UA, &t.Method, &authAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	copy(t.Digest[:], digest)
	t.Created = fromMS(created)
	t.Expires = nullMS(expires)
	t.LastUsed = nullMS(lastUsed)
	t.AuthAt = t.Created
	if authAt.Valid {
		t.AuthAt = fromMS(authAt.Int64)
	}
	return &t, nil
}

// Authenticate resolves a presented token to a session. It returns
// (nil, nil) for anything that is not a live token of a live user with the
// wanted scope: unknown, malformed, expired, revoked, or a reset token
// presented where a session is wanted. Most calls are answered from memory.
func (s *Users) Authenticate(ctx context.Context, raw string, scope string) (*Session, error) {
	if !ValidTokenShape(raw) {
		return nil, nil
	}
	now := s.now()
	d := Digest(raw)
	sess := new(Session)
	tokenOK, userOK := s.cache.session(d, now, sess)
	if !tokenOK {
		gen := s.cache.generation()
		t, err := scanToken(s.db.QueryRow(ctx, `SELECT `+tokenColumns+` FROM access_tokens WHERE digest = ?`, d[:]))
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sess.Token = *t
		s.cache.putToken(sess.Token, gen, now)
	}
	tok := &sess.Token
	if tok.Expired(now) || tok.Scopes != scope || tok.TTL < 0 && !s.cfg.AllowEternalTokens {
		return nil, nil
	}
	if !userOK {
		u, err := s.FindUserByID(ctx, tok.UserID)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		sess.User = *u
	}
	if sess.User.Disabled {
		return nil, nil
	}
	if s.idleExpired(tok, now) {
		s.endIdle(ctx, sess, now)
		return nil, nil
	}
	tok.ID = raw
	if now.Sub(tok.LastUsed) >= s.cfg.TouchEvery {
		s.touch(ctx, tok.Digest, now)
	}
	return sess, nil
}

// idleExpired reports whether a session has been unused for longer than
// Config.IdleTimeout at now. LastUsed is written at most every TouchEvery
// (touch), so a use up to TouchEvery after it may not show: the session
// ends only when even that use would be IdleTimeout ago. An idle session
// thus ends between IdleTimeout and IdleTimeout+TouchEvery after its last
// use, and a session in use never ends early.
func (s *Users) idleExpired(tok *AccessToken, now time.Time) bool {
	return s.cfg.IdleTimeout > 0 && tok.Scopes == ScopeSession && !tok.LastUsed.IsZero() &&
		now.Sub(tok.LastUsed) > s.cfg.IdleTimeout+s.cfg.TouchEvery
}

// endIdle deletes a session that idled out (at once on every replica, as a
// logout) and audits it as session.idle; a failure to delete leaves the
// session refused all the same, and it is tried again at its next use.
func (s *Users) endIdle(ctx context.Context, sess *Session, now time.Time) {
	_ = s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropToken(sess.Token.Digest)
		res, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE digest = ?`, sess.Token.Digest[:])
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return tx.Audit(ctx, "session.idle", sess.Token.UserID, ClientMeta{}, "")
	})
}

// touch records when a token was last used, at most once per TouchEvery per
// token, so authenticated reads do not each cost a write.
func (s *Users) touch(ctx context.Context, d [32]byte, now time.Time) {
	s.cache.touch(d, now)
	_ = s.db.Write(ctx, now, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE access_tokens SET last_used = ? WHERE digest = ?`, ms(now), d[:])
		return err
	})
}

// PruneExpired deletes up to limit expired tokens and returns how many went;
// expired verification links and address changes go with them.
// Called in the background in small batches so the writer is never held long.
func (s *Users) PruneExpired(ctx context.Context, limit int) (int64, error) {
	var n int64
	now := s.now()
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		if ok, err := tx.tryLock(ctx, "prune-tokens"); !ok || err != nil {
			return err // another replica is pruning
		}
		res, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE digest IN (
			SELECT digest FROM access_tokens WHERE expires IS NOT NULL AND expires <= ? LIMIT ?)`, ms(now), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `DELETE FROM verification_tokens WHERE digest IN (
			SELECT digest FROM verification_tokens WHERE expires <= ? LIMIT ?)`, ms(now), limit); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM email_changes WHERE user_id IN (
			SELECT user_id FROM email_changes WHERE expires <= ? LIMIT ?)`, ms(now), limit)
		return err
	})
	return n, err
}
