package lb3_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// checkPassport: after an import, gil (whom Passport created from a
// Google sign-in) is found by his Google subject, his placeholder address
// is marked, and a reset request for it answers as any address does and
// queues no mail; alice's linked GitHub account is an identity of hers;
// no provider token is stored.
func checkPassport(t *testing.T, f lb3store.Fixture, users *models.Users, db *models.DB, rep lb3.Report) {
	t.Helper()
	ctx := context.Background()
	if rep.Identities != int64(len(f.Identities)) || rep.LinkedIdentities != int64(len(f.Credentials)) || rep.Placeholders != 1 {
		t.Errorf("report: %d identities, %d linked, %d placeholders; want %d, %d, 1",
			rep.Identities, rep.LinkedIdentities, rep.Placeholders, len(f.Identities), len(f.Credentials))
	}
	gil := f.User(t, "gil")
	if !gil.PlaceholderEmail {
		t.Fatalf("the fixture's gil has no placeholder address: %+v", gil)
	}
	var googleSubject string
	for _, id := range f.Identities {
		if id.User == "gil" && id.Provider == "google-login" {
			googleSubject = id.ExternalID
		}
	}
	who, err := users.FindUserByIdentity(ctx, "google", googleSubject)
	if err != nil || who.ID != gil.ID || !who.EmailPlaceholder || who.Email != gil.Email {
		t.Fatalf("FindUserByIdentity(google, %s) = %+v, %v; want gil (%d), marked", googleSubject, who, err, gil.ID)
	}
	for _, c := range f.Credentials {
		provider := strings.TrimSuffix(c.Provider, "-link")
		if who, err := users.FindUserByIdentity(ctx, provider, c.ExternalID); err != nil || who.ID != c.UserID || who.EmailPlaceholder {
			t.Errorf("linked %s %s: %+v, %v; want user %d", provider, c.ExternalID, who, err, c.UserID)
		}
	}
	if alice, err := users.FindUserByID(ctx, f.User(t, "alice").ID); err != nil || alice.EmailPlaceholder {
		t.Errorf("alice marked as a placeholder: %+v, %v", alice, err)
	}

	// Only the profile's non-secret fields; never the provider's tokens.
	ids, err := users.IdentitiesOf(ctx, gil.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("gil's identities: %+v, %v", ids, err)
	}
	var names []string
	for _, fl := range ids[0].Profile {
		names = append(names, fl.Name)
	}
	if got := strings.Join(names, ","); got != "provider,id,displayName,name,emails" {
		t.Errorf("gil's identity profile fields %s", got)
	}
	var leaked int
	for _, secret := range []string{"ya29", "provider-refresh-token", "gho_", "_json", "accessToken"} {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM identities WHERE profile LIKE ?`, "%"+secret+"%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		leaked += n
	}
	if leaked != 0 {
		t.Errorf("%d identity rows hold provider tokens or the raw profile", leaked)
	}

	// A reset for the placeholder: the same answer, and no mail.
	var mailed int
	users.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		mailed++
		return tx.EnqueueEmail(ctx, models.Email{Kind: "reset-password", To: ev.Email, Subject: "reset", Text: "link"})
	})
	if err := users.RequestPasswordReset(ctx, gil.Email, models.ClientMeta{IP: "192.0.2.9"}); err != nil {
		t.Errorf("reset for gil's placeholder: %v, want the answer any address gets", err)
	}
	st, err := models.NewOutbox(db, models.OutboxConfig{}).Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mailed != 0 || st.Pending+st.Sent+st.Dead != 0 {
		t.Errorf("a reset for gil's placeholder address queued mail: %d events, outbox %+v", mailed, st)
	}
	if err := users.RequestPasswordReset(ctx, f.User(t, "carol").Email, models.ClientMeta{IP: "192.0.2.9"}); err != nil || mailed != 1 {
		t.Errorf("a reset for carol: %v, %d mails", err, mailed)
	}
}

// editMemory rewrites the fixture's memory file through edit (model →
// id → record JSON) into a new file.
func editMemory(t *testing.T, f lb3store.Fixture, edit func(ms map[string]map[string]string)) string {
	t.Helper()
	b, err := os.ReadFile(f.Source)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var ms map[string]map[string]string
	if err := json.Unmarshal(file["models"], &ms); err != nil {
		t.Fatal(err)
	}
	edit(ms)
	file["models"], _ = json.Marshal(ms)
	b, _ = json.Marshal(file)
	p := filepath.Join(t.TempDir(), "edited.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkSource(t *testing.T, path string, opts lb3.Options) (*lb3.Plan, error) {
	t.Helper()
	src, err := lb3.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src.Check(context.Background(), opts)
}

// TestImportIdentityOptions: --identity-model reads a renamed model,
// --provider maps LoopBack's keys, an identity whose user is missing or
// that two users share stops the import naming the record.
func TestImportIdentityOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Memory)
	opts := lb3.Options{SkipDuplicates: true, AllowEternalTokens: true}

	renamed := editMemory(t, f, func(ms map[string]map[string]string) {
		ms["SocialLogin"] = ms["UserIdentity"]
		delete(ms, "UserIdentity")
	})
	if plan, err := checkSource(t, renamed, opts); err != nil || plan.Report().Identities != 0 {
		t.Fatalf("without --identity-model: %v", err)
	}
	o := opts
	o.IdentityModel, o.Providers = "SocialLogin", map[string]string{"google-login": "accounts.google.com"}
	users, _, rep := importInto(t, lb3store.Fixture{Source: renamed, Kind: f.Kind}, testdb.DSN(t), o)
	if rep.Identities != 1 || rep.LinkedIdentities != 1 {
		t.Errorf("--identity-model SocialLogin: %+v", rep)
	}
	gil := f.User(t, "gil")
	if who, err := users.FindUserByIdentity(ctx, "accounts.google.com", f.Identities[0].ExternalID); err != nil || who.ID != gil.ID {
		t.Errorf("--provider google-login=accounts.google.com: %+v, %v", who, err)
	}
	if _, err := users.FindUserByIdentity(ctx, "google", f.Identities[0].ExternalID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("the default mapping applied despite --provider: %v", err)
	}

	orphan := editMemory(t, f, func(ms map[string]map[string]string) {
		ms["UserIdentity"]["77"] = `{"provider":"facebook-login","externalId":"555","userId":4040,"id":77}`
	})
	_, err := checkSource(t, orphan, opts)
	var re *lb3.RecordError
	if !errors.As(err, &re) || re.Model != "UserIdentity" || re.ID != "77" || !strings.Contains(err.Error(), "4040") {
		t.Errorf("an identity of a missing user: %v", err)
	}

	shared := editMemory(t, f, func(ms map[string]map[string]string) {
		ms["UserCredential"]["78"] = `{"provider":"google-link","externalId":"` + f.Identities[0].ExternalID + `","userId":` +
			jsonInt(f.User(t, "carol").ID) + `,"id":78}`
	})
	if _, err := checkSource(t, shared, opts); !errors.As(err, &re) || !strings.Contains(err.Error(), "UserCredential 78") &&
		!(re.Model == "UserCredential" && re.ID == "78") {
		t.Errorf("one Google account on two users: %v", err)
	}

	if _, err := lb3.ParseProviders("google-login"); err == nil {
		t.Error("--provider google-login accepted")
	}
	if m, err := lb3.ParseProviders(" google-login=google, facebook-login=facebook ,"); err != nil || len(m) != 2 || m["facebook-login"] != "facebook" {
		t.Errorf("ParseProviders: %v, %v", m, err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }
