package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Second factors: a TOTP authenticator with recovery codes (and passkeys,
// passkeys.go). An account with one signs in in two steps: the password,
// then a code. Login answers *MFARequiredError with a short-lived token
// instead of a session; CompleteMFA takes that token and a code and issues
// the session. Codes are used once (SECURITY M1, M3) and throttled like
// passwords (M2). A password reset leaves the factors alone and signs
// nobody in (M4). Enrolling or removing a factor asks for a recent
// authentication (the handlers call Confirm) and mails a notice (M6).

// TOTP parameters (RFC 6238 defaults, which every authenticator app reads).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	totpSkew   = 1 // steps either side of now
	// MFATokenTTL is how long the second step may take.
	MFATokenTTL = 5 * time.Minute
	// RecoveryCodeCount is how many recovery codes a set has.
	RecoveryCodeCount = 10
)

var (
	// ErrMFAInvalid: the mfaToken is unknown, used or expired.
	ErrMFAInvalid = &Error{Kind: KindUnauthorized, Code: "INVALID_MFA_TOKEN", Message: "The second step has expired: log in again"}
	// ErrMFACode: the code is not right (or was used already).
	ErrMFACode = &Error{Kind: KindUnauthorized, Code: "INVALID_MFA_CODE", Message: "That code is not right"}
	// ErrTOTPEnabled: the account has a confirmed authenticator already.
	ErrTOTPEnabled = &Error{Kind: KindUnprocessable, Code: "TOTP_ENABLED", Message: "Two-step verification is on already"}
	// ErrTOTPNotEnrolling: confirm without a pending enrolment.
	ErrTOTPNotEnrolling = &Error{Kind: KindUnprocessable, Code: "TOTP_NOT_ENROLLING", Message: "Start turning on two-step verification first"}
)

// MFARequiredError is Login's answer for an account with a second factor:
// the password was right; Token (mfaToken in the API) and a code finish
// the login through CompleteMFA.
type MFARequiredError struct {
	Token   string
	Methods []string // "totp", "recovery-code", "passkey"
}

func (e *MFARequiredError) Error() string { return "MFA_REQUIRED: a second factor is required" }

// Factors are a user's second factors.
type Factors struct {
	TOTP         bool // a confirmed authenticator
	RecoveryLeft int  // unused recovery codes
	Passkeys     int
}

// Any says whether the account signs in in two steps.
func (f Factors) Any() bool { return f.TOTP || f.Passkeys > 0 }

// factorsQuery counts a user's second factors (the user id three times).
const factorsQuery = `SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = ? AND confirmed = 1),
	(SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL),
	(SELECT count(*) FROM webauthn_credentials WHERE user_id = ?)`

func scanFactors(row *sql.Row) (Factors, error) {
	var f Factors
	var totpOn int
	err := row.Scan(&totpOn, &f.RecoveryLeft, &f.Passkeys)
	f.TOTP = totpOn > 0
	return f, err
}

// methods are the ways the second step can be done, as MFA_REQUIRED lists
// them.
func (f Factors) methods() []string {
	var m []string
	if f.TOTP {
		m = append(m, "totp", "recovery-code")
	}
	if f.Passkeys > 0 {
		m = append(m, "passkey")
	}
	return m
}

// SecondFactors reads a user's second factors.
func (s *Users) SecondFactors(ctx context.Context, userID int64) (Factors, error) {
	return scanFactors(s.db.QueryRow(ctx, factorsQuery, userID, userID, userID))
}

// secondFactors reads them inside tx.
func (t *Tx) secondFactors(ctx context.Context, userID int64) (Factors, error) {
	return scanFactors(t.QueryRow(ctx, factorsQuery, userID, userID, userID))
}

// newMFAChallenge stores the pending second step of a login inside tx and
// returns its error, carrying the token and the user's factors.
func (t *Tx) newMFAChallenge(ctx context.Context, userID, ttl int64, f Factors) (*MFARequiredError, error) {
	tok := NewTokenID()
	d := Digest(tok)
	if _, err := t.Exec(ctx, `INSERT INTO mfa_challenges(digest, user_id, ttl, created, expires) VALUES (?,?,?,?,?)`,
		d[:], userID, ttl, ms(t.now), ms(t.now.Add(MFATokenTTL))); err != nil {
		return nil, err
	}
	return &MFARequiredError{Token: tok, Methods: f.methods()}, nil
}

