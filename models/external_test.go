package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// TestExternalSignIn: the account a provider account reaches — by its
// identity, a new one, or none when its email is someone's (O4) — and the
// notices of links and unlinks, on both stores.
func TestExternalSignIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk := newUsers(t, models.Config{})
	var notices []models.SignInMethodChanged
	u.OnSignInMethodChanged(func(_ context.Context, _ *models.Tx, ev models.SignInMethodChanged) error {
		notices = append(notices, ev)
		return nil
	})
	meta := models.ClientMeta{IP: "192.0.2.1"}

	// A new provider account: a new account without a password.
	gil := models.ExternalAccount{Provider: "dex", Subject: "s-gil", Email: "gil@example.com", EmailVerified: true}
	res, err := u.ExternalSignIn(ctx, gil, false, 0, meta)
	if err != nil || !res.Created || res.User.HasPassword() || !*res.User.EmailVerified || res.Token.Method != "dex" {
		t.Fatalf("first sign-in: %+v, %v", res, err)
	}
	again, err := u.ExternalSignIn(ctx, models.ExternalAccount{Provider: "dex", Subject: "s-gil", Email: "other@example.com"}, false, 0, meta)
	if err != nil || again.Created || again.User.ID != res.User.ID {
		t.Fatalf("the same subject with another email: %+v, %v", again, err)
	}
	for _, pw := range []string{"", "anything-at-all-1"} {
		if _, _, err := u.Login(ctx, models.Credentials{Email: "gil@example.com", Password: pw}, meta); err == nil {
			t.Fatalf("a password login (%q) to an account without a password succeeded", pw)
		}
	}

	// An address that is someone's: never signed in (O4).
	ann := mustCreate(t, u, "email", "ann@example.com", "password", "ann-secret-pw-1")
	var link *models.LinkRequiredError
	for _, autoLink := range []bool{false, true} {
		_, err := u.ExternalSignIn(ctx, models.ExternalAccount{Provider: "dex", Subject: "s-ann", Email: "ANN@example.com", EmailVerified: true}, autoLink, 0, meta)
		if !errors.As(err, &link) || link.Account.Subject != "s-ann" {
			t.Fatalf("ann's address (auto-link %t, ann unverified): %v", autoLink, err)
		}
	}
	if len(notices) != 0 {
		t.Fatalf("notices before any link: %+v", notices)
	}
	// Linked by its owner: a notice; the same link again changes nothing;
	// someone else's provider account is refused.
	if err := u.LinkIdentity(ctx, ann.ID, link.Account, meta); err != nil {
		t.Fatal(err)
	}
	if err := u.LinkIdentity(ctx, ann.ID, link.Account, meta); err != nil {
		t.Fatalf("linking twice: %v", err)
	}
	if err := u.LinkIdentity(ctx, ann.ID, gil, meta); !errors.Is(err, models.ErrIdentityTaken) {
		t.Fatalf("linking gil's provider account to ann: %v", err)
	}
	if len(notices) != 1 || !notices[0].Linked || notices[0].User.Email != "ann@example.com" || notices[0].Provider != "dex" {
		t.Fatalf("notices after the link: %+v", notices)
	}
	res, err = u.ExternalSignIn(ctx, link.Account, false, 0, meta)
	if err != nil || res.User.ID != ann.ID {
		t.Fatalf("the linked provider account: %+v, %v", res, err)
	}

	// Unlink: ann has a password, so her only identity may go; gil's may not.
	ids, _ := u.IdentitiesOf(ctx, ann.ID)
	if _, err := u.UnlinkIdentity(ctx, ann.ID, ids[0].ID, meta); err != nil {
		t.Fatal(err)
	}
	if len(notices) != 2 || notices[1].Linked {
		t.Fatalf("notices after the unlink: %+v", notices)
	}
	gids, _ := u.IdentitiesOf(ctx, res.User.ID)
	if len(gids) != 0 {
		t.Fatalf("ann still has %+v", gids)
	}
	gids, _ = u.IdentitiesOf(ctx, again.User.ID)
	if _, err := u.UnlinkIdentity(ctx, again.User.ID, gids[0].ID, meta); !errors.Is(err, models.ErrLastSignInMethod) {
		t.Fatalf("unlinking gil's only way in: %v", err)
	}
	if _, err := u.UnlinkIdentity(ctx, ann.ID, gids[0].ID, meta); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("ann unlinking gil's identity: %v", err)
	}

	// No email at all (X): a placeholder address that gets no notice.
	x, err := u.ExternalSignIn(ctx, models.ExternalAccount{Provider: "x", Subject: "42"}, false, 0, meta)
	if err != nil || !x.User.EmailPlaceholder || *x.User.EmailVerified {
		t.Fatalf("a provider without email: %+v, %v", x, err)
	}
	if err := u.LinkIdentity(ctx, x.User.ID, models.ExternalAccount{Provider: "dex", Subject: "s-x"}, meta); err != nil || len(notices) != 2 {
		t.Fatalf("a link to a placeholder account: %v, %d notices (want none sent)", err, len(notices))
	}

	// Flows: single use, bound to the browser, expiring.
	if err := u.SaveFlow(ctx, "st", "br", models.Flow{Purpose: models.FlowLogin, Provider: "dex", Nonce: "n", Verifier: "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.TakeFlow(ctx, "st", "other-browser"); !errors.Is(err, models.ErrFlowInvalid) {
		t.Fatalf("another browser: %v", err)
	}
	if f, err := u.TakeFlow(ctx, "st", "br"); err != nil || f.Nonce != "n" || f.Verifier != "v" {
		t.Fatalf("the flow: %+v, %v", f, err)
	}
	if _, err := u.TakeFlow(ctx, "st", "br"); !errors.Is(err, models.ErrFlowInvalid) {
		t.Fatalf("taken twice: %v", err)
	}
	if err := u.SaveFlow(ctx, "st2", "br", models.Flow{Purpose: models.FlowLogin, Provider: "dex"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(models.FlowTTL + time.Second)
	if _, err := u.TakeFlow(ctx, "st2", "br"); !errors.Is(err, models.ErrFlowExpired) {
		t.Fatalf("a flow past its time: %v", err)
	}
	if err := u.SaveFlow(ctx, "st3", "br", models.Flow{Purpose: models.FlowLogin, Provider: "dex"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(models.FlowTTL + time.Second)
	if n, err := u.PruneFlows(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
}
