package models

import (
	"context"
	"errors"
)

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
	// A placeholder address reaches nobody: no token and no mail, and the
	// same answer and the same statements as an unknown address (SECURITY
	// R1/R2).
	placeholder := known && u.EmailPlaceholder
	mail := known && !placeholder
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
		if !mail || !allowed {
			detail := "no-account"
			switch {
			case !allowed:
				detail = "limited"
			case placeholder:
				detail = "placeholder-email"
			}
			if err := tx.sameStatementsAsReset(ctx); err != nil {
				return err
			}
			return tx.Audit(ctx, "reset.requested", uid, meta, detail)
		}
		return s.queueReset(ctx, tx, u, meta)
	})
}

// queueReset replaces the user's reset link with a new one and emits
// ResetPasswordRequest inside tx, whose subscriber queues the mail: the
// one way a reset link is made, for a request from the user
// (RequestPasswordReset) or from an operator (SendResetLink,
// CreateAccount without a password).
func (s *Users) queueReset(ctx context.Context, tx *Tx, u *User, meta ClientMeta) error {
	// The older link is voided here but not sent through the change
	// feed: a replica may still show its form for a few seconds, but
	// using it is the counted DELETE in ResetPassword, which finds it
	// gone. Notifying would make a repeated request for a known address
	// slower than for an unknown one (SECURITY R2).
	if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = ? AND scopes = ?`, u.ID, ScopeReset); err != nil {
		return err
	}
	tok, err := tx.insertToken(ctx, u.ID, s.cfg.ResetTTL, ScopeReset, "", meta)
	if err != nil {
		return err
	}
	if err := tx.Audit(ctx, "reset.requested", u.ID, meta, ""); err != nil {
		return err
	}
	ev := ResetPasswordRequest{Email: u.Email, AccessToken: tok, User: u, Meta: meta}
	return emit(ctx, tx, s.onReset, ev, "resetPasswordRequest")
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
		if err := s.tell(ctx, tx, AccountEvent{Type: EventUserPasswordChanged, User: &u, Reason: "reset", Meta: meta}); err != nil {
			return err
		}
		if u.EmailPlaceholder {
			return nil // no notice to an address that reaches nobody
		}
		return emit(ctx, tx, s.onChanged, PasswordChanged{User: &u, Reason: "reset", Meta: meta}, "password-changed")
	})
	return err
}

// sameStatementsAsReset runs, for an address that gets no mail, the
// statements a reset for a known one runs (void the older link, insert
// the token, queue the mail), each matching or inserting no row. On
// PostgreSQL each statement is a round trip to the server, so without
// them a known address would answer measurably later (SECURITY R2).
func (t *Tx) sameStatementsAsReset(ctx context.Context) error {
	for _, q := range []string{
		`DELETE FROM access_tokens WHERE user_id = 0 AND scopes = ?`,
		`INSERT INTO access_tokens(digest, user_id, ttl, created, scopes) SELECT digest, user_id, ttl, created, ? FROM access_tokens WHERE 1 = 0`,
		`INSERT INTO outbox(kind, to_addr, subject, created, next_attempt_at) SELECT kind, to_addr, subject, created, next_attempt_at FROM outbox WHERE ? = ''`,
	} {
		if _, err := t.Exec(ctx, q, ScopeReset); err != nil {
			return err
		}
	}
	return nil
}
