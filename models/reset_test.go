package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// resetRecorder subscribes to the mail events and enqueues a message for
// each, as boot does, so tests see what would be mailed.
type resetRecorder struct {
	resets   []models.ResetPasswordRequest
	changed  []models.PasswordChanged
	verifies []models.VerifyEmailRequest
	fail     error // returned by every subscriber when set
}

func recordResets(u *models.Users) *resetRecorder {
	r := &resetRecorder{}
	u.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		if r.fail != nil {
			return r.fail
		}
		r.resets = append(r.resets, ev)
		return tx.EnqueueEmail(ctx, models.Email{Kind: "reset-password", To: ev.Email, Subject: "reset", Text: ev.AccessToken.ID})
	})
	u.OnPasswordChanged(func(ctx context.Context, tx *models.Tx, ev models.PasswordChanged) error {
		if r.fail != nil {
			return r.fail
		}
		r.changed = append(r.changed, ev)
		return tx.EnqueueEmail(ctx, models.Email{Kind: "password-changed", To: ev.User.Email, Subject: "changed", Text: ev.Reason})
	})
	u.OnVerifyEmailRequest(func(ctx context.Context, tx *models.Tx, ev models.VerifyEmailRequest) error {
		if r.fail != nil {
			return r.fail
		}
		r.verifies = append(r.verifies, ev)
		return tx.EnqueueEmail(ctx, models.Email{Kind: "verify-email", To: ev.User.Email, Subject: "verify", Text: ev.Token})
	})
	return r
}

func outboxCount(t *testing.T, db *models.DB) int64 {
	t.Helper()
	st, err := models.NewOutbox(db, models.OutboxConfig{}).Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending + st.Sent + st.Dead
}

func TestRequestPasswordReset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := models.ClientMeta{IP: "192.0.2.7", UserAgent: "test"}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		u, db, _ := newUsersDB(t, models.Config{})
		rec := recordResets(u)
		bob := mustCreate(t, u, "email", "Bob@Example.com", "password", "bob-pw-1-long")
		if err := u.RequestPasswordReset(ctx, " bob@example.com", meta); err != nil {
			t.Fatal(err)
		}
		if len(rec.resets) != 1 {
			t.Fatalf("%d events", len(rec.resets))
		}
		ev := rec.resets[0]
		if ev.Email != "Bob@Example.com" || ev.User.ID != bob.ID || ev.AccessToken.Scopes != models.ScopeReset ||
			ev.AccessToken.TTL != 900 || !models.ValidTokenShape(ev.AccessToken.ID) || ev.Meta != meta {
			t.Fatalf("event %+v token %+v", ev, ev.AccessToken)
		}
		if got, err := u.CheckResetToken(ctx, ev.AccessToken.ID); err != nil || got.ID != bob.ID {
			t.Fatalf("CheckResetToken = %v, %v", got, err)
		}
		// Nothing about the account changed: the old password still works.
		if _, _, err := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-1-long"}, meta); err != nil {
			t.Fatalf("login after a reset request: %v", err)
		}
		if n := outboxCount(t, db); n != 1 {
			t.Fatalf("%d outbox rows", n)
		}
	})

	t.Run("UnknownEmailIsSilent", func(t *testing.T) {
		t.Parallel()
		u, db, _ := newUsersDB(t, models.Config{})
		rec := recordResets(u)
		if err := u.RequestPasswordReset(ctx, "nobody@example.com", meta); err != nil {
			t.Fatal(err)
		}
		if len(rec.resets) != 0 || outboxCount(t, db) != 0 {
			t.Fatal("an unknown email produced mail")
		}
		u2, _ := newUsers(t, models.Config{CompatEmailNotFound: true})
		if err := u2.RequestPasswordReset(ctx, "nobody@example.com", meta); !errors.Is(err, models.ErrEmailNotFound) {
			t.Fatalf("compat: %v, want ErrEmailNotFound", err)
		}
		if err := u2.RequestPasswordReset(ctx, "", meta); !errors.Is(err, models.ErrEmailRequired) {
			t.Fatalf("empty: %v, want ErrEmailRequired", err)
		}
	})

	t.Run("ErrSubscriberRollsBack", func(t *testing.T) {
		t.Parallel()
		u, db, _ := newUsersDB(t, models.Config{})
		rec := recordResets(u)
		mustCreate(t, u, "email", "bob@example.com", "password", "bob-pw-1-long")
		if err := u.RequestPasswordReset(ctx, "bob@example.com", meta); err != nil {
			t.Fatal(err)
		}
		old := rec.resets[0].AccessToken.ID
		rec.fail = errors.New("render failed")
		if err := u.RequestPasswordReset(ctx, "bob@example.com", meta); err == nil {
			t.Fatal("a failing subscriber did not fail the request")
		}
		// All or nothing: the older token is still there and no row was added.
		if _, err := u.CheckResetToken(ctx, old); err != nil {
			t.Fatalf("older token lost in a rolled-back request: %v", err)
		}
		if n := outboxCount(t, db); n != 1 {
			t.Fatalf("%d outbox rows, want 1", n)
		}
	})
}

func TestResetPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := models.ClientMeta{IP: "192.0.2.8"}

	setup := func(t *testing.T) (*models.Users, *testkit.Clock, *resetRecorder, *models.User, string) {
		u, clk := newUsers(t, models.Config{})
		rec := recordResets(u)
		bob := mustCreate(t, u, "email", "bob@example.com", "password", "bob-pw-1-long")
		if err := u.RequestPasswordReset(ctx, "bob@example.com", meta); err != nil {
			t.Fatal(err)
		}
		return u, clk, rec, bob, rec.resets[len(rec.resets)-1].AccessToken.ID
	}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		u, _, rec, bob, tok := setup(t)
		sess, _, err := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-1-long"}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); err != nil {
			t.Fatal(err)
		}
		if s, _ := u.Authenticate(ctx, sess.ID, models.ScopeSession); s != nil {
			t.Fatal("a session survived the reset")
		}
		if err := u.ResetPassword(ctx, tok, "bob-pw-3-long", meta); !errors.Is(err, models.ErrAuthRequired) {
			t.Fatalf("second use: %v, want ErrAuthRequired", err)
		}
		if len(rec.changed) != 1 || rec.changed[0].Reason != "reset" || rec.changed[0].User.ID != bob.ID || rec.changed[0].Meta != meta {
			t.Fatalf("changed events %+v", rec.changed)
		}
		if _, _, err := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-2-long"}, meta); err != nil {
			t.Fatal(err)
		}
		if _, _, err := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-1-long"}, meta); !errors.Is(err, models.ErrLoginFailed) {
			t.Fatalf("old password: %v", err)
		}
	})

	t.Run("ErrAuthRequired", func(t *testing.T) {
		t.Parallel()
		u, _, _, _, tok := setup(t)
		sess, _, _ := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-1-long"}, meta)
		for name, raw := range map[string]string{"session": sess.ID, "unknown": models.NewTokenID(), "malformed": "nope", "empty": ""} {
			if err := u.ResetPassword(ctx, raw, "bob-pw-2-long", meta); !errors.Is(err, models.ErrAuthRequired) {
				t.Errorf("%s token: %v, want ErrAuthRequired", name, err)
			}
		}
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); err != nil {
			t.Fatalf("refusals used up the token: %v", err)
		}
	})

	t.Run("ErrSuperseded", func(t *testing.T) {
		t.Parallel()
		u, _, rec, _, old := setup(t)
		if err := u.RequestPasswordReset(ctx, "bob@example.com", meta); err != nil {
			t.Fatal(err)
		}
		if err := u.ResetPassword(ctx, old, "bob-pw-2-long", meta); !errors.Is(err, models.ErrAuthRequired) {
			t.Fatalf("older token: %v", err)
		}
		if err := u.ResetPassword(ctx, rec.resets[1].AccessToken.ID, "bob-pw-2-long", meta); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrExpired", func(t *testing.T) {
		t.Parallel()
		u, clk, _, _, tok := setup(t)
		clk.Advance(15*time.Minute - time.Millisecond)
		if _, err := u.CheckResetToken(ctx, tok); err != nil {
			t.Fatalf("1 ms before expiry: %v", err)
		}
		clk.Advance(time.Millisecond)
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); !errors.Is(err, models.ErrAuthRequired) {
			t.Fatalf("at expiry: %v", err)
		}
	})

	t.Run("ErrPolicyKeepsToken", func(t *testing.T) {
		t.Parallel()
		u, _, rec, _, tok := setup(t)
		err := u.ResetPassword(ctx, tok, "short", meta)
		if me, ok := models.AsError(err); !ok || me.Code != "PASSWORD_TOO_SHORT" {
			t.Fatalf("short: %v", err)
		}
		if len(rec.changed) != 0 {
			t.Fatal("a refused password sent a notice")
		}
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrSubscriberRollsBack", func(t *testing.T) {
		t.Parallel()
		u, _, rec, _, tok := setup(t)
		rec.fail = errors.New("render failed")
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); err == nil {
			t.Fatal("a failing notice did not fail the reset")
		}
		rec.fail = nil
		// Nothing happened: the old password works and the token is unused.
		if _, _, err := u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "bob-pw-1-long"}, meta); err != nil {
			t.Fatalf("old password after a rolled-back reset: %v", err)
		}
		if err := u.ResetPassword(ctx, tok, "bob-pw-2-long", meta); err != nil {
			t.Fatalf("token after a rolled-back reset: %v", err)
		}
	})
}
