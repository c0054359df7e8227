package models

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Third-party sign-in: the flows in progress (oauth_flows, shared by every
// replica), and what a verified provider account does to the accounts
// here. An account is found by its identity (provider, subject), never by
// email (SECURITY O3); an email that matches a local account signs nobody
// in to it unless the operator opted in for that provider and both
// addresses are verified (O4).

// Flow purposes.
const (
	FlowLogin       = "login"        // sign in (or sign up) through a provider
	FlowLink        = "link"         // add a provider to the signed-in account
	FlowReauth      = "reauth"       // prove again who you are, for a sensitive change
	FlowPendingLink = "pending-link" // a provider account waiting for its owner's password
)

// FlowTTL is how long a flow may take: from the button to the callback, or
// from "an account with this email exists" to the password.
const FlowTTL = 10 * time.Minute

// ExternalAccount is a person as a provider vouches for them, after a
// verified exchange. Never a provider token.
type ExternalAccount struct {
	Provider      string `json:"provider"`
	Subject       string `json:"subject"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"emailVerified,omitempty"`
	Name          string `json:"name,omitempty"`
	Login         string `json:"login,omitempty"`
}

// Flow is a third-party sign-in in progress.
type Flow struct {
	Purpose  string
	Provider string
	UserID   int64    // link, reauth: the signed-in user who started it
	Session  [32]byte // link, reauth: the digest of their session
	Nonce    string
	Verifier string // PKCE
	ReturnTo string // a local path
	Account  *ExternalAccount
	Expires  time.Time
}

var (
	// ErrFlowInvalid: no flow has this state in this browser (never
	// started, used already, or started in another browser).
	ErrFlowInvalid = errors.New("models: no such sign-in in progress")
	// ErrFlowExpired: the flow took longer than FlowTTL.
	ErrFlowExpired = errors.New("models: the sign-in took too long")
	// ErrIdentityTaken: the provider account signs in to another user.
	ErrIdentityTaken = &Error{Kind: KindUnprocessable, Code: "IDENTITY_TAKEN",
		Message: "This provider account is linked to another account"}
	// ErrLastSignInMethod: unlinking would leave the account no way to
	// sign in (SECURITY O7).
	ErrLastSignInMethod = &Error{Kind: KindUnprocessable, Code: "LAST_SIGN_IN_METHOD",
		Message: "This is the account's only way to sign in: set a password or link another provider first"}
	// ErrReauthRequired: the change needs a recent authentication (an
	// account without a password has no password to type).
	ErrReauthRequired = &Error{Kind: KindUnauthorized, Code: "REAUTHENTICATION_REQUIRED",
		Message: "Sign in again (through your provider) to make this change"}
)

// LinkRequiredError is a provider account whose email belongs to an
// account here that it may not sign in to: its owner has to sign in
// (with their password) to link it.
type LinkRequiredError struct{ Account ExternalAccount }

func (e *LinkRequiredError) Error() string {
	return "models: an account with this email exists; sign in to it to link " + e.Account.Provider
}

func flowKey(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// SaveFlow stores a flow under handle (its state), bound to the browser
// whose cookie holds browser. Both are random secrets the caller made;
// only their digests are stored.
func (s *Users) SaveFlow(ctx context.Context, handle, browser string, f Flow) error {
	now := s.now()
	if f.Expires.IsZero() {
		f.Expires = now.Add(FlowTTL)
	}
	var account string
	if f.Account != nil {
		b, err := json.Marshal(f.Account)
		if err != nil {
			return err
		}
		account = string(b)
	}
	var uid, sess any
	if f.UserID != 0 {
		uid, sess = f.UserID, f.Session[:]
	}
	return s.db.Write(ctx, now, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO oauth_flows(handle, purpose, provider, browser, user_id, session, nonce, verifier,
			return_to, account, created, expires) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
			flowKey(handle), f.Purpose, f.Provider, flowKey(browser), uid, sess, f.Nonce, f.Verifier, f.ReturnTo, account,
			ms(now), ms(f.Expires))
		return err
	})
}

// TakeFlow removes and returns the flow stored under handle for this
// browser: a flow is used once, whatever happens next. A handle unknown
// in this browser is ErrFlowInvalid (and a flow of another browser stays
// where it is); one past its time is ErrFlowExpired.
func (s *Users) TakeFlow(ctx context.Context, handle, browser string) (*Flow, error) {
	if handle == "" || browser == "" {
		return nil, ErrFlowInvalid
	}
	var (
		f                 Flow
		uid               sql.NullInt64
		session           []byte
		account           string
		expires           int64
		purpose, provider string
	)
	now := s.now()
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		return tx.QueryRow(ctx, `DELETE FROM oauth_flows WHERE handle = ? AND browser = ?
			RETURNING purpose, provider, user_id, session, nonce, verifier, return_to, account, expires`,
			flowKey(handle), flowKey(browser)).Scan(&purpose, &provider, &uid, &session, &f.Nonce, &f.Verifier, &f.ReturnTo, &account, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrFlowInvalid
	}
	if err != nil {
		return nil, err
	}
	f.Purpose, f.Provider, f.UserID, f.Expires = purpose, provider, uid.Int64, fromMS(expires)
	copy(f.Session[:], session)
	if account != "" {
		f.Account = new(ExternalAccount)
		if err := json.Unmarshal([]byte(account), f.Account); err != nil {
			return nil, fmt.Errorf("models: flow account: %w", err)
		}
	}
	if !now.Before(f.Expires) {
		return nil, ErrFlowExpired
	}
	return &f, nil
}

