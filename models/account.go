package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// User is an account. Username is "" when the user has none; EmailVerified
// and Realm are nil when never set (LoopBack leaves them out of its JSON).
type User struct {
	ID            int64
	Email         string
	Username      string
	EmailVerified *bool
	Realm         *string
	Profile       Fields
	PasswordHash  string
	PasswordNFKC  bool
	Created       time.Time
	Updated       time.Time
	Disabled      bool
	DisabledAt    time.Time // when it was disabled; zero when enabled
	// Admin: the account may use the admin pages (latchkey user
	// grant-admin, or create --admin).
	Admin bool
	// EmailPlaceholder: the address was invented by another system
	// (LoopBack Passport's <id>@loopback.<provider>.com) and reaches
	// nobody. It gets no mail (reset, verification and notices are
	// skipped, with the same answer to the client) and never matches for
	// account linking (FindUserForLinking). Changing the address clears it.
	EmailPlaceholder bool
}

// PasswordContext is what the user's password may not contain.
func (u *User) PasswordContext() PasswordContext {
	return PasswordContext{Email: u.Email, Username: u.Username}
}

// signupContext is the PasswordContext of a sign-up: the email and username
// as sent (values that are not strings are ignored; validation reports them).
func signupContext(body Fields) PasswordContext {
	email, _, _ := body.String("email")
	username, _, _ := body.String("username")
	return PasswordContext{Email: email, Username: username}
}

// EmailKey is the lookup key of an address: trimmed and lower-cased, so
// lookups and uniqueness ignore case (the address is stored as given).
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// UsernameKey is the lookup key of a username.
func UsernameKey(username string) string { return strings.ToLower(username) }

// ValidEmail reports whether s looks like an address LoopBack's isemail
// check would accept: local@domain, no spaces or control characters, the
// domain made of letters, digits and hyphens in at least two labels.
func ValidEmail(s string) bool {
	if len(s) > 254 || !utf8.ValidString(s) {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || at > 64 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '(' || r == ')' || r == '[' || r == ']' ||
			r == '\\' || r == ',' || r == ';' || r == ':' || r == '"' {
			return false
		}
	}
	if strings.Contains(local, "@") || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127) {
				return false
			}
		}
	}
	return true
}

const userColumns = `id, email, username, email_verified, realm, profile, password_hash, password_nfkc, created, updated, disabled_at, email_placeholder, is_admin`

type rowScanner interface{ Scan(dest ...any) error }

func scanUser(row rowScanner) (*User, error) {
	var (
		u        User
		username sql.NullString
		verified sql.NullBool
		realm    sql.NullString
		profile  string
		created  int64
		updated  int64
		disabled sql.NullInt64
	)
	err := row.Scan(&u.ID, &u.Email, &username, &verified, &realm, &profile, &u.PasswordHash, &u.PasswordNFKC, &created, &updated, &disabled, &u.EmailPlaceholder, &u.Admin)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u.Username = username.String
	if verified.Valid {
		v := verified.Bool
		u.EmailVerified = &v
	}
	if realm.Valid {
		r := realm.String
		u.Realm = &r
	}
	if profile != "" && profile != "{}" {
		if u.Profile, err = ParseObject([]byte(profile)); err != nil {
			return nil, fmt.Errorf("models: user %d profile: %w", u.ID, err)
		}
	}
	u.Created, u.Updated = fromMS(created), fromMS(updated)
	u.Disabled, u.DisabledAt = disabled.Valid, nullMS(disabled)
	return &u, nil
}

// FindUserByID returns the user or ErrNotFound.
func (s *Users) FindUserByID(ctx context.Context, id int64) (*User, error) {
	now := s.now()
	if u, ok := s.cache.user(id, now); ok {
		return &u, nil
	}
	gen := s.cache.generation()
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, err
	}
	s.cache.putUser(*u, gen, now)
	return u, nil
}

