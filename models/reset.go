package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ResetPasswordRequest is emitted inside the transaction that created a reset
// token, as LoopBack's User emits 'resetPasswordRequest' {email, accessToken,
// user}. A subscriber puts the email in the outbox through tx, so the token
// and its mail are committed together or not at all.
type ResetPasswordRequest struct {
	Email       string
	AccessToken *AccessToken // ID is the token to put in the link
	User        *User
	Meta        ClientMeta
}

// PasswordChanged is emitted when a password was changed or reset, so the
// user can be told (never with a secret in the notice).
type PasswordChanged struct {
	User   *User
	Reason string // "change" or "reset"
	Meta   ClientMeta
}

// EmailChanged is emitted when a user's address changed, so the old
// address can be told (an attacker holding a session would otherwise move
// the account, and its reset mail, silently).
type EmailChanged struct {
	User     *User // with the new address
	OldEmail string
	Meta     ClientMeta
}

// VerifyEmailRequest is emitted when a confirmation link must be mailed.
type VerifyEmailRequest struct {
	User     *User
	Token    string // 128 hex characters, LoopBack's shape
	Redirect string // where confirm sends the browser, already checked
	Meta     ClientMeta
}

// OnResetPasswordRequest subscribes to reset requests (boot does, before serving).
func (s *Users) OnResetPasswordRequest(fn func(context.Context, *Tx, ResetPasswordRequest) error) {
	s.onReset = append(s.onReset, fn)
}

// OnPasswordChanged subscribes to password changes and resets.
func (s *Users) OnPasswordChanged(fn func(context.Context, *Tx, PasswordChanged) error) {
	s.onChanged = append(s.onChanged, fn)
}

// OnEmailChanged subscribes to address changes.
func (s *Users) OnEmailChanged(fn func(context.Context, *Tx, EmailChanged) error) {
	s.onEmailChanged = append(s.onEmailChanged, fn)
}

// OnVerifyEmailRequest subscribes to confirmation requests.
func (s *Users) OnVerifyEmailRequest(fn func(context.Context, *Tx, VerifyEmailRequest) error) {
	s.onVerify = append(s.onVerify, fn)
}

// emit hands an event to its subscribers inside the transaction that made
// it; the first failure rolls the whole change back.
func emit[E any](ctx context.Context, tx *Tx, subs []func(context.Context, *Tx, E) error, ev E, name string) error {
	for _, fn := range subs {
		if err := fn(ctx, tx, ev); err != nil {
			return fmt.Errorf("models: %s subscriber: %w", name, err)
		}
	}
	return nil
}

// RequestPasswordReset starts a reset for email. For a known, enabled user it
// replaces any older reset token with a new one (scope reset-password,
// ResetTTL) and emits ResetPasswordRequest in the same transaction. For an
// unknown email it sends nothing and still succeeds, so the answer does not
// tell whether an account exists (ErrEmailNotFound only in LoopBack
// compatibility mode). Beyond the mail limits (per address and per client
// IP) it sends nothing either, and answers the same. Nothing about the
// account changes: the old password keeps working until the reset is
// completed.
func (s *Users) RequestPasswordReset(ctx context.Context, email string, meta ClientMeta) error {
	if email == "" {
		return ErrEmailRequired
	}
	u, err := s.FindUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	known := err == nil && !u.Disabled
	if !known && s.cfg.CompatEmailNotFound {
		return ErrEmailNotFound
	}
	var uid int64
	if known {
		uid = u.ID
	}
	// Known or not, one small write (the limiter's counters and an audit
	// row), so the answer takes the same time; the mail is only queued.
	now := s.now()
	return s.db.Write(ctx, now, func(tx *Tx) error {
		allowed, err := s.limiter.AllowMail(ctx, tx, MailReset, EmailKey(email), meta)
		if err != nil {
			return err
		}
		if !known || !allowed {
			detail := "no-account"
			if !allowed {
				detail = "limited"
			}
			return tx.Audit(ctx, "reset.requested", uid, meta, detail)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND scopes = ?`, u.ID, ScopeReset); err != nil {
			return err
		}
		tok, err := tx.insertToken(ctx, u.ID, s.cfg.ResetTTL, ScopeReset, meta)
		if err != nil {
			return err
		}
		if err := tx.Audit(ctx, "reset.requested", u.ID, meta, ""); err != nil {
			return err
		}
		ev := ResetPasswordRequest{Email: u.Email, AccessToken: tok, User: u, Meta: meta}
		return emit(ctx, tx, s.onReset, ev, "resetPasswordRequest")
	})
}

// CheckResetToken tells whether raw is a live reset token, without consuming
// it (mail scanners open links). It returns the user it belongs to.
func (s *Users) CheckResetToken(ctx context.Context, raw string) (*User, error) {
	sess, err := s.Authenticate(ctx, raw, ScopeReset)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, ErrInvalidToken
	}
	return &sess.User, nil
}

// ResetPassword completes a reset: with a live reset token it stores a hash
// of the new password, consumes the token, ends every session of the user
// and emits PasswordChanged — all in one transaction. Any other token
// (a session, a used or superseded reset token) is ErrAuthRequired.
func (s *Users) ResetPassword(ctx context.Context, raw, newPassword string, meta ClientMeta) error {
	sess, err := s.Authenticate(ctx, raw, ScopeReset)
	if err != nil {
		return err
	}
	if sess == nil {
		return ErrAuthRequired
	}
	if err := s.CheckPasswordPolicy(newPassword, sess.User.PasswordContext()); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	u := sess.User
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropUser(u.ID)
		// Consume first: if another request used the token meanwhile, stop.
		res, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE digest = ? AND scopes = ?`, sess.Token.Digest[:], ScopeReset)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrAuthRequired
		}
		if err := tx.setPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		if err := tx.clearLoginThrottle(ctx, &u); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "reset.completed", u.ID, meta, ""); err != nil {
			return err
		}
		return emit(ctx, tx, s.onChanged, PasswordChanged{User: &u, Reason: "reset", Meta: meta}, "password-changed")
	})
	return err
}

