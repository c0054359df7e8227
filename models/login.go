package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Credentials is a login attempt. Email wins over Username when both are set
// (LoopBack). Login is the pages' single field: an email or a username.
type Credentials struct {
	Email    string
	Username string
	Login    string
	Password string
	TTL      int64 // 0: default
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
// user exists or not. For an account with a second factor a right password
// issues no token: the error is a *MFARequiredError whose token, with a
// code, finishes the login (CompleteMFA). Config.OnLogin hears the outcome
// (observe.go).
func (s *Users) login(ctx context.Context, c Credentials, meta ClientMeta) (*AccessToken, *User, error) {
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
	var second *MFARequiredError
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
			f, err := tx.secondFactors(ctx, u.ID)
			if err != nil {
				return err
			}
			mfa := f.Any()
			if mfa { // the password was right; the session waits for the second step
				if second, err = tx.newMFAChallenge(ctx, u.ID, ttl, f); err != nil {
					return err
				}
			} else if tok, err = tx.insertToken(ctx, u.ID, ttl, ScopeSession, "", meta); err != nil {
				return err
			}
			if err := record(tx); err != nil {
				return err
			}
			if mfa {
				return tx.Audit(ctx, "login.password-ok", u.ID, meta, "second step pending")
			}
			if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionCreated, User: u, Method: "password", Meta: meta}); err != nil {
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
	if second != nil {
		return nil, u, second
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
	a.meta = s.trustDevice(ctx, a.meta, a.userID)
	if err := s.limiter.BeforeLogin(ctx, a.key, a.meta); err != nil {
		return false, s.auditThrottled(ctx, err, strings.TrimSuffix(a.failed, ".failed")+".throttled", a.userID, a.meta)
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

// auditThrottled records an attempt the limiter refused (SECURITY L7):
// kind (login.throttled, reauth.throttled, mfa.throttled) with which
// counter refused it, on the account when there is one — never what was
// typed. err is returned as it came, unless the row could not be written.
func (s *Users) auditThrottled(ctx context.Context, err error, kind string, userID int64, meta ClientMeta) error {
	by := ThrottledBy(err)
	if by == "" {
		return err
	}
	if werr := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		return tx.Audit(ctx, kind, userID, meta, "key="+by)
	}); werr != nil {
		return werr
	}
	return err
}

// checkPassword asks a signed-in user for their password again before a
// sensitive change (change password, log out everywhere else). It is a
// password attempt like a login's, on the same account counter, so a
// stolen session is not a free password oracle. A right password here
// clears no failures: only a login or a completed reset does.
func (s *Users) checkPassword(ctx context.Context, u *User, pw string, meta ClientMeta) error {
	a := attempt{key: accountKey(u), against: u, userID: u.ID, password: pw, meta: meta, failed: "reauth.failed"}
	ok, err := s.verifyAttempt(ctx, a, func(func(*Tx) error) error { return nil })
	if err != nil {
		return err
	}
	if !ok {
		return ErrWrongPassword
	}
	return nil
}

// Confirm is what a sensitive change asks of the session's user:
// their password again, or, for an account without one (made through a
// provider), a recent authentication (ErrReauthRequired otherwise: the
// pages then offer a re-authentication through the provider).
func (s *Users) Confirm(ctx context.Context, sess *Session, pw string, meta ClientMeta) error {
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return err
	}
	return s.confirmUser(ctx, sess, u, pw, meta)
}

func (s *Users) confirmUser(ctx context.Context, sess *Session, u *User, pw string, meta ClientMeta) error {
	if !u.HasPassword() {
		if s.RecentlyAuthenticated(sess) {
			return nil
		}
		return ErrReauthRequired
	}
	return s.checkPassword(ctx, u, pw, meta)
}

// accountKey is the throttle key of an existing account, the same for its
// email and its username.
func accountKey(u *User) string { return "uid:" + strconv.FormatInt(u.ID, 10) }

// loginKey is the throttle key of a login attempt for an unknown account:
// the identifier tried, normalised as its lookup is.
func loginKey(c Credentials) string {
	switch {
	case c.Email != "":
		return EmailKey(c.Email)
	case c.Username != "":
		return UsernameKey(c.Username)
	}
	return strings.ToLower(strings.TrimSpace(c.Login))
}
