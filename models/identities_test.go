package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/models"
)

// importGil imports alice (an ordinary account) and gil, whom LoopBack
// Passport created from a Google sign-in: a placeholder address, an
// identity (google, his subject), and a password only this test knows.
func importGil(t *testing.T, db *models.DB, u *models.Users) (alice, gil int64) {
	t.Helper()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("gil-knows-this-1"), 4)
	if err != nil {
		t.Fatal(err)
	}
	users := []models.ImportUser{
		{ID: 7, Email: "alice@example.com", PasswordHash: string(hash)},
		{ID: 9, Email: "109876543210987654321@loopback.google.com", Username: "google-login.109876543210987654321",
			PasswordHash: string(hash), EmailPlaceholder: true},
	}
	ids := []models.Identity{
		{Provider: "google", Subject: "109876543210987654321", UserID: 9,
			Profile: models.Fields{{Name: "displayName", Value: []byte(`"Gil Google"`)}}},
		{Provider: "github", Subject: "4242", UserID: 7},
	}
	err = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		if err := tx.ImportUsers(ctx, users); err != nil {
			return err
		}
		return tx.ImportIdentities(ctx, ids)
	})
	if err != nil {
		t.Fatal(err)
	}
	return 7, 9
}

// TestIdentities: an identity finds its user by (provider, subject) and
// by nothing else; a pair is unique; an identity needs its user; deleting
// the user deletes its identities.
func TestIdentities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, db, _ := newUsersDB(t, models.Config{})
	alice, gil := importGil(t, db, u)

	who, err := u.FindUserByIdentity(ctx, "google", "109876543210987654321")
	if err != nil || who.ID != gil || !who.EmailPlaceholder {
		t.Fatalf("FindUserByIdentity(google, gil) = %+v, %v", who, err)
	}
	if who, err := u.FindUserByIdentity(ctx, "github", "4242"); err != nil || who.ID != alice || who.EmailPlaceholder {
		t.Fatalf("FindUserByIdentity(github, 4242) = %+v, %v", who, err)
	}
	for _, c := range [][2]string{{"github", "109876543210987654321"}, {"google", "4242"}, {"google", ""}, {"", "4242"}, {"Google", "109876543210987654321"}} {
		if who, err := u.FindUserByIdentity(ctx, c[0], c[1]); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("FindUserByIdentity(%q, %q) = %+v, %v; want ErrNotFound", c[0], c[1], who, err)
		}
	}
	list, err := u.IdentitiesOf(ctx, gil)
	if err != nil || len(list) != 1 || list[0].Provider != "google" || list[0].UserID != gil || list[0].ID == 0 ||
		len(list[0].Profile) != 1 || list[0].Created.IsZero() || !list[0].Updated.Equal(list[0].Created) {
		t.Fatalf("IdentitiesOf(gil) = %+v, %v", list, err)
	}

	// The same pair again, or an identity of nobody: the whole write rolls back.
	for _, bad := range []models.Identity{
		{Provider: "google", Subject: "109876543210987654321", UserID: alice},
		{Provider: "facebook", Subject: "1", UserID: 404},
		{Provider: "facebook", Subject: "", UserID: alice},
	} {
		err := db.Write(ctx, time.Now(), func(tx *models.Tx) error {
			if err := tx.ImportIdentities(ctx, []models.Identity{{Provider: "x", Subject: "first", UserID: alice}}); err != nil {
				return err
			}
			return tx.ImportIdentities(ctx, []models.Identity{bad})
		})
		if err == nil {
			t.Errorf("ImportIdentities(%+v) succeeded", bad)
		}
	}
	if list, err := u.IdentitiesOf(ctx, alice); err != nil || len(list) != 1 {
		t.Fatalf("alice's identities after refused imports: %+v, %v", list, err)
	}

	// A placeholder address never matches for linking; a real one does.
	if who, err := u.FindUserForLinking(ctx, "109876543210987654321@LOOPBACK.google.com"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("FindUserForLinking(gil's placeholder) = %+v, %v", who, err)
	}
	if who, err := u.FindUserForLinking(ctx, "Alice@example.com"); err != nil || who.ID != alice {
		t.Errorf("FindUserForLinking(alice) = %+v, %v", who, err)
	}

	if n, err := u.DeleteUser(ctx, gil, models.ClientMeta{}); err != nil || n != 1 {
		t.Fatalf("delete gil: %d, %v", n, err)
	}
	if _, err := u.FindUserByIdentity(ctx, "google", "109876543210987654321"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("gil's identity outlived him: %v", err)
	}
}