// RequestVerification mails the user a confirmation link (LoopBack's
// User.verify): a new 128-hex token replaces any older one and
// VerifyEmailRequest is emitted in the same transaction. Beyond the mail
// limits nothing is sent or replaced, and it still succeeds.
func (s *Users) RequestVerification(ctx context.Context, userID int64, redirect string, meta ClientMeta) error {
	u, err := s.FindUserByID(ctx, userID)
	if err != nil {
		return err
	}
	tok := newVerificationToken()
	d := Digest(tok)
	now := s.now()
	return s.db.Write(ctx, now, func(tx *Tx) error {
		if allowed, err := s.limiter.AllowMail(ctx, tx, MailVerify, EmailKey(u.Email), meta); err != nil {
			return err
		} else if !allowed {
			// The same answer; the link sent a moment ago still works.
			return tx.Audit(ctx, "verify.requested", u.ID, meta, "limited")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM verification_tokens WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO verification_tokens(digest, user_id, email, created, expires) VALUES (?,?,?,?,?)`,
			d[:], u.ID, u.Email, ms(now), ms(now.Add(time.Duration(s.cfg.VerifyTTL)*time.Second))); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "verify.requested", u.ID, meta, ""); err != nil {
			return err
		}
		ev := VerifyEmailRequest{User: u, Token: tok, Redirect: redirect, Meta: meta}
		return emit(ctx, tx, s.onVerify, ev, "verify")
	})
}

// ConfirmEmail checks a confirmation link (LoopBack's User.confirm): uid
// must name a user (ErrUserNotFound) and token must be that user's live,
// unused token for their current address (ErrInvalidToken). The token is
// consumed and the user marked verified.
func (s *Users) ConfirmEmail(ctx context.Context, uid, token string, meta ClientMeta) (*User, error) {
	id, err := strconv.ParseInt(uid, 10, 64)
	if err != nil {
		return nil, &Error{Kind: KindNotFound, Code: ErrUserNotFound.Code, Message: "User not found: " + uid}
	}
	u, err := s.FindUserByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Kind: KindNotFound, Code: ErrUserNotFound.Code, Message: "User not found: " + uid}
	}
	if err != nil {
		return nil, err
	}
	d := Digest(token)
	now := s.now()
	err = s.db.Write(ctx, now, func(tx *Tx) error {
		tx.dropUser(u.ID)
		res, err := tx.Exec(ctx, `DELETE FROM verification_tokens WHERE digest = ? AND user_id = ? AND expires > ? AND email = ?`,
			d[:], u.ID, ms(now), u.Email)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrInvalidToken
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email_verified = 1, updated = ? WHERE id = ?`, ms(now), u.ID); err != nil {
			return err
		}
		return tx.Audit(ctx, "email.verified", u.ID, meta, "")
	})
	if err != nil {
		return nil, err
	}
	t := true
	u.EmailVerified = &t
	return u, nil
}