// MFAChallenge is a pending second step, for the page that asks for it.
type MFAChallenge struct {
	UserID  int64
	TTL     int64
	Expires time.Time
}

// PendingMFA looks up an mfaToken without using it (ErrMFAInvalid when it
// is unknown or expired).
func (s *Users) PendingMFA(ctx context.Context, mfaToken string) (*MFAChallenge, error) {
	if !ValidTokenShape(mfaToken) {
		return nil, ErrMFAInvalid
	}
	d := Digest(mfaToken)
	var c MFAChallenge
	var expires int64
	err := s.db.QueryRow(ctx, `SELECT user_id, ttl, expires FROM mfa_challenges WHERE digest = ?`, d[:]).Scan(&c.UserID, &c.TTL, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrMFAInvalid
	}
	if err != nil {
		return nil, err
	}
	c.Expires = fromMS(expires)
	if !s.now().Before(c.Expires) {
		return nil, ErrMFAInvalid
	}
	return &c, nil
}

// CompleteMFA finishes a two-step login: mfaToken from Login's
// *MFARequiredError and a code from the authenticator, or a recovery
// code. A right code issues the session (and uses the token and the code
// up); a wrong one counts against the account like a wrong password.
// Config.OnLogin hears the outcome (observe.go).
func (s *Users) completeMFA(ctx context.Context, mfaToken, code string, meta ClientMeta) (*AccessToken, *User, error) {
	c, err := s.PendingMFA(ctx, mfaToken)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.FindUserByID(ctx, c.UserID)
	if err != nil {
		return nil, nil, ErrMFAInvalid
	}
	var tok *AccessToken
	err = s.secondFactorAttempt(ctx, u, meta, codeCheck(ctx, u, code), func(tx *Tx, how string) error {
		var err error
		tok, err = s.finishSecondStep(ctx, tx, mfaToken, c, u, how, meta)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return tok, u, nil
}

// finishSecondStep ends a two-step login inside tx once its second factor
// was accepted (a code here, a passkey in CompletePasskeyMFA): the pending
// step is used up and the session issued.
func (s *Users) finishSecondStep(ctx context.Context, tx *Tx, mfaToken string, c *MFAChallenge, u *User, how string, meta ClientMeta) (*AccessToken, error) {
	d := Digest(mfaToken)
	res, err := tx.Exec(ctx, `DELETE FROM mfa_challenges WHERE digest = ?`, d[:])
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err == nil {
			err = ErrMFAInvalid // another request finished it first
		}
		return nil, err
	}
	tok, err := tx.insertToken(ctx, u.ID, c.TTL, ScopeSession, "", meta)
	if err != nil {
		return nil, err
	}
	if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionCreated, User: u, Method: "password", Meta: meta}); err != nil {
		return nil, err
	}
	return tok, tx.Audit(ctx, "login.ok", u.ID, meta, how)
}

// VerifySecondFactor checks a code for a signed-in user (a change that
// asks for it), with the same throttle as a login's second step.
func (s *Users) VerifySecondFactor(ctx context.Context, u *User, code string, meta ClientMeta) error {
	return s.secondFactorAttempt(ctx, u, meta, codeCheck(ctx, u, code), func(*Tx, string) error { return nil })
}

// codeCheck is secondFactorAttempt's check of a typed code: a TOTP code
// or a recovery code.
func codeCheck(ctx context.Context, u *User, code string) func(*Tx) (string, error) {
	code = normalizeCode(code)
	return func(tx *Tx) (string, error) { return tx.useCode(ctx, u.ID, code) }
}