// PruneFlows deletes flows past their time.
func (s *Users) PruneFlows(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM oauth_flows WHERE expires <= ?`, ms(tx.now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// SignInResult is what ExternalSignIn did.
type SignInResult struct {
	Token   *AccessToken
	User    *User
	Created bool // a new account
	Linked  bool // the identity was linked to an existing account (auto-link)
}

// ExternalSignIn signs in the account the provider account belongs to,
// with a new session token of ttl seconds (0: the default):
//   - its identity is known: that account;
//   - its email matches no account: a new account, without a password,
//     its email verified only if the provider says so;
//   - its email matches an account: *LinkRequiredError, unless autoLink
//     (the operator's opt-in for this provider) and both the provider's
//     and the local address are verified.
//
// A disabled account is ErrLoginFailed.
func (s *Users) ExternalSignIn(ctx context.Context, acct ExternalAccount, autoLink bool, ttl int64, meta ClientMeta) (*SignInResult, error) {
	if acct.Provider == "" || acct.Subject == "" {
		return nil, errors.New("models: external sign-in without provider or subject")
	}
	ttl, err := s.ResolveTTL(ttl)
	if err != nil {
		return nil, err
	}
	res := &SignInResult{}
	u, err := s.FindUserByIdentity(ctx, acct.Provider, acct.Subject)
	switch {
	case err == nil:
		if u.Disabled {
			return nil, ErrLoginFailed
		}
		res.User = u
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	email := strings.TrimSpace(acct.Email)
	if res.User == nil && email != "" {
		owner, err := s.FindUserForLinking(ctx, email)
		switch {
		case err == nil:
			localVerified := owner.EmailVerified != nil && *owner.EmailVerified
			if !autoLink || !acct.EmailVerified || !localVerified || owner.Disabled {
				return nil, &LinkRequiredError{Account: acct}
			}
			res.User, res.Linked = owner, true
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	now := s.now()
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		if res.User == nil {
			u, err := tx.createExternalUser(ctx, acct, email)
			if err != nil {
				return err
			}
			res.User, res.Created = u, true
			if err := tx.Audit(ctx, "user.created", u.ID, meta, acct.Provider); err != nil {
				return err
			}
			if err := s.tell(ctx, tx, AccountEvent{Type: EventUserCreated, User: u, Provider: acct.Provider, Meta: meta}); err != nil {
				return err
			}
		}
		if res.Created || res.Linked {
			if err := tx.insertIdentity(ctx, res.User.ID, acct); err != nil {
				return err
			}
			if res.Linked {
				if err := tx.Audit(ctx, "identity.linked", res.User.ID, meta, acct.Provider+" (verified email)"); err != nil {
					return err
				}
				if err := s.methodChanged(ctx, tx, res.User, acct.Provider, true, meta); err != nil {
					return err
				}
			}
		} else if _, err := tx.Exec(ctx, `UPDATE identities SET profile = ?, updated = ? WHERE provider = ? AND subject = ?`,
			profileJSON(acct.profile()), ms(tx.now), acct.Provider, acct.Subject); err != nil {
			return err
		}
		tok, err := tx.insertToken(ctx, res.User.ID, ttl, ScopeSession, acct.Provider, meta)
		if err != nil {
			return err
		}
		res.Token = tok
		if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionCreated, User: res.User, Method: "provider", Provider: acct.Provider, Meta: meta}); err != nil {
			return err
		}
		return tx.Audit(ctx, "login", res.User.ID, meta, acct.Provider)
	})
	if err != nil {
		if isUnique(err) { // a race: the same email or identity signed up at the same moment
			return nil, &LinkRequiredError{Account: acct}
		}
		return nil, err
	}
	return res, nil
}

// createExternalUser makes the account of a provider account that matched
// nobody: no password; the email verified only if the provider said so. A
// provider that gives no email (X) gets a placeholder address that
// receives no mail and matches nothing, which the user can change later.
func (t *Tx) createExternalUser(ctx context.Context, acct ExternalAccount, email string) (*User, error) {
	placeholder := email == ""
	if placeholder {
		email = acct.Provider + "-" + acct.Subject + "@users.noreply.invalid"
	}
	verified := acct.EmailVerified && !placeholder
	var id int64
	err := t.QueryRow(ctx, `INSERT INTO users(email, email_key, password_hash, password_nfkc, email_verified, profile,
		created, updated, email_placeholder) VALUES (?,?,'',0,?,'{}',?,?,?) RETURNING id`,
		email, EmailKey(email), boolInt(verified), ms(t.now), ms(t.now), boolInt(placeholder)).Scan(&id)
	if err != nil {
		return nil, err
	}
	return &User{ID: id, Email: email, EmailVerified: &verified, Created: t.now, Updated: t.now, EmailPlaceholder: placeholder}, nil
}

// profile is what an identity keeps of the account: nothing secret.
func (a ExternalAccount) profile() Fields {
	var f Fields
	add := func(name, v string) {
		if v != "" {
			b, _ := json.Marshal(v)
			f = append(f, Field{Name: name, Value: b})
		}
	}
	add("email", a.Email)
	if a.Email != "" {
		f = append(f, Field{Name: "emailVerified", Value: json.RawMessage(fmt.Sprint(a.EmailVerified))})
	}
	add("displayName", a.Name)
	add("login", a.Login)
	return f
}

func (t *Tx) insertIdentity(ctx context.Context, userID int64, acct ExternalAccount) error {
	_, err := t.Exec(ctx, `INSERT INTO identities(provider, subject, user_id, profile, created, updated) VALUES (?,?,?,?,?,?)`,
		acct.Provider, acct.Subject, userID, profileJSON(acct.profile()), ms(t.now), ms(t.now))
	if isUnique(err) {
		return ErrIdentityTaken
	}
	return err
}

// LinkIdentity adds the provider account to the user as a way to sign
// in. It is ErrIdentityTaken when it signs in to someone else already; a
// second link of the same account to the same user changes nothing.
func (s *Users) LinkIdentity(ctx context.Context, userID int64, acct ExternalAccount, meta ClientMeta) error {
	if u, err := s.FindUserByIdentity(ctx, acct.Provider, acct.Subject); err == nil {
		if u.ID != userID {
			return ErrIdentityTaken
		}
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	u, err := s.FindUserByID(ctx, userID)
	if err != nil {
		return err
	}
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if err := tx.insertIdentity(ctx, userID, acct); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "identity.linked", userID, meta, acct.Provider); err != nil {
			return err
		}
		return s.methodChanged(ctx, tx, u, acct.Provider, true, meta)
	})
}

// methodChanged tells the subscribers (the notice mail) that a way to sign
// in was added or removed; a placeholder address gets nothing.
func (s *Users) methodChanged(ctx context.Context, tx *Tx, u *User, provider string, linked bool, meta ClientMeta) error {
	if err := s.tell(ctx, tx, identityEvent(u, provider, linked, meta)); err != nil {
		return err
	}
	if u.EmailPlaceholder {
		return nil
	}
	return emit(ctx, tx, s.onMethods, SignInMethodChanged{User: u, Provider: provider, Linked: linked, Meta: meta}, "sign-in-method")
}

// UnlinkIdentity removes one of the user's identities. It refuses with
// ErrLastSignInMethod when the account has no password and no other
// identity; an identity that is not the user's is ErrNotFound.
func (s *Users) UnlinkIdentity(ctx context.Context, userID, identityID int64, meta ClientMeta) (*Identity, error) {
	u, err := s.FindUserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	var gone Identity
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var hash string
		var others int
		err := tx.QueryRow(ctx, `SELECT u.password_hash, (SELECT count(*) FROM identities WHERE user_id = u.id AND id != ?)
			FROM users u JOIN identities i ON i.user_id = u.id WHERE u.id = ? AND i.id = ?`, identityID, userID, identityID).Scan(&hash, &others)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if hash == "" && others == 0 {
			return ErrLastSignInMethod
		}
		if err := tx.QueryRow(ctx, `DELETE FROM identities WHERE id = ? RETURNING provider, subject`, identityID).Scan(&gone.Provider, &gone.Subject); err != nil {
			return err
		}
		gone.ID, gone.UserID = identityID, userID
		if err := tx.Audit(ctx, "identity.unlinked", userID, meta, gone.Provider); err != nil {
			return err
		}
		return s.methodChanged(ctx, tx, u, gone.Provider, false, meta)
	})
	if err != nil {
		return nil, err
	}
	return &gone, nil
}

// Reauthenticated records that the session's owner proved who they are
// again (through a provider): changes that need a recent authentication
// are allowed for Config.RecentAuth.
func (s *Users) Reauthenticated(ctx context.Context, sess *Session, method string, meta ClientMeta) error {
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropToken(sess.Token.Digest)
		if _, err := tx.Exec(ctx, `UPDATE access_tokens SET auth_at = ? WHERE digest = ?`, ms(tx.now), sess.Token.Digest[:]); err != nil {
			return err
		}
		return tx.Audit(ctx, "reauthenticated", sess.User.ID, meta, method)
	})
}

// RecentlyAuthenticated says whether the session signed in, or
// re-authenticated, within Config.RecentAuth.
func (s *Users) RecentlyAuthenticated(sess *Session) bool {
	return s.now().Sub(sess.Token.AuthAt) < s.cfg.RecentAuth
}

// HasPassword says whether the user can sign in with a password (an
// account made through a provider has none until it sets one).
func (u *User) HasPassword() bool { return u.PasswordHash != "" }
