package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Operator actions: what latchkey user … and the admin pages do to an
// account that is not theirs. meta.Actor names who acts (ActorCLI,
// AdminActor(id)) and every action writes an audit row with it (SECURITY
// A1). A change that must end sessions (disable, revoke, delete, reset
// factors) drops the user from every process's auth cache before it
// returns: other replicas through the change feed, and on SQLite a server
// beside the CLI within dataVersionEvery (sqlite.go).

var (
	// ErrUserDisabled: the action needs an enabled account (a reset link
	// for a disabled one would never be sent).
	ErrUserDisabled = &Error{Kind: KindUnprocessable, Code: "USER_DISABLED", Message: "The account is disabled: enable it first"}
	// ErrPlaceholderEmail: the account's address was made up by another
	// system and reaches nobody, so no mail is sent to it.
	ErrPlaceholderEmail = &Error{Kind: KindUnprocessable, Code: "EMAIL_PLACEHOLDER",
		Message: "The account's address is a placeholder that reaches nobody: no mail is sent to it"}
)

// lastLoginKinds are the audit kinds of a finished sign-in: a password
// (with its second step, if any) or a provider.
const lastLoginKinds = `'login.ok', 'login'`

// NewAccount is an account an operator creates.
type NewAccount struct {
	Email string
	// Password is the account's first password; "" makes an account
	// without one, and its address gets a link to set it (the reset mail).
	Password string
	Admin    bool
}

// CreateAccount makes an account for an operator: the address checked as
// a sign-up's is (format, uniqueness: a *ValidationError otherwise), the
// password, when there is one, against the password policy. Without a
// password, a set-password link (a reset link, ResetTTL) is queued in the
// same transaction, so the account and its mail commit together.
func (s *Users) CreateAccount(ctx context.Context, a NewAccount, meta ClientMeta) (*User, error) {
	body := StringFields("email", a.Email)
	var v ValidationError
	email, key := s.checkEmail(ctx, body, &v, 0)
	if err := v.Err(); err != nil {
		return nil, err
	}
	var hash string
	if a.Password != "" {
		if err := s.CheckPasswordPolicy(a.Password, PasswordContext{Email: email}); err != nil {
			return nil, err
		}
		var err error
		if hash, err = s.hasher.Hash(ctx, a.Password); err != nil {
			return nil, err
		}
	}
	now := s.now()
	u := &User{Email: email, PasswordHash: hash, PasswordNFKC: hash != "", Created: now, Updated: now, Admin: a.Admin}
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users(email, email_key, password_hash, password_nfkc, profile, created, updated, is_admin)
			VALUES (?,?,?,?,'{}',?,?,?) RETURNING id`,
			email, key, hash, boolInt(u.PasswordNFKC), ms(now), ms(now), boolInt(a.Admin)).Scan(&u.ID)
		if err != nil {
			return err
		}
		detail := "by an operator"
		if a.Admin {
			detail += ", as an admin"
		}
		if err := tx.Audit(ctx, "user.created", u.ID, meta, detail); err != nil {
			return err
		}
		if err := s.tell(ctx, tx, AccountEvent{Type: EventUserCreated, User: u, Meta: meta}); err != nil {
			return err
		}
		if hash != "" {
			return nil
		}
		return s.queueReset(ctx, tx, u, meta)
	})
	if isUnique(err) { // lost a race with a sign-up for the same address
		var v ValidationError
		s.checkEmail(ctx, body, &v, 0)
		if v.Err() != nil {
			return nil, &v
		}
	}
	if err != nil {
		return nil, fmt.Errorf("models: create account: %w", err)
	}
	return u, nil
}

// DisableUser disables an account: its sessions, reset links and pending
// second steps are deleted and fail at once everywhere, and its logins
// fail exactly as a wrong password does (Login, SECURITY L1). Disabling a
// disabled account keeps the time it was first disabled. It returns how
// many sessions ended, or ErrNotFound.
func (s *Users) DisableUser(ctx context.Context, id int64, meta ClientMeta) (int64, error) {
	var ended int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(id)
		res, err := tx.Exec(ctx, `UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?`, ms(tx.now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		if ended, err = tx.endSessions(ctx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ?`, id); err != nil { // reset links
			return err
		}
		if err := tx.Audit(ctx, "user.disabled", id, meta, fmt.Sprintf("%d sessions ended", ended)); err != nil {
			return err
		}
		return s.tellUser(ctx, tx, id, AccountEvent{Type: EventUserDisabled, Meta: meta})
	})
	return ended, err
}

