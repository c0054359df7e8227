package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config holds the account rules.
type Config struct {
	TokenTTL            int64  // seconds, default lifetime of a login token (LoopBack: 1209600)
	TokenMaxTTL         int64  // seconds, the cap on a requested ttl (LoopBack: 31556926)
	ResetTTL            int64  // seconds, lifetime of a reset token (LoopBack: 900)
	VerifyTTL           int64  // seconds, lifetime of an email confirmation link
	AllowEternalTokens  bool   // accept ttl -1
	CompatEmailNotFound bool   // reset for an unknown email answers 404 as LoopBack
	Password            Policy // the rules a new password must meet
	Now                 func() time.Time
	CacheSize           int           // tokens and users kept in memory; default 100000
	CacheFresh          time.Duration // how long a cached entry is trusted; default 10s
	TouchEvery          time.Duration // last_used is written at most this often per token; default 1m
}

// Users is the account service: the LoopBack User and AccessToken methods
// over the store. Both the JSON API and the pages call it.
type Users struct {
	db     *DB
	hasher *Hasher
	cfg    Config
	cache  *authCache

	onReset   []func(context.Context, *Tx, ResetPasswordRequest) error
	onChanged []func(context.Context, *Tx, PasswordChanged) error
	onVerify  []func(context.Context, *Tx, VerifyEmailRequest) error

	onEmailChanged []func(context.Context, *Tx, EmailChanged) error
	limiter        *Limiter // nil: nothing is throttled
}

// NewUsers returns the account service, filling in LoopBack's defaults.
// limiter throttles logins and reset and verification mail; nil throttles
// nothing.
func NewUsers(db *DB, hasher *Hasher, limiter *Limiter, cfg Config) *Users {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 1209600
	}
	if cfg.TokenMaxTTL == 0 {
		cfg.TokenMaxTTL = 31556926
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = 900
	}
	if cfg.VerifyTTL == 0 {
		cfg.VerifyTTL = 86400
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 100000
	}
	if cfg.CacheFresh == 0 {
		cfg.CacheFresh = 10 * time.Second
	}
	if cfg.TouchEvery == 0 {
		cfg.TouchEvery = time.Minute
	}
	s := &Users{db: db, hasher: hasher, cfg: cfg, limiter: limiter}
	if cfg.CacheSize > 0 {
		s.cache = newAuthCache(cfg.CacheSize, cfg.CacheFresh)
		db.watch(s.cache)
	}
	return s
}

func (s *Users) now() time.Time { return s.cfg.Now().UTC() }

// PasswordMinLength is the password policy's minimum length in characters,
// for the forms' hints.
func (s *Users) PasswordMinLength() int { return s.cfg.Password.MinLength }

// ResetTTL is the lifetime of a reset token, in seconds.
func (s *Users) ResetTTL() int64 { return s.cfg.ResetTTL }

// VerifyTTL is the lifetime of an email confirmation link, in seconds.
func (s *Users) VerifyTTL() int64 { return s.cfg.VerifyTTL }

// CheckPasswordPolicy checks a password about to be set against the rules
// every way of setting one applies (sign-up, change, reset), with what the
// account's password may not contain. The forms call it before anything
// else, so a refused password shows beside its field with the others.
func (s *Users) CheckPasswordPolicy(pw string, pc PasswordContext) error {
	return s.cfg.Password.Check(pw, pc, s.hasher)
}

// CheckPasswordLength checks only the length rules: for a password that is
// validated but never stored (the one LoopBack accepts alongside a reset
// request).
func (s *Users) CheckPasswordLength(pw string) error { return s.cfg.Password.CheckLength(pw, s.hasher) }

// Credentials is a login attempt. Email wins over Username when both are set
// (LoopBack). Login is the pages' single field: an email or a username.
type Credentials struct {
	Email    string
	Username string
	Login    string
	Password string
	TTL      int64 // 0: default
}

// Session is an authenticated request: the token presented and its user.
type Session struct {
	Token AccessToken
	User  User
}

// ResolveTTL applies LoopBack's rules: 0 means the default, values above the
// maximum are capped, -1 only when eternal tokens are enabled.
func (s *Users) ResolveTTL(ttl int64) (int64, error) {
	switch {
	case ttl == 0:
		return s.cfg.TokenTTL, nil
	case ttl == -1 && s.cfg.AllowEternalTokens:
		return -1, nil
	case ttl < 0:
		return 0, ErrInvalidTTL
	case ttl > s.cfg.TokenMaxTTL:
		return s.cfg.TokenMaxTTL, nil
	}
	return ttl, nil
}