// FindUserByEmail looks an address up case-insensitively.
func (s *Users) FindUserByEmail(ctx context.Context, email string) (*User, error) {
	return scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = ?`, EmailKey(email)))
}

// FindUserByUsername looks a username up case-insensitively.
func (s *Users) FindUserByUsername(ctx context.Context, username string) (*User, error) {
	return scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, UsernameKey(username)))
}

// CreateUser validates a sign-up as LoopBack's User.create does and stores
// the user with a fresh hash. body is what the client sent: the known
// properties are checked, the rest kept as the profile.
//
// Order as LoopBack: password rules first (422 INVALID_PASSWORD,
// PASSWORD_TOO_LONG; ours adds PASSWORD_TOO_SHORT, PASSWORD_BREACHED and
// PASSWORD_CONTEXT, the last against the email and username sent), then the
// instance validation (presence, format, uniqueness, id absence) as one
// ValidationError.
func (s *Users) CreateUser(ctx context.Context, body Fields, meta ClientMeta) (*User, error) {
	pw, pwPresent, pwString := body.String("password")
	if pwPresent && pwString {
		if err := s.CheckPasswordPolicy(pw, signupContext(body)); err != nil {
			return nil, err
		}
	}
	var v ValidationError
	if !pwPresent || !pwString {
		v.Add("password", "presence", "can't be blank", "undefined")
	}
	email, emailKey := s.checkEmail(ctx, body, &v, 0)
	username, usernameKey := s.checkUsername(ctx, body, &v, 0)
	if raw, ok := body.Get("id"); ok && !isNull(raw) {
		v.Add("id", "absence", "can't be set", lbValue(raw, true))
	}
	var realm *string
	if r, present, ok := body.String("realm"); present {
		if !ok {
			raw, _ := body.Get("realm")
			v.Add("realm", "custom.string", "is invalid", lbValue(raw, true))
		} else {
			realm = &r
		}
	}
	profile, err := profileOf(body, nil)
	if err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	var verified *bool
	if body.Has("emailVerified") {
		f := false // LoopBack forces false: only confirm verifies
		verified = &f
	}

	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &User{Email: email, Username: username, EmailVerified: verified, Realm: realm, Profile: profile,
		PasswordHash: hash, PasswordNFKC: true, Created: now, Updated: now}
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users(email, email_key, username, username_key, password_hash, password_nfkc,
			email_verified, realm, profile, created, updated) VALUES (?,?,?,?,?,1,?,?,?,?,?) RETURNING id`,
			email, emailKey, nullString(username), nullString(usernameKey), hash, flag(verified), realm, profileJSON(profile), ms(now), ms(now)).Scan(&u.ID)
		if err != nil {
			return err
		}
		if err := tx.Audit(ctx, "user.created", u.ID, meta, ""); err != nil {
			return err
		}
		return s.tell(ctx, tx, AccountEvent{Type: EventUserCreated, User: u, Meta: meta})
	})
	if isUnique(err) {
		// Lost a race with another sign-up for the same address or name.
		var v ValidationError
		s.checkEmail(ctx, body, &v, 0)
		s.checkUsername(ctx, body, &v, 0)
		if v.Err() != nil {
			return nil, &v
		}
	}
	if err != nil {
		return nil, fmt.Errorf("models: create user: %w", err)
	}
	return u, nil
}

// checkEmail validates body's email for a user (exceptID is the user being
// updated, 0 on create) and returns it with its key.
func (s *Users) checkEmail(ctx context.Context, body Fields, v *ValidationError, exceptID int64) (string, string) {
	raw, _ := body.Get("email")
	email, present, ok := body.String("email")
	switch {
	case !present || ok && email == "":
		v.Add("email", "presence", "can't be blank", lbValue(raw, present))
		return "", ""
	case !ok || !ValidEmail(email):
		v.Add("email", "custom.email", "is invalid", lbValue(raw, true))
		return "", ""
	}
	key := EmailKey(email)
	var id int64
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE email_key = ?`, key).Scan(&id)
	if err == nil && id != exceptID {
		v.Add("email", "uniqueness", "Email already exists", lbValue(raw, true))
	}
	return email, key
}

func (s *Users) checkUsername(ctx context.Context, body Fields, v *ValidationError, exceptID int64) (string, string) {
	raw, _ := body.Get("username")
	username, present, ok := body.String("username")
	if !present || ok && username == "" {
		return "", ""
	}
	if !ok || utf8.RuneCountInString(username) > 256 || strings.ContainsFunc(username, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		v.Add("username", "custom.username", "is invalid", lbValue(raw, true))
		return "", ""
	}
	key := UsernameKey(username)
	var id int64
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE username_key = ?`, key).Scan(&id)
	if err == nil && id != exceptID {
		v.Add("username", "uniqueness", "User already exists", lbValue(raw, true))
	}
	return username, key
}