// TestPlaceholderEmailGetsNoMail: a placeholder address gets no reset, no
// verification link and no notice, while the client's answer is the one
// any address gets (SECURITY R1/R2); once the user types a real address,
// mail flows again.
func TestPlaceholderEmailGetsNoMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := models.ClientMeta{IP: "192.0.2.7", UserAgent: "test"}
	for _, compat := range []bool{false, true} {
		u, db, _ := newUsersDB(t, models.Config{CompatEmailNotFound: compat})
		rec := recordResets(u)
		var noticed []models.EmailChanged
		u.OnEmailChanged(func(ctx context.Context, tx *models.Tx, ev models.EmailChanged) error {
			noticed = append(noticed, ev)
			return nil
		})
		_, gil := importGil(t, db, u)
		placeholder := "109876543210987654321@loopback.google.com"

		if err := u.RequestPasswordReset(ctx, placeholder, meta); err != nil {
			t.Fatalf("compat %t: reset for a placeholder: %v, want the answer any address gets", compat, err)
		}
		if err := u.RequestVerification(ctx, gil, "", meta); err != nil {
			t.Fatalf("verification for a placeholder: %v", err)
		}
		var resetTokens int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM access_tokens WHERE user_id = ?`, gil).Scan(&resetTokens); err != nil {
			t.Fatal(err)
		}
		if len(rec.resets)+len(rec.verifies) != 0 || outboxCount(t, db) != 0 || resetTokens != 0 {
			t.Fatalf("a placeholder address got mail: %d resets, %d verifications, outbox %d, %d tokens",
				len(rec.resets), len(rec.verifies), outboxCount(t, db), resetTokens)
		}

		tok, _, err := u.Login(ctx, models.Credentials{Email: placeholder, Password: "gil-knows-this-1"}, meta)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := u.Authenticate(ctx, tok.ID, models.ScopeSession)
		if err != nil || sess == nil {
			t.Fatalf("session: %+v, %v", sess, err)
		}
		if err := u.ChangePassword(ctx, sess, "gil-knows-this-1", "gil-new-secret-2", meta); err != nil {
			t.Fatal(err)
		}
		if len(rec.changed) != 0 || outboxCount(t, db) != 0 {
			t.Fatalf("a password-changed notice went to a placeholder: %+v", rec.changed)
		}

		// A real address: no notice to the placeholder, the mark goes, and
		// the new address gets mail.
		next, err := u.UpdateUser(ctx, gil, models.Fields{{Name: "email", Value: []byte(`"gil@example.com"`)}}, sess.Token.Digest, meta)
		if err != nil || next.EmailPlaceholder {
			t.Fatalf("UpdateUser: %+v, %v", next, err)
		}
		if who, err := u.FindUserByID(ctx, gil); err != nil || who.EmailPlaceholder || who.Email != "gil@example.com" {
			t.Fatalf("after the change: %+v, %v", who, err)
		}
		if len(noticed) != 0 {
			t.Fatalf("an email-changed notice went to the placeholder: %+v", noticed)
		}
		if err := u.RequestPasswordReset(ctx, "gil@example.com", meta); err != nil || len(rec.resets) != 1 || outboxCount(t, db) != 1 {
			t.Fatalf("reset for the real address: %v, %d events, outbox %d", err, len(rec.resets), outboxCount(t, db))
		}
	}
}