// Login checks credentials and issues a new access token. Every credential
// failure is ErrLoginFailed and costs one hash verification, whether the
// user exists or not.
func (s *Users) Login(ctx context.Context, c Credentials, meta ClientMeta) (*AccessToken, *User, error) {
	ttl, err := s.ResolveTTL(c.TTL)
	if err != nil {
		return nil, nil, err
	}
	var u *User
	key := loginKey(c)
	switch {
	case c.Email != "":
		u, err = s.FindUserByEmail(ctx, c.Email)
	case c.Username != "":
		u, err = s.FindUserByUsername(ctx, c.Username)
	case c.Login != "":
		if strings.Contains(c.Login, "@") {
			u, err = s.FindUserByEmail(ctx, c.Login)
		} else {
			u, err = s.FindUserByUsername(ctx, c.Login)
		}
	default:
		return nil, nil, ErrLoginRequired
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	a := attempt{key: key, password: c.Password, meta: meta, failed: "login.failed"}
	if u != nil {
		// One counter per account, whichever of its identifiers is typed:
		// switching between email and username must not double the guesses.
		a.key, a.userID = accountKey(u), u.ID
		if !u.Disabled {
			a.against = u
		}
	}
	var tok *AccessToken
	ok, err := s.verifyAttempt(ctx, a, func(record func(*Tx) error) error {
		var newHash string
		if s.hasher.NeedsRehash(u.PasswordHash, u.PasswordNFKC) {
			// Upgrade to the configured algorithm and cost; a failure here must
			// not fail a correct login.
			if h, err := s.hasher.Hash(ctx, c.Password); err == nil {
				newHash = h
			}
		}
		err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
			if newHash != "" {
				tx.dropUser(u.ID)
				if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = ?, password_nfkc = 1 WHERE id = ?`, newHash, u.ID); err != nil {
					return err
				}
			}
			var err error
			if tok, err = tx.insertToken(ctx, u.ID, ttl, ScopeSession, meta); err != nil {
				return err
			}
			if err := record(tx); err != nil {
				return err
			}
			return tx.Audit(ctx, "login.ok", u.ID, meta, "")
		})
		if err != nil {
			return fmt.Errorf("models: login: %w", err)
		}
		if newHash != "" {
			u.PasswordHash, u.PasswordNFKC = newHash, true
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, ErrLoginFailed
	}
	return tok, u, nil
}

// attempt is one try of a password.
type attempt struct {
	key      string // the limiter's key: accountKey, or the identifier tried when there is no account
	against  *User  // whose hash to verify; nil (no such account, or a disabled one): the dummy hash
	userID   int64  // the audit row's user; 0 when there is no account
	password string
	meta     ClientMeta
	failed   string // the audit kind of a failure
}

// verifyAttempt is the throttle sequence, the one way a password is tried
// (a login; a signed-in user asked for theirs again), so it cannot differ
// between them: the limiter lets the attempt through or refuses it
// (ErrThrottled); the password is verified, against the dummy hash when
// there is no account to check, so the time does not tell; the outcome is
// recorded; the attempt ends (Limiter.EndLogin) whatever became of it. A
// failure's audit row and the limiter's counters are one write, and
// verifyAttempt reports false. On success it calls won, still inside the
// attempt, with record: won makes the write its success needs and calls
// record inside it, so a success costs the limiter no write of its own.
func (s *Users) verifyAttempt(ctx context.Context, a attempt, won func(record func(*Tx) error) error) (bool, error) {
	if err := s.limiter.BeforeLogin(ctx, a.key, a.meta); err != nil {
		return false, err
	}
	defer s.limiter.EndLogin(a.key, a.meta)
	var (
		ok  bool
		err error
	)
	if a.against != nil && a.password != "" {
		ok, err = s.hasher.Verify(ctx, a.against.PasswordHash, a.against.PasswordNFKC, a.password)
	} else {
		err = s.hasher.VerifyDummy(ctx, a.password)
	}
	if err != nil {
		return false, err
	}
	if !ok {
		return false, s.db.Write(ctx, s.now(), func(tx *Tx) error {
			if err := tx.Audit(ctx, a.failed, a.userID, a.meta, ""); err != nil {
				return err
			}
			return s.limiter.RecordLogin(ctx, tx, a.key, a.meta, false)
		})
	}
	return true, won(func(tx *Tx) error { return s.limiter.RecordLogin(ctx, tx, a.key, a.meta, true) })
}

// insertToken creates a token for a user inside tx.
func (t *Tx) insertToken(ctx context.Context, userID, ttl int64, scope string, meta ClientMeta) (*AccessToken, error) {
	id := NewTokenID()
	tok := &AccessToken{ID: id, Digest: Digest(id), UserID: userID, TTL: ttl, Created: t.now.Truncate(time.Millisecond),
		Scopes: scope, IP: meta.IP, UA: truncate(meta.UserAgent, 512), LastUsed: t.now.Truncate(time.Millisecond)}
	var expires any
	if ttl >= 0 {
		tok.Expires = tok.Created.Add(time.Duration(ttl) * time.Second)
		expires = ms(tok.Expires)
	}
	_, err := t.Exec(ctx, `INSERT INTO access_tokens(digest, user_id, ttl, created, expires, scopes, last_used, ip, user_agent)
		VALUES (?,?,?,?,?,?,?,?,?)`, tok.Digest[:], userID, ttl, ms(tok.Created), expires, scope, ms(tok.Created), tok.IP, tok.UA)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Audit records an event. It never takes a password or a token.
func (t *Tx) Audit(ctx context.Context, kind string, userID int64, meta ClientMeta, detail string) error {
	var uid any
	if userID != 0 {
		uid = userID
	}
	_, err := t.Exec(ctx, `INSERT INTO audit_events(time, kind, user_id, ip, user_agent, detail) VALUES (?,?,?,?,?,?)`,
		ms(t.now), kind, uid, meta.IP, truncate(meta.UserAgent, 512), detail)
	return err
}

const tokenColumns = `digest, user_id, ttl, created, expires, scopes, last_used, ip, user_agent`

func scanToken(row rowScanner) (*AccessToken, error) {
	var (
		t        AccessToken
		digest   []byte
		created  int64
		expires  sql.NullInt64
		lastUsed sql.NullInt64
	)
	err := row.Scan(&digest, &t.UserID, &t.TTL, &created, &expires, &t.Scopes, &lastUsed, &t.IP, &t.UA)
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
	tok.ID = raw
	if now.Sub(tok.LastUsed) >= s.cfg.TouchEvery {
		s.touch(ctx, tok.Digest, now)
	}
	return sess, nil
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
		return tx.Audit(ctx, "logout", sess.User.ID, meta, "")
	})
	return n > 0, err
}

// ChangePassword checks the old password, stores a hash of the new one and
// ends every other session of the user; the session used stays (LoopBack).
func (s *Users) ChangePassword(ctx context.Context, sess *Session, oldPassword, newPassword string, meta ClientMeta) error {
	if err := s.CheckPasswordPolicy(newPassword, sess.User.PasswordContext()); err != nil {
		return err
	}
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return err
	}
	if err := s.checkPassword(ctx, u, oldPassword, meta); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropUser(u.ID)
		if err := tx.requireToken(ctx, sess.Token.Digest); err != nil {
			return err
		}
		if err := tx.setPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND digest != ?`, u.ID, sess.Token.Digest[:]); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "password.changed", u.ID, meta, "change"); err != nil {
			return err
		}
		return emit(ctx, tx, s.onChanged, PasswordChanged{User: u, Reason: "change", Meta: meta}, "password-changed")
	})
	return err
}

// requireToken fails with ErrAuthRequired when the session a change is made
// with was revoked (a reset, a logout elsewhere) after it was checked: the
// check and the write are then one transaction.
func (t *Tx) requireToken(ctx context.Context, digest [32]byte) error {
	var one int
	err := t.QueryRow(ctx, `SELECT 1 FROM access_tokens WHERE digest = ?`, digest[:]).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrAuthRequired
	}
	return err
}

func (t *Tx) setPassword(ctx context.Context, userID int64, hash string) error {
	_, err := t.Exec(ctx, `UPDATE users SET password_hash = ?, password_nfkc = 1, updated = ? WHERE id = ?`, hash, ms(t.now), userID)
	return err
}

// PruneExpired deletes up to limit expired tokens and returns how many went.
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
		_, err = tx.Exec(ctx, `DELETE FROM verification_tokens WHERE digest IN (
			SELECT digest FROM verification_tokens WHERE expires <= ? LIMIT ?)`, ms(now), limit)
		return err
	})
	return n, err
}
