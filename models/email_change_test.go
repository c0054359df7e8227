package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// sessionFor signs a user in and returns the session, as a page request
// has it (its Token.ID is the raw token).
func sessionFor(t *testing.T, u *models.Users, email, password string) *models.Session {
	t.Helper()
	ctx := context.Background()
	tok, _, err := u.Login(ctx, models.Credentials{Email: email, Password: password}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := u.Authenticate(ctx, tok.ID, models.ScopeSession)
	if err != nil || s == nil {
		t.Fatalf("authenticate: %v", err)
	}
	s.Token.ID = tok.ID
	return s
}

// TestEmailChange: the address changes only through the link to the new
// address, once, while it is live; the old address keeps working meanwhile;
// a cancel link or a newer request voids it; confirming ends the other
// sessions and tells the old address.
func TestEmailChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := models.ClientMeta{IP: "192.0.2.9"}
	u, clk := newUsers(t, models.Config{VerifyTTL: 3600})
	var reqs []models.EmailChangeRequested
	var changed []models.EmailChanged
	u.OnEmailChangeRequested(func(_ context.Context, _ *models.Tx, ev models.EmailChangeRequested) error {
		reqs = append(reqs, ev)
		return nil
	})
	u.OnEmailChanged(func(_ context.Context, _ *models.Tx, ev models.EmailChanged) error {
		changed = append(changed, ev)
		return nil
	})
	ann := mustCreate(t, u, "email", "ann@example.com", "password", "ann-pw-1-long")
	mustCreate(t, u, "email", "taken@example.com", "password", "other-pw-1-long")
	s1 := sessionFor(t, u, "ann@example.com", "ann-pw-1-long")
	s2 := sessionFor(t, u, "ann@example.com", "ann-pw-1-long")

	// Checked before anything: the address, then the password, then uniqueness.
	for addr, code := range map[string]string{"": "presence", "nope": "custom.email", "ANN@example.com": "same"} {
		_, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", addr, meta)
		if v, ok := models.AsValidation(err); !ok || v.Fields[0].Code != code {
			t.Errorf("%q: %v, want %s", addr, err, code)
		}
	}
	if _, err := u.RequestEmailChange(ctx, s1, "wrong-password", "new@example.com", meta); !errors.Is(err, models.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", "Taken@example.com", meta); err == nil {
		t.Fatal("an address of another account was accepted")
	} else if v, ok := models.AsValidation(err); !ok || v.Fields[0].Code != "uniqueness" {
		t.Fatalf("taken: %v", err)
	}
	if len(reqs) != 0 {
		t.Fatalf("refused requests emitted %d events", len(reqs))
	}

	// A first request, replaced by a second: only the second's link works.
	if _, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", "first@example.com", meta); err != nil {
		t.Fatal(err)
	}
	ch, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", " Ann.New@example.com ", meta)
	if err != nil || ch.NewEmail != "Ann.New@example.com" {
		t.Fatalf("request: %+v %v", ch, err)
	}
	if len(reqs) != 2 || len(reqs[1].ConfirmToken) != 128 || reqs[1].CancelToken == "" || reqs[1].User.Email != "ann@example.com" {
		t.Fatalf("events %+v", reqs)
	}
	if p, err := u.PendingEmailChange(ctx, ann.ID); err != nil || p == nil || p.NewEmail != "Ann.New@example.com" {
		t.Fatalf("pending: %+v %v", p, err)
	}
	if _, err := u.ConfirmEmailChange(ctx, reqs[0].ConfirmToken, [32]byte{}, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("superseded link: %v", err)
	}
	// Meanwhile the account keeps its address.
	if got, _ := u.FindUserByID(ctx, ann.ID); got.Email != "ann@example.com" {
		t.Fatalf("address before confirming: %s", got.Email)
	}
	sessionFor(t, u, "ann@example.com", "ann-pw-1-long")
	// The cancel link is not a confirmation link, and a GET-time check uses nothing.
	if _, err := u.ConfirmEmailChange(ctx, reqs[1].CancelToken, [32]byte{}, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("cancel token as a confirmation: %v", err)
	}
	if _, err := u.CheckEmailChange(ctx, reqs[1].ConfirmToken, false); err != nil {
		t.Fatal(err)
	}

	got, err := u.ConfirmEmailChange(ctx, reqs[1].ConfirmToken, s1.Token.Digest, meta)
	if err != nil || got.Email != "Ann.New@example.com" || got.EmailVerified == nil || !*got.EmailVerified {
		t.Fatalf("confirm: %+v %v", got, err)
	}
	if _, err := u.ConfirmEmailChange(ctx, reqs[1].ConfirmToken, s1.Token.Digest, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("second use: %v", err)
	}
	if len(changed) != 1 || changed[0].OldEmail != "ann@example.com" || changed[0].User.Email != "Ann.New@example.com" {
		t.Fatalf("EmailChanged %+v", changed)
	}
	if s, _ := u.Authenticate(ctx, s2.Token.ID, models.ScopeSession); s != nil {
		t.Fatal("the other session survived the change")
	}
	if s, _ := u.Authenticate(ctx, s1.Token.ID, models.ScopeSession); s == nil {
		t.Fatal("the session that confirmed was ended")
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "ann@example.com", Password: "ann-pw-1-long"}, meta); !errors.Is(err, models.ErrLoginFailed) {
		t.Fatalf("the old address still logs in: %v", err)
	}
	s1 = sessionFor(t, u, "ann.new@example.com", "ann-pw-1-long")

	// Cancel, and expiry.
	if _, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", "third@example.com", meta); err != nil {
		t.Fatal(err)
	}
	last := reqs[len(reqs)-1]
	if err := u.CancelEmailChange(ctx, last.CancelToken, meta); err != nil {
		t.Fatal(err)
	}
	if err := u.CancelEmailChange(ctx, last.CancelToken, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := u.ConfirmEmailChange(ctx, last.ConfirmToken, [32]byte{}, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("confirm after cancel: %v", err)
	}
	clk.Advance(2 * time.Minute) // past the one-a-minute mail limit (none here, but as boot has it)
	if _, err := u.RequestEmailChange(ctx, s1, "ann-pw-1-long", "fourth@example.com", meta); err != nil {
		t.Fatal(err)
	}
	last = reqs[len(reqs)-1]
	clk.Advance(time.Hour)
	if p, _ := u.PendingEmailChange(ctx, ann.ID); p != nil {
		t.Fatalf("an expired change is pending: %+v", p)
	}
	if _, err := u.ConfirmEmailChange(ctx, last.ConfirmToken, [32]byte{}, meta); !errors.Is(err, models.ErrInvalidToken) {
		t.Fatalf("expired: %v", err)
	}
}

