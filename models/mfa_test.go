package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// enrolTOTP signs up and turns TOTP on for email; it returns the secret
// and the recovery codes.
func enrolTOTP(t *testing.T, u *models.Users, clk *testkit.Clock, email, pw string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	mustCreate(t, u, "email", email, "password", pw)
	tok, _, err := u.Login(ctx, models.Credentials{Email: email, Password: pw}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := u.Authenticate(ctx, tok.ID, models.ScopeSession)
	if err != nil || sess == nil {
		t.Fatal(err)
	}
	e, err := u.BeginTOTP(ctx, sess, "Latchkey")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.ConfirmTOTP(ctx, sess, "000000", models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
		t.Fatalf("confirming with a wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(e.Secret, clk.Now())
	codes, err := u.ConfirmTOTP(ctx, sess, code, models.ClientMeta{})
	if err != nil || len(codes) != models.RecoveryCodeCount {
		t.Fatalf("confirm: %d codes, %v", len(codes), err)
	}
	clk.Advance(30 * time.Second) // the enrolment's code is spent
	return e.Secret, codes
}

// passwordStep logs in with the password and returns the mfaToken.
func passwordStep(t *testing.T, u *models.Users, email, pw string) string {
	t.Helper()
	tok, _, err := u.Login(context.Background(), models.Credentials{Email: email, Password: pw}, models.ClientMeta{})
	var need *models.MFARequiredError
	if !errors.As(err, &need) || tok != nil || need.Token == "" || len(need.Methods) == 0 {
		t.Fatalf("login of an account with TOTP: %v, %v; want MFA_REQUIRED and no token", tok, err)
	}
	return need.Token
}

// TestM1TOTPCodeAcceptedOnce: a current code (or the one before) finishes
// the login once; the same code again, or an old one, is refused.
func TestM1TOTPCodeAcceptedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk := newUsers(t, models.Config{})
	secret, _ := enrolTOTP(t, u, clk, "ann@example.com", "ann-secret-pw-1")

	mfa := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	code, _ := totp.GenerateCode(secret, clk.Now())
	tok, who, err := u.CompleteMFA(ctx, mfa, code, models.ClientMeta{})
	if err != nil || tok == nil || who.Email != "ann@example.com" {
		t.Fatalf("the second step: %v, %v", tok, err)
	}
	if _, _, err := u.CompleteMFA(ctx, mfa, code, models.ClientMeta{}); !errors.Is(err, models.ErrMFAInvalid) {
		t.Fatalf("the same mfaToken again: %v", err)
	}
	again := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	if _, _, err := u.CompleteMFA(ctx, again, code, models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
		t.Fatalf("the same code in a second login: %v", err)
	}
	clk.Advance(60 * time.Second)
	prev, _ := totp.GenerateCode(secret, clk.Now().Add(-30*time.Second))
	if _, _, err := u.CompleteMFA(ctx, again, prev, models.ClientMeta{}); err != nil {
		t.Fatalf("the previous step's code (within the window, not used): %v", err)
	}
	third := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	for _, c := range []string{prev, code} {
		if _, _, err := u.CompleteMFA(ctx, third, c, models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
			t.Fatalf("a used or old code: %v", err)
		}
	}
	clk.Advance(models.MFATokenTTL)
	now, _ := totp.GenerateCode(secret, clk.Now())
	if _, _, err := u.CompleteMFA(ctx, third, now, models.ClientMeta{}); !errors.Is(err, models.ErrMFAInvalid) {
		t.Fatalf("an expired mfaToken: %v", err)
	}
}

// TestM2SecondFactorThrottled: wrong codes count like wrong passwords:
// past the free ones the account waits (429).
func TestM2SecondFactorThrottled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lc := models.DefaultLimitConfig()
	u, _, _, clk := newLimitedUsers(t, models.Config{}, &lc)
	lc.Now = clk.Now
	secret, _ := enrolTOTP(t, u, clk, "ann@example.com", "ann-secret-pw-1")
	mfa := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	var throttled bool
	for i := 0; i < 10 && !throttled; i++ {
		_, _, err := u.CompleteMFA(ctx, mfa, "000000", models.ClientMeta{IP: "192.0.2.9"})
		if me, ok := models.AsError(err); ok && me.Kind == models.KindTooMany {
			throttled = true
		} else if !errors.Is(err, models.ErrMFACode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if !throttled {
		t.Fatal("10 wrong codes were never throttled")
	}
	code, _ := totp.GenerateCode(secret, clk.Now())
	if _, _, err := u.CompleteMFA(ctx, mfa, code, models.ClientMeta{IP: "192.0.2.9"}); err == nil {
		t.Fatal("a right code went through while the account is throttled")
	}
}

// TestM3RecoveryCodesSingleUse: a recovery code finishes a login once;
// ten are given, and a new set replaces the old.
func TestM3RecoveryCodesSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk := newUsers(t, models.Config{})
	_, codes := enrolTOTP(t, u, clk, "ann@example.com", "ann-secret-pw-1")
	mfa := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	tok, who, err := u.CompleteMFA(ctx, mfa, " "+codes[3]+" ", models.ClientMeta{}) // as typed, spaces and all
	if err != nil || tok == nil {
		t.Fatalf("a recovery code: %v", err)
	}
	f, _ := u.SecondFactors(ctx, who.ID)
	if !f.TOTP || f.RecoveryLeft != models.RecoveryCodeCount-1 {
		t.Fatalf("factors after one recovery code: %+v", f)
	}
	again := passwordStep(t, u, "ann@example.com", "ann-secret-pw-1")
	if _, _, err := u.CompleteMFA(ctx, again, codes[3], models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
		t.Fatalf("a used recovery code: %v", err)
	}
	sess, _ := u.Authenticate(ctx, tok.ID, models.ScopeSession)
	fresh, err := u.RegenerateRecoveryCodes(ctx, sess, models.ClientMeta{})
	if err != nil || len(fresh) != models.RecoveryCodeCount {
		t.Fatal(err)
	}
	if _, _, err := u.CompleteMFA(ctx, again, codes[4], models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
		t.Fatalf("a code of the replaced set: %v", err)
	}
	if _, _, err := u.CompleteMFA(ctx, again, fresh[0], models.ClientMeta{}); err != nil {
		t.Fatalf("a code of the new set: %v", err)
	}
}

// TestM4ResetKeepsSecondFactor: a password reset signs nobody in and
// leaves two-step verification on; an operator's reset of the factors
// takes it off.
func TestM4ResetKeepsSecondFactor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk := newUsers(t, models.Config{})
	var resetTok string
	u.OnResetPasswordRequest(func(_ context.Context, _ *models.Tx, ev models.ResetPasswordRequest) error {
		resetTok = ev.AccessToken.ID
		return nil
	})
	enrolTOTP(t, u, clk, "ann@example.com", "ann-secret-pw-1")
	if err := u.RequestPasswordReset(ctx, "ann@example.com", models.ClientMeta{}); err != nil || resetTok == "" {
		t.Fatal(err)
	}
	if err := u.ResetPassword(ctx, resetTok, "ann-brand-new-pw-2", models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	passwordStep(t, u, "ann@example.com", "ann-brand-new-pw-2")
	who, _ := u.FindUserByEmail(ctx, "ann@example.com")
	if err := u.ResetSecondFactors(ctx, who.ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if tok, _, err := u.Login(ctx, models.Credentials{Email: "ann@example.com", Password: "ann-brand-new-pw-2"}, models.ClientMeta{}); err != nil || tok == nil {
		t.Fatalf("login after the operator reset the factors: %v", err)
	}
}