// EnableUser lets a disabled account sign in again (its old sessions
// stay ended). It reports false when it was enabled already, or
// ErrNotFound.
func (s *Users) EnableUser(ctx context.Context, id int64, meta ClientMeta) (bool, error) {
	var changed bool
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(id)
		var err error
		if changed, err = tx.updateUser(ctx, id, `disabled_at = NULL`, `disabled_at IS NOT NULL`); err != nil || !changed {
			return err
		}
		if err := tx.Audit(ctx, "user.enabled", id, meta, ""); err != nil {
			return err
		}
		return s.tellUser(ctx, tx, id, AccountEvent{Type: EventUserEnabled, Meta: meta})
	})
	return changed, err
}

// SetAdmin grants (on) or revokes the admin role. It reports false when
// the account had that role already, or ErrNotFound.
func (s *Users) SetAdmin(ctx context.Context, id int64, on bool, meta ClientMeta) (bool, error) {
	var changed bool
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(id) // a cached session's user carries the role
		set, unless, kind := `is_admin = 1`, `is_admin = 0`, "admin.granted"
		if !on {
			set, unless, kind = `is_admin = 0`, `is_admin = 1`, "admin.revoked"
		}
		var err error
		if changed, err = tx.updateUser(ctx, id, set, unless); err != nil || !changed {
			return err
		}
		return tx.Audit(ctx, kind, id, meta, "")
	})
	return changed, err
}

// updateUser applies set to the user where cond holds, and reports
// whether it did; ErrNotFound when there is no such user.
func (t *Tx) updateUser(ctx context.Context, id int64, set, cond string) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE users SET `+set+` WHERE id = ? AND `+cond, id)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return n > 0, err
	}
	var one int
	if err := t.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return false, ErrNotFound
	} else if err != nil {
		return false, err
	}
	return false, nil
}

// RevokeSessions ends every session of a user (API logins and browser
// sessions, and second steps in progress) at once everywhere. It returns
// how many ended, or ErrNotFound.
func (s *Users) RevokeSessions(ctx context.Context, id int64, meta ClientMeta) (int64, error) {
	var ended int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(id)
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		var err error
		if ended, err = tx.endSessions(ctx, id); err != nil {
			return err
		}
		return tx.Audit(ctx, "session.revoked-all", id, meta, fmt.Sprintf("%d sessions ended", ended))
	})
	return ended, err
}

// endSessions deletes the user's sessions and pending second steps inside
// tx (the caller has recorded dropUser) and returns how many sessions went.
func (t *Tx) endSessions(ctx context.Context, id int64) (int64, error) {
	res, err := t.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND scopes = ?`, id, ScopeSession)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	_, err = t.Exec(ctx, `DELETE FROM mfa_challenges WHERE user_id = ?`, id)
	return n, err
}

// SendResetLink queues a reset link to the user's address for an
// operator, as a reset request does (the same token and mail), but not
// throttled by the mail limits: an operator's request is never dropped
// silently. It returns the user it was queued for (with the address), or
// ErrNotFound, ErrUserDisabled, ErrPlaceholderEmail.
func (s *Users) SendResetLink(ctx context.Context, id int64, meta ClientMeta) (*User, error) {
	u, err := s.FindUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Disabled:
		return nil, ErrUserDisabled
	case u.EmailPlaceholder:
		return nil, ErrPlaceholderEmail
	}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error { return s.queueReset(ctx, tx, u, meta) })
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UserQuery is a page of the user list: Query matches part of an email
// or username (case-insensitively) or a whole id; "" matches everyone.
type UserQuery struct {
	Query  string
	Limit  int // default 50, at most 1000
	Offset int
}

