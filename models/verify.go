package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// newVerificationToken returns LoopBack's verification token shape: 128 hex
// characters (64 random bytes).
func newVerificationToken() string {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("models: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
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
		if u.EmailPlaceholder {
			// The address reaches nobody and cannot be confirmed: nothing
			// is sent, and the answer is the same.
			return tx.Audit(ctx, "verify.requested", u.ID, meta, "placeholder-email")
		}
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
		t := true
		u.EmailVerified = &t
		if err := s.tell(ctx, tx, AccountEvent{Type: EventUserEmailVerified, User: u, Meta: meta}); err != nil {
			return err
		}
		return tx.Audit(ctx, "email.verified", u.ID, meta, "")
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