// flag stores an optional boolean as NULL, 0 or 1: flags are integers on
// every store, so one query serves SQLite and PostgreSQL.
// boolInt is a flag column's 0 or 1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func flag(b *bool) any {
	switch {
	case b == nil:
		return nil
	case *b:
		return 1
	}
	return 0
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// UpdateUser applies a PATCH from the owner. Email, username, realm and
// profile fields may change; password and emailVerified may not (use
// change-password and confirm). A changed email ends the user's other
// sessions (as LoopBack 3) and is no longer verified. keep is the token used
// for the request, which stays valid.
func (s *Users) UpdateUser(ctx context.Context, id int64, body Fields, keep [32]byte, meta ClientMeta) (*User, error) {
	cur, err := s.FindUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	var v ValidationError
	if body.Has("password") {
		v.Add("password", "readonly", "can't be changed here: use change-password", "[hidden]")
	}
	if raw, ok := body.Get("emailVerified"); ok {
		v.Add("emailVerified", "readonly", "can't be set: use verify and confirm", lbValue(raw, true))
	}
	if raw, ok := body.Get("id"); ok && !isNull(raw) && string(raw) != fmt.Sprint(id) {
		v.Add("id", "readonly", "can't be changed", lbValue(raw, true))
	}
	next := *cur
	emailChanged := false
	if _, ok := body.Get("email"); ok {
		email, _ := s.checkEmail(ctx, body, &v, id)
		if email != "" && email != cur.Email {
			emailChanged = EmailKey(email) != EmailKey(cur.Email)
			next.Email = email
		}
	}
	if raw, ok := body.Get("username"); ok {
		if isNull(raw) {
			next.Username = ""
		} else {
			next.Username, _ = s.checkUsername(ctx, body, &v, id)
		}
	}
	if raw, ok := body.Get("realm"); ok {
		if r, present, isStr := body.String("realm"); !present {
			next.Realm = nil
		} else if !isStr {
			v.Add("realm", "custom.string", "is invalid", lbValue(raw, true))
		} else {
			next.Realm = &r
		}
	}
	if next.Profile, err = profileOf(body, cur.Profile); err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if emailChanged && next.EmailVerified != nil {
		f := false
		next.EmailVerified = &f
	}
	if emailChanged {
		next.EmailPlaceholder = false // an address the user typed
	}
	now := s.now()
	next.Updated = now
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropUser(id)
		if keep != ([32]byte{}) { // zero: not made with a session (tests, tools)
			if err := tx.requireToken(ctx, keep); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_key = ?, username = ?, username_key = ?, realm = ?,
			profile = ?, email_verified = ?, email_placeholder = ?, updated = ? WHERE id = ?`,
			next.Email, EmailKey(next.Email), nullString(next.Username), nullString(UsernameKey(next.Username)),
			next.Realm, profileJSON(next.Profile), flag(next.EmailVerified), boolInt(next.EmailPlaceholder), ms(now), id)
		if err != nil {
			return err
		}
		if emailChanged {
			if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND digest != ?`, id, keep[:]); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM verification_tokens WHERE user_id = ?`, id); err != nil {
				return err
			}
			if err := tx.Audit(ctx, "email.changed", id, meta, ""); err != nil {
				return err
			}
			if err := s.tell(ctx, tx, AccountEvent{Type: EventUserEmailChanged, User: &next, OldEmail: cur.Email, Meta: meta}); err != nil {
				return err
			}
			if cur.EmailPlaceholder {
				return nil // the old address reaches nobody: no notice
			}
			return emit(ctx, tx, s.onEmailChanged, EmailChanged{User: &next, OldEmail: cur.Email, Meta: meta}, "email-changed")
		}
		return nil
	})
	if isUnique(err) {
		var v ValidationError
		s.checkEmail(ctx, body, &v, id)
		if body.Has("username") {
			s.checkUsername(ctx, body, &v, id)
		}
		if v.Err() != nil {
			return nil, &v
		}
	}
	if err != nil {
		return nil, fmt.Errorf("models: update user %d: %w", id, err)
	}
	return &next, nil
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
	if err := s.confirmUser(ctx, sess, u, oldPassword, meta); err != nil {
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
		if err := s.tell(ctx, tx, AccountEvent{Type: EventUserPasswordChanged, User: u, Reason: "change", Meta: meta}); err != nil {
			return err
		}
		if u.EmailPlaceholder {
			return nil // no notice to an address that reaches nobody
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

// DeleteUser deletes the user and, by cascade, every token. It returns how
// many rows went (LoopBack's {"count":1}). The address gets the goodbye
// notice (AccountDeleted).
func (s *Users) DeleteUser(ctx context.Context, id int64, meta ClientMeta) (int64, error) {
	var n int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var err error
		n, err = s.deleteUser(ctx, tx, id, meta, "")
		return err
	})
	return n, err
}

// DeleteAccount is the account page's "Delete account": the user confirms
// (Confirm: the password, or a recent authentication without one), then
// the account goes as DeleteUser deletes it, every session with it.
func (s *Users) DeleteAccount(ctx context.Context, sess *Session, password string, meta ClientMeta) error {
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return err
	}
	if err := s.confirmUser(ctx, sess, u, password, meta); err != nil {
		return err
	}
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if err := tx.requireToken(ctx, sess.Token.Digest); err != nil {
			return err
		}
		_, err := s.deleteUser(ctx, tx, u.ID, meta, "self")
		return err
	})
}

// deleteUser is the one way an account goes: its row (tokens, identities,
// pending changes by cascade), an audit row and the goodbye notice.
func (s *Users) deleteUser(ctx context.Context, tx *Tx, id int64, meta ClientMeta, detail string) (int64, error) {
	tx.dropUser(id)
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	res, err := tx.Exec(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return n, err
	}
	if err := tx.Audit(ctx, "user.deleted", id, meta, detail); err != nil {
		return n, err
	}
	if err := s.tell(ctx, tx, AccountEvent{Type: EventUserDeleted, User: u, Meta: meta}); err != nil {
		return n, err
	}
	if u.EmailPlaceholder {
		return n, nil // no notice to an address that reaches nobody
	}
	return n, emit(ctx, tx, s.onDeleted, AccountDeleted{User: u, Meta: meta}, "account-deleted")
}