// secondFactorAttempt is the one way a second factor is tried: throttled
// on the account's second-factor counter (M2); check accepts it inside the
// same transaction as won — a TOTP code accepted once (M1), a recovery
// code used up (M3), a passkey's counter moved on (M5) — and says how
// ("" when it is not right).
func (s *Users) secondFactorAttempt(ctx context.Context, u *User, meta ClientMeta, check func(tx *Tx) (string, error), won func(tx *Tx, how string) error) error {
	key := "mfa:" + accountKey(u)
	meta = s.trustDevice(ctx, meta, u.ID) // a known device's own counter (N1)
	if err := s.limiter.BeforeLogin(ctx, key, meta); err != nil {
		return s.auditThrottled(ctx, err, "mfa.throttled", u.ID, meta)
	}
	defer s.limiter.EndLogin(key, meta)
	now := s.now()
	var ok bool
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		how, err := check(tx)
		if err != nil || how == "" {
			return err
		}
		if err := won(tx, how); err != nil {
			return err
		}
		ok = true
		return s.limiter.RecordLogin(ctx, tx, key, meta, true)
	})
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if err := tx.Audit(ctx, "mfa.failed", u.ID, meta, ""); err != nil {
			return err
		}
		return s.limiter.RecordLogin(ctx, tx, key, meta, false)
	}); err != nil {
		return err
	}
	return ErrMFACode
}

// normalizeCode drops what people type around a code: spaces, dashes,
// case.
func normalizeCode(code string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
}

// useCode accepts code for the user inside tx: a current TOTP code not
// accepted before, or an unused recovery code. It returns how ("totp",
// "recovery-code"), or "" when the code is not right.
func (t *Tx) useCode(ctx context.Context, userID int64, code string) (string, error) {
	if len(code) == int(totpDigits) && strings.Trim(code, "0123456789") == "" {
		var secret string
		var last int64
		err := t.QueryRow(ctx, `SELECT secret, last_step FROM mfa_totp WHERE user_id = ? AND confirmed = 1`, userID).Scan(&secret, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		step, ok := matchTOTP(secret, code, t.now, last)
		if !ok {
			return "", nil
		}
		res, err := t.Exec(ctx, `UPDATE mfa_totp SET last_step = ? WHERE user_id = ? AND last_step < ?`, step, userID, step)
		if err != nil {
			return "", err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return "", err // a concurrent request took this step
		}
		return "totp", nil
	}
	d := sha256.Sum256([]byte(code))
	res, err := t.Exec(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND digest = ? AND used_at IS NULL`, ms(t.now), userID, d[:])
	if err != nil {
		return "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return "", err
	}
	return "recovery-code", nil
}

// matchTOTP finds the time step within ±totpSkew of now whose code is
// code, later than last (a step is accepted once). It compares in
// constant time.
func matchTOTP(secret, code string, now time.Time, last int64) (int64, bool) {
	cur := now.Unix() / totpPeriod
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		if step <= last {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// TOTPEnrolment is an authenticator being set up: the secret, shown once
// as text and as the otpauth:// URI the QR code carries.
type TOTPEnrolment struct {
	Secret string
	URI    string
}

// BeginTOTP starts setting up an authenticator for the session's user
// (the caller has asked for a recent authentication): a new secret,
// unconfirmed until ConfirmTOTP gets a code made with it. Starting again
// replaces an unconfirmed one.
func (s *Users) BeginTOTP(ctx context.Context, sess *Session, issuer string) (*TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: sess.User.Email, Period: totpPeriod,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1, SecretSize: 20})
	if err != nil {
		return nil, fmt.Errorf("models: totp secret: %w", err)
	}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var confirmed int
		err := tx.QueryRow(ctx, `SELECT confirmed FROM mfa_totp WHERE user_id = ?`, sess.User.ID).Scan(&confirmed)
		switch {
		case err == nil && confirmed == 1:
			return ErrTOTPEnabled
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = ?`, sess.User.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO mfa_totp(user_id, secret, confirmed, last_step, created) VALUES (?,?,0,0,?)`,
			sess.User.ID, key.Secret(), ms(tx.now))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &TOTPEnrolment{Secret: key.Secret(), URI: key.URL()}, nil
}

// ConfirmTOTP turns the authenticator on with a code it made, and returns
// a new set of recovery codes, shown once.
func (s *Users) ConfirmTOTP(ctx context.Context, sess *Session, code string, meta ClientMeta) ([]string, error) {
	code = normalizeCode(code)
	codes, digests, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var secret string
		var confirmed int
		err := tx.QueryRow(ctx, `SELECT secret, confirmed FROM mfa_totp WHERE user_id = ?`, sess.User.ID).Scan(&secret, &confirmed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrTOTPNotEnrolling
		case err != nil:
			return err
		case confirmed == 1:
			return ErrTOTPEnabled
		}
		step, ok := matchTOTP(secret, code, tx.now, 0)
		if !ok {
			return ErrMFACode
		}
		if _, err := tx.Exec(ctx, `UPDATE mfa_totp SET confirmed = 1, last_step = ? WHERE user_id = ?`, step, sess.User.ID); err != nil {
			return err
		}
		if err := tx.replaceRecoveryCodes(ctx, sess.User.ID, digests); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "mfa.totp.enabled", sess.User.ID, meta, ""); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, &sess.User, "totp", true, meta)
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// DisableTOTP turns the authenticator off and drops the recovery codes
// (the caller has asked for a recent authentication).
func (s *Users) DisableTOTP(ctx context.Context, sess *Session, meta ClientMeta) error {
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM mfa_totp WHERE user_id = ? AND confirmed = 1`, sess.User.ID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, sess.User.ID); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "mfa.totp.disabled", sess.User.ID, meta, ""); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, &sess.User, "totp", false, meta)
	})
}