// TestEmailChangeWithoutPassword: an account without a password asks by a
// recent authentication, and is refused once it is stale.
func TestEmailChangeWithoutPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk := newUsers(t, models.Config{RecentAuth: 5 * time.Minute})
	res, err := u.ExternalSignIn(ctx, models.ExternalAccount{Provider: "dex", Subject: "gil", Email: "gil@example.com", EmailVerified: true}, false, 0, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := u.Authenticate(ctx, res.Token.ID, models.ScopeSession)
	if err != nil || s == nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Minute)
	if _, err := u.RequestEmailChange(ctx, s, "", "gil.new@example.com", models.ClientMeta{}); err != nil {
		t.Fatalf("recent: %v", err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := u.RequestEmailChange(ctx, s, "", "gil.other@example.com", models.ClientMeta{}); !errors.Is(err, models.ErrReauthRequired) {
		t.Fatalf("stale: %v", err)
	}
	if err := u.DeleteAccount(ctx, s, "", models.ClientMeta{}); !errors.Is(err, models.ErrReauthRequired) {
		t.Fatalf("delete when stale: %v", err)
	}
}

// TestEmailChangeMailLimited: a second link to the same address within a
// minute is refused with ErrEmailChangeTooSoon (the page's 429), and the
// first one still works.
func TestEmailChangeMailLimited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lc := models.DefaultLimitConfig()
	u, _, _, _ := newLimitedUsers(t, models.Config{}, &lc) // the limiter on the wall clock: both requests within its minute
	var reqs []models.EmailChangeRequested
	u.OnEmailChangeRequested(func(_ context.Context, _ *models.Tx, ev models.EmailChangeRequested) error {
		reqs = append(reqs, ev)
		return nil
	})
	mustCreate(t, u, "email", "ann@example.com", "password", "ann-pw-1-long")
	s := sessionFor(t, u, "ann@example.com", "ann-pw-1-long")
	if _, err := u.RequestEmailChange(ctx, s, "ann-pw-1-long", "new@example.com", models.ClientMeta{IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	_, err := u.RequestEmailChange(ctx, s, "ann-pw-1-long", "New@example.com", models.ClientMeta{IP: "192.0.2.1"})
	if !errors.Is(err, models.ErrEmailChangeTooSoon) {
		t.Fatalf("a second link within the minute: %v", err)
	}
	if len(reqs) != 1 {
		t.Fatalf("%d mails", len(reqs))
	}
	if _, err := u.ConfirmEmailChange(ctx, reqs[0].ConfirmToken, [32]byte{}, models.ClientMeta{}); err != nil {
		t.Fatalf("the first link after a refused second: %v", err)
	}
}
