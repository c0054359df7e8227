package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The account page's way of changing the address (SECURITY S9, R10): the
// current password is asked (or, for an account without one, a recent
// authentication); the change waits until the link mailed to the new
// address is used, and meanwhile the account keeps its address (login,
// reset mail). The old address is told at once, with a link that cancels
// the change. The tokens have the verification link's shape and are kept
// as digests, as the verification tokens are, and their mail is limited
// as the verification mail is.
//
// The LoopBack API's PATCH {email} is another thing: it changes the
// address at once, as LoopBack does (UpdateUser).

// MailEmailChange is the mail limit's kind of a confirmation link for a
// new address: one a minute per address, so the page cannot be used to
// flood someone's mailbox.
const MailEmailChange = "email-change"

// EmailChange is an address change waiting for its confirmation link.
type EmailChange struct {
	UserID   int64
	NewEmail string
	Created  time.Time
	Expires  time.Time
}

// ErrEmailChangeTooSoon: a confirmation link went to that address (or
// from that client) a moment ago.
var ErrEmailChangeTooSoon = &Error{Kind: KindTooMany, Code: "TOO_MANY_REQUESTS",
	Message: "A confirmation link was sent a moment ago. Wait a minute and try again.", RetryAfter: 60}

// RequestEmailChange starts moving the session's account to newEmail.
// The address is checked first (422 ValidationError: presence,
// custom.email, "same" for the current address), then the user is asked
// to confirm (Confirm: ErrWrongPassword, ErrReauthRequired or
// ErrThrottled), then whether another account has the address
// (uniqueness). A pending change of the user is replaced, and
// EmailChangeRequested is emitted in the same transaction. The account
// itself does not change.
func (s *Users) RequestEmailChange(ctx context.Context, sess *Session, password, newEmail string, meta ClientMeta) (*EmailChange, error) {
	newEmail = strings.TrimSpace(newEmail)
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return nil, err
	}
	var v ValidationError
	switch {
	case newEmail == "":
		v.Add("email", "presence", "can't be blank", "undefined")
	case !ValidEmail(newEmail):
		v.Add("email", "custom.email", "is invalid", fmt.Sprintf("%q", newEmail))
	case EmailKey(newEmail) == EmailKey(u.Email):
		v.Add("email", "same", "is already the account's address", fmt.Sprintf("%q", newEmail))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.confirmUser(ctx, sess, u, password, meta); err != nil {
		return nil, err
	}
	// Only after the password: a stolen session alone cannot ask which
	// addresses have accounts.
	if taken, err := s.emailTaken(ctx, newEmail, u.ID); err != nil {
		return nil, err
	} else if taken {
		v.Add("email", "uniqueness", "Email already exists", fmt.Sprintf("%q", newEmail))
		return nil, &v
	}
	confirm, cancel := newVerificationToken(), newVerificationToken()
	dc, dx := Digest(confirm), Digest(cancel)
	now := s.now()
	ch := &EmailChange{UserID: u.ID, NewEmail: newEmail, Created: now, Expires: now.Add(time.Duration(s.cfg.VerifyTTL) * time.Second)}
	limited := false
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		if err := tx.requireToken(ctx, sess.Token.Digest); err != nil {
			return err
		}
		allowed, err := s.limiter.AllowMail(ctx, tx, MailEmailChange, EmailKey(newEmail), meta)
		if err != nil {
			return err
		}
		if !allowed {
			limited = true
			return tx.Audit(ctx, "email.change-requested", u.ID, meta, "limited")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM email_changes WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO email_changes(user_id, new_email, new_email_key, old_email_key, confirm, cancel, created, expires)
			VALUES (?,?,?,?,?,?,?,?)`, u.ID, newEmail, EmailKey(newEmail), EmailKey(u.Email), dc[:], dx[:], ms(now), ms(ch.Expires)); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "email.change-requested", u.ID, meta, ""); err != nil {
			return err
		}
		ev := EmailChangeRequested{User: u, NewEmail: newEmail, ConfirmToken: confirm, CancelToken: cancel, Expires: ch.Expires, Meta: meta}
		if u.EmailPlaceholder {
			ev.CancelToken = "" // the old address reaches nobody: no notice
		}
		return emit(ctx, tx, s.onEmailChange, ev, "email-change-requested")
	})
	if err != nil {
		return nil, err
	}
	if limited {
		return nil, ErrEmailChangeTooSoon
	}
	return ch, nil
}

// emailTaken says whether an account other than userID has the address.
func (s *Users) emailTaken(ctx context.Context, email string, userID int64) (bool, error) {
	var id int64
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE email_key = ?`, EmailKey(email)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && id != userID, err
}

// PendingEmailChange is the user's live change waiting for confirmation,
// or nil.
func (s *Users) PendingEmailChange(ctx context.Context, userID int64) (*EmailChange, error) {
	ch := EmailChange{UserID: userID}
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT e.new_email, e.created, e.expires FROM email_changes e JOIN users u ON u.id = e.user_id
		WHERE e.user_id = ? AND e.expires > ? AND e.old_email_key = u.email_key`, userID, ms(s.now())).Scan(&ch.NewEmail, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ch.Created, ch.Expires = fromMS(created), fromMS(expires)
	return &ch, nil
}

// CheckEmailChange tells, without using it, whether token is a live
// confirmation link (cancel false) or cancel link (cancel true), and of
// which change: the pages show what the button will do (mail scanners
// open links, so a GET never acts). ErrInvalidToken otherwise.
func (s *Users) CheckEmailChange(ctx context.Context, token string, cancel bool) (*EmailChange, error) {
	col := "confirm"
	if cancel {
		col = "cancel"
	}
	d := Digest(token)
	ch := EmailChange{}
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT e.user_id, e.new_email, e.created, e.expires FROM email_changes e JOIN users u ON u.id = e.user_id
		WHERE e.`+col+` = ? AND e.expires > ? AND e.old_email_key = u.email_key`, d[:], ms(s.now())).Scan(&ch.UserID, &ch.NewEmail, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	ch.Created, ch.Expires = fromMS(created), fromMS(expires)
	return &ch, nil
}

// ConfirmEmailChange uses a confirmation link: the account takes the new
// address, verified (the link reached it), every session but keep ends
// (keep may be zero, or another user's: then all of them end), pending
// reset and verification links die, and the old address gets the
// EmailChanged notice. The link works once, until it expires, while the
// account still has the address the change was asked from, and while no
// other account took the new one (ValidationError uniqueness); otherwise
// ErrInvalidToken. A link that cannot work any more is removed.
func (s *Users) ConfirmEmailChange(ctx context.Context, token string, keep [32]byte, meta ClientMeta) (*User, error) {
	d := Digest(token)
	now := s.now()
	var (
		next  *User
		fail  error // the answer, when the change is dropped without applying
		email string
	)
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		var uid, expires int64
		var newKey, oldKey string
		err := tx.QueryRow(ctx, `DELETE FROM email_changes WHERE confirm = ? RETURNING user_id, new_email, new_email_key, old_email_key, expires`,
			d[:]).Scan(&uid, &email, &newKey, &oldKey, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		cur, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, uid))
		if err != nil {
			return err
		}
		if expires <= ms(now) || EmailKey(cur.Email) != oldKey || cur.Disabled {
			fail = ErrInvalidToken
			return tx.Audit(ctx, "email.change-refused", uid, meta, "stale")
		}
		var other int64
		err = tx.QueryRow(ctx, `SELECT id FROM users WHERE email_key = ? AND id != ?`, newKey, uid).Scan(&other)
		if err == nil {
			var v ValidationError
			v.Add("email", "uniqueness", "Email already exists", fmt.Sprintf("%q", email))
			fail = &v
			return tx.Audit(ctx, "email.change-refused", uid, meta, "taken")
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		tx.dropUser(uid)
		if _, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_key = ?, email_verified = 1, email_placeholder = 0, updated = ? WHERE id = ?`,
			email, newKey, ms(now), uid); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND digest != ?`, uid, keep[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM verification_tokens WHERE user_id = ?`, uid); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "email.changed", uid, meta, "confirmed"); err != nil {
			return err
		}
		n := *cur
		t := true
		n.Email, n.EmailVerified, n.EmailPlaceholder, n.Updated = email, &t, false, now
		next = &n
		if err := s.tell(ctx, tx, AccountEvent{Type: EventUserEmailChanged, User: next, OldEmail: cur.Email, Meta: meta}); err != nil {
			return err
		}
		if cur.EmailPlaceholder {
			return nil // the old address reaches nobody: no notice
		}
		return emit(ctx, tx, s.onEmailChanged, EmailChanged{User: next, OldEmail: cur.Email, Meta: meta}, "email-changed")
	})
	if isUnique(err) { // another account took the address meanwhile
		var v ValidationError
		v.Add("email", "uniqueness", "Email already exists", fmt.Sprintf("%q", email))
		return nil, &v
	}
	if err != nil {
		return nil, err
	}
	if fail != nil {
		return nil, fail
	}
	return next, nil
}

// CancelEmailChange uses the link in the notice to the old address: the
// pending change goes (ErrInvalidToken when there is none for it).
func (s *Users) CancelEmailChange(ctx context.Context, token string, meta ClientMeta) error {
	d := Digest(token)
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var uid int64
		err := tx.QueryRow(ctx, `DELETE FROM email_changes WHERE cancel = ? RETURNING user_id`, d[:]).Scan(&uid)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		return tx.Audit(ctx, "email.change-cancelled", uid, meta, "link")
	})
}

// WithdrawEmailChange drops the session's user's pending change (the
// account page's button). No pending change is no error.
func (s *Users) WithdrawEmailChange(ctx context.Context, sess *Session, meta ClientMeta) error {
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if err := tx.requireToken(ctx, sess.Token.Digest); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM email_changes WHERE user_id = ?`, sess.User.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return tx.Audit(ctx, "email.change-cancelled", sess.User.ID, meta, "account-page")
	})
}