// RegenerateRecoveryCodes replaces the user's recovery codes with a new
// set, shown once (the caller has asked for a recent authentication).
func (s *Users) RegenerateRecoveryCodes(ctx context.Context, sess *Session, meta ClientMeta) ([]string, error) {
	codes, digests, err := newRecoveryCodes()
	if err != nil {
		return nil, err
	}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if f, err := tx.secondFactors(ctx, sess.User.ID); err != nil || !f.Any() {
			if err == nil {
				err = ErrTOTPNotEnrolling
			}
			return err
		}
		if err := tx.replaceRecoveryCodes(ctx, sess.User.ID, digests); err != nil {
			return err
		}
		return tx.Audit(ctx, "mfa.recovery-codes", sess.User.ID, meta, "")
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// ResetSecondFactors removes every second factor of a user (TOTP,
// recovery codes, passkeys) and ends their sessions: an operator's way
// back in for someone locked out (latchkey user …).
func (s *Users) ResetSecondFactors(ctx context.Context, userID int64, meta ClientMeta) error {
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		tx.dropUser(userID)
		for _, q := range []string{`DELETE FROM mfa_totp WHERE user_id = ?`, `DELETE FROM recovery_codes WHERE user_id = ?`,
			`DELETE FROM webauthn_credentials WHERE user_id = ?`, `DELETE FROM mfa_challenges WHERE user_id = ?`,
			`DELETE FROM access_tokens WHERE user_id = ?`} {
			if _, err := tx.Exec(ctx, q, userID); err != nil {
				return err
			}
		}
		return tx.Audit(ctx, "mfa.reset", userID, meta, "by an operator")
	})
}

// PruneMFAChallenges deletes second steps past their time.
func (s *Users) PruneMFAChallenges(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM mfa_challenges WHERE expires <= ?`, ms(tx.now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (t *Tx) replaceRecoveryCodes(ctx context.Context, userID int64, digests [][32]byte) error {
	if _, err := t.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, d := range digests {
		if _, err := t.Exec(ctx, `INSERT INTO recovery_codes(user_id, digest) VALUES (?,?)`, userID, d[:]); err != nil {
			return err
		}
	}
	return nil
}

// recoveryAlphabet has no 0/o, 1/l/i: codes are read off paper.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newRecoveryCodes makes a set: ten codes of 10 characters (about 49
// bits each), shown as xxxxx-xxxxx, and their digests.
func newRecoveryCodes() ([]string, [][32]byte, error) {
	codes := make([]string, RecoveryCodeCount)
	digests := make([][32]byte, RecoveryCodeCount)
	buf := make([]byte, 10)
	for i := range codes {
		if _, err := rand.Read(buf); err != nil {
			return nil, nil, err
		}
		var b strings.Builder
		for j, c := range buf {
			if j == 5 {
				b.WriteByte('-')
			}
			b.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes[i] = b.String()
		digests[i] = sha256.Sum256([]byte(normalizeCode(codes[i])))
	}
	return codes, digests, nil
}

// factorChanged mails the notice of a second factor turned on or off
// (M6), through the sign-in method subscribers.
func (s *Users) factorChanged(ctx context.Context, tx *Tx, u *User, factor string, on bool, meta ClientMeta) error {
	return s.methodChanged(ctx, tx, u, factor, on, meta)
}
