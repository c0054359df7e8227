package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

func TestVerifyAndConfirm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := models.ClientMeta{}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		u, _ := newUsers(t, models.Config{})
		rec := recordResets(u)
		bob := mustCreate(t, u, "email", "bob@example.com", "password", "bob-pw-1-long")
		if err := u.RequestVerification(ctx, bob.ID, "/verified", meta); err != nil {
			t.Fatal(err)
		}
		ev := rec.verifies[0]
		if len(ev.Token) != 128 || ev.Redirect != "/verified" || ev.User.ID != bob.ID {
			t.Fatalf("event %+v", ev)
		}
		got, err := u.ConfirmEmail(ctx, "1", ev.Token, meta)
		if err != nil || got.EmailVerified == nil || !*got.EmailVerified {
			t.Fatalf("confirm = %+v, %v", got, err)
		}
		if _, err := u.ConfirmEmail(ctx, "1", ev.Token, meta); !errors.Is(err, models.ErrInvalidToken) {
			t.Fatalf("second use: %v", err)
		}
	})

	t.Run("ErrSupersededExpiredUnknown", func(t *testing.T) {
		t.Parallel()
		u, clk := newUsers(t, models.Config{VerifyTTL: 3600})
		rec := recordResets(u)
		bob := mustCreate(t, u, "email", "bob@example.com", "password", "bob-pw-1-long")
		_ = u.RequestVerification(ctx, bob.ID, "", meta)
		_ = u.RequestVerification(ctx, bob.ID, "", meta)
		if _, err := u.ConfirmEmail(ctx, "1", rec.verifies[0].Token, meta); !errors.Is(err, models.ErrInvalidToken) {
			t.Fatalf("superseded: %v", err)
		}
		clk.Advance(time.Hour)
		if _, err := u.ConfirmEmail(ctx, "1", rec.verifies[1].Token, meta); !errors.Is(err, models.ErrInvalidToken) {
			t.Fatalf("expired: %v", err)
		}
		for _, uid := range []string{"999", "abc", "-1"} {
			if _, err := u.ConfirmEmail(ctx, uid, "x", meta); !errors.Is(err, models.ErrUserNotFound) {
				t.Errorf("uid %q: %v, want ErrUserNotFound", uid, err)
			}
		}
		if err := u.RequestVerification(ctx, 999, "", meta); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("verify unknown user: %v", err)
		}
	})

	t.Run("ErrEmailChangedSinceMailing", func(t *testing.T) {
		t.Parallel()
		u, _ := newUsers(t, models.Config{})
		rec := recordResets(u)
		bob := mustCreate(t, u, "email", "bob@example.com", "password", "bob-pw-1-long")
		_ = u.RequestVerification(ctx, bob.ID, "", meta)
		if _, err := u.UpdateUser(ctx, bob.ID, models.StringFields("email", "robert@example.com"), [32]byte{}, meta); err != nil {
			t.Fatal(err)
		}
		if _, err := u.ConfirmEmail(ctx, "1", rec.verifies[0].Token, meta); !errors.Is(err, models.ErrInvalidToken) {
			t.Fatalf("link for the old address verified the new one: %v", err)
		}
	})
}