// UserSummary is one line of the user list. It holds no hash.
type UserSummary struct {
	ID            int64
	Email         string
	Username      string
	EmailVerified *bool
	Created       time.Time
	Disabled      bool
	Admin         bool
	HasPassword   bool
	LastLogin     time.Time // zero: never (or before the audit trail's oldest row)
	Sessions      int       // live sessions
}

// UserPage is a page of the user list, in id order.
type UserPage struct {
	Users         []UserSummary
	Total         int // how many match the query, on every page
	Limit, Offset int
}

// ListUsers returns a page of the users that match q, in id order.
func (s *Users) ListUsers(ctx context.Context, q UserQuery) (*UserPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	q.Offset = max(q.Offset, 0)
	where, args := `1 = 1`, []any{}
	if text := strings.TrimSpace(q.Query); text != "" {
		like := "%" + likeEscaper.Replace(strings.ToLower(text)) + "%"
		id, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			id = -1
		}
		where = `(email_key LIKE ? ESCAPE '\' OR username_key LIKE ? ESCAPE '\' OR id = ?)`
		args = append(args, like, like, id)
	}
	page := &UserPage{Limit: q.Limit, Offset: q.Offset}
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM users WHERE `+where, args...).Scan(&page.Total); err != nil {
		return nil, err
	}
	now := ms(s.now())
	rows, err := s.db.Query(ctx, `SELECT id, email, username, email_verified, created, disabled_at, is_admin, password_hash != '',
		(SELECT max(a.time) FROM audit_events a WHERE a.user_id = users.id AND a.kind IN (`+lastLoginKinds+`)),
		(SELECT count(*) FROM access_tokens t WHERE t.user_id = users.id AND t.scopes = ''
			AND (t.expires IS NULL OR t.expires > ?) AND (t.ttl >= 0 OR ? = 1))
		FROM users WHERE `+where+` ORDER BY id LIMIT ? OFFSET ?`,
		append(append([]any{now, boolInt(s.cfg.AllowEternalTokens)}, args...), q.Limit, q.Offset)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u         UserSummary
			username  sql.NullString
			verified  sql.NullBool
			created   int64
			disabled  sql.NullInt64
			lastLogin sql.NullInt64
		)
		if err := rows.Scan(&u.ID, &u.Email, &username, &verified, &created, &disabled, &u.Admin, &u.HasPassword,
			&lastLogin, &u.Sessions); err != nil {
			return nil, err
		}
		u.Username, u.Created, u.Disabled, u.LastLogin = username.String, fromMS(created), disabled.Valid, nullMS(lastLogin)
		if verified.Valid {
			v := verified.Bool
			u.EmailVerified = &v
		}
		page.Users = append(page.Users, u)
	}
	return page, rows.Err()
}

// likeEscaper escapes LIKE's wildcards (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// UserDetail is what an operator sees of one account.
type UserDetail struct {
	User       User // PasswordHash is there for HasPassword: never show it
	LastLogin  time.Time
	Sessions   []SessionInfo // most recently used first
	Identities []Identity
	Factors    Factors
	Audit      []AuditEvent // the most recent, newest first
}

// UserDetail reads an account for an operator, with its auditLimit most
// recent audit rows; ErrNotFound when there is none.
func (s *Users) UserDetail(ctx context.Context, id int64, auditLimit int) (*UserDetail, error) {
	u, err := s.FindUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &UserDetail{User: *u}
	var last sql.NullInt64
	if err := s.db.QueryRow(ctx, `SELECT max(time) FROM audit_events WHERE user_id = ? AND kind IN (`+lastLoginKinds+`)`, id).Scan(&last); err != nil {
		return nil, err
	}
	d.LastLogin = nullMS(last)
	if d.Sessions, err = s.listSessions(ctx, id, [32]byte{}); err != nil {
		return nil, err
	}
	if d.Identities, err = s.IdentitiesOf(ctx, id); err != nil {
		return nil, err
	}
	if d.Factors, err = s.SecondFactors(ctx, id); err != nil {
		return nil, err
	}
	if d.Audit, err = s.ListAudit(ctx, id, auditLimit); err != nil {
		return nil, err
	}
	return d, nil
}
