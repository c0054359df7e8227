package models_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/passkeyfake"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

const (
	pkBase    = "https://id.example.com"
	pkBrowser = "browser-binding-secret-0123456789abcdef"
)

// passkeyUsers is the service with passkeys on (RP ID id.example.com) and
// a recorder of the sign-in method notices.
func passkeyUsers(t *testing.T) (*models.Users, *testkit.Clock, *[]models.SignInMethodChanged) {
	t.Helper()
	u, clk := newUsers(t, models.Config{BaseURL: pkBase})
	notices := new([]models.SignInMethodChanged)
	u.OnSignInMethodChanged(func(_ context.Context, _ *models.Tx, ev models.SignInMethodChanged) error {
		*notices = append(*notices, ev)
		return nil
	})
	return u, clk, notices
}

// signedIn makes an account and a session for it.
func signedIn(t *testing.T, u *models.Users, email, pw string) *models.Session {
	t.Helper()
	ctx := context.Background()
	mustCreate(t, u, "email", email, "password", pw)
	tok, _, err := u.Login(ctx, models.Credentials{Email: email, Password: pw}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := u.Authenticate(ctx, tok.ID, models.ScopeSession)
	if err != nil || sess == nil {
		t.Fatalf("session: %v", err)
	}
	return sess
}

// registerPasskey runs a whole registration with the authenticator.
func registerPasskey(t *testing.T, u *models.Users, sess *models.Session, a *passkeyfake.Authenticator, name string) *models.Passkey {
	t.Helper()
	ctx := context.Background()
	opts, err := u.BeginPasskeyRegistration(ctx, sess, name, pkBrowser)
	if err != nil {
		t.Fatalf("begin registration: %v", err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := u.FinishPasskeyRegistration(ctx, sess, pkBrowser, resp, models.ClientMeta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	return p
}

// passkeyLogin begins a passwordless login and answers it.
func passkeyLogin(t *testing.T, u *models.Users, a *passkeyfake.Authenticator) (*models.AccessToken, *models.User, error) {
	t.Helper()
	ctx := context.Background()
	opts, err := u.BeginPasskeyLogin(ctx, pkBrowser, false)
	if err != nil {
		t.Fatalf("begin login: %v", err)
	}
	resp, err := a.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	return u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{IP: "192.0.2.1"})
}

// TestPasskeyRegistrationAndLogin: a passkey is registered under a name
// (the options carry the base URL's host as RP ID and a random user
// handle), signs in with no password, counts as a second factor, updates
// its counter and last use, and is removed; each change mails a notice.
func TestPasskeyRegistrationAndLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk, notices := passkeyUsers(t)
	sess := signedIn(t, u, "pia@example.com", "pia-secret-pw-1")
	a := passkeyfake.New(pkBase)
	a.BE, a.BS = true, true

	opts, err := u.BeginPasskeyRegistration(ctx, sess, "  Pia's   laptop ", pkBrowser)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			RP struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID, Name string
			} `json:"user"`
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	handle, _ := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if o.PublicKey.RP.ID != "id.example.com" || len(handle) != 32 || bytes.Contains(handle, []byte("pia")) ||
		o.PublicKey.AuthenticatorSelection.ResidentKey != "required" || o.PublicKey.AuthenticatorSelection.UserVerification != "required" {
		t.Fatalf("creation options: %s", opts)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := u.FinishPasskeyRegistration(ctx, sess, pkBrowser, resp, models.ClientMeta{})
	if err != nil || p.Name != "Pia's laptop" || !p.BackupEligible || !p.BackupState {
		t.Fatalf("finish: %+v, %v", p, err)
	}
	if len(*notices) != 1 || (*notices)[0].Provider != "passkey" || !(*notices)[0].Linked {
		t.Fatalf("notices after adding: %+v", *notices)
	}
	f, _ := u.SecondFactors(ctx, sess.User.ID)
	if f.Passkeys != 1 || !f.Any() {
		t.Fatalf("factors: %+v", f)
	}

	// A second registration with the same authenticator is excluded; a
	// second authenticator adds a second passkey.
	opts, _ = u.BeginPasskeyRegistration(ctx, sess, "again", pkBrowser)
	if _, err := a.Create(opts); err == nil {
		t.Fatal("the authenticator was not told to exclude its own passkey")
	}
	phone := passkeyfake.New(pkBase)
	clk.Advance(time.Second) // listed oldest first
	registerPasskey(t, u, sess, phone, "Pia's phone")

	clk.Advance(time.Minute)
	tok, who, err := passkeyLogin(t, u, a)
	if err != nil || who.Email != "pia@example.com" || tok.Method != "passkey" {
		t.Fatalf("passwordless login: %v, %v", who, err)
	}
	list, err := u.ListPasskeys(ctx, who.ID)
	if err != nil || len(list) != 2 || list[0].Name != "Pia's laptop" || !list[0].LastUsed.Equal(clk.Now()) || !list[1].LastUsed.IsZero() {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if models.ParsePasskeyHandle(list[0].Handle()) == nil || !bytes.Equal(models.ParsePasskeyHandle(list[0].Handle()), list[0].ID) {
		t.Fatal("the handle does not round-trip")
	}
	// A password login now asks for the second step, and the passkey is
	// one of its methods.
	mfa := passwordStep(t, u, "pia@example.com", "pia-secret-pw-1")
	opts, err = u.BeginPasskeySecondStep(ctx, mfa, pkBrowser)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = phone.Get(opts)
	tok, who, err = u.CompletePasskeyMFA(ctx, mfa, pkBrowser, resp, models.ClientMeta{})
	if err != nil || tok == nil || who.Email != "pia@example.com" {
		t.Fatalf("the second step with a passkey: %v", err)
	}
	if _, err := u.PendingMFA(ctx, mfa); !errors.Is(err, models.ErrMFAInvalid) {
		t.Fatalf("the mfaToken after the passkey: %v", err)
	}

	if err := u.DeletePasskey(ctx, sess, list[0].ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if err := u.DeletePasskey(ctx, sess, list[0].ID, models.ClientMeta{}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
	if n := len(*notices); n != 3 || (*notices)[2].Linked || (*notices)[2].Provider != "passkey" {
		t.Fatalf("notices after removing: %+v", *notices)
	}
	if _, _, err := passkeyLogin(t, u, a); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("a removed passkey signs in: %v", err)
	}
	// Someone else's passkey id is not found for this user.
	other := signedIn(t, u, "quinn@example.com", "amber-lantern-77")
	if err := u.DeletePasskey(ctx, other, list[1].ID, models.ClientMeta{}); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("deleting another user's passkey: %v", err)
	}
	// An operator's reset removes the passkeys and the handle stays.
	if err := u.ResetSecondFactors(ctx, who.ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if list, _ := u.ListPasskeys(ctx, who.ID); len(list) != 0 {
		t.Fatalf("passkeys after a reset: %+v", list)
	}
}

// TestM5ReplayedAssertionRefused: SECURITY M5. An assertion answers its
// challenge once: sent again it finds no ceremony; a ceremony is bound to
// the browser that began it and to its purpose; an expired one is
// refused.
func TestM5ReplayedAssertionRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, clk, _ := passkeyUsers(t)
	sess := signedIn(t, u, "rae@example.com", "rae-secret-pw-1")
	a := passkeyfake.New(pkBase)
	registerPasskey(t, u, sess, a, "key")

	opts, _ := u.BeginPasskeyLogin(ctx, pkBrowser, false)
	resp, _ := a.Get(opts)
	if _, _, err := u.FinishPasskeyLogin(ctx, "another-browser-binding-secret-0000", resp, 0, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyCeremony) {
		t.Fatalf("finished in another browser: %v", err)
	}
	if _, _, err := u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{}); err != nil {
		t.Fatalf("the first answer: %v", err)
	}
	if _, _, err := u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyCeremony) {
		t.Fatalf("the replayed assertion: %v", err)
	}

	// A refused answer uses the challenge up too.
	opts, _ = u.BeginPasskeyLogin(ctx, pkBrowser, true)
	if !strings.Contains(string(opts), `"mediation":"conditional"`) {
		t.Fatalf("conditional options: %s", opts)
	}
	a.UV = false
	resp, _ = a.Get(opts)
	if _, _, err := u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("an unverified user, passwordless: %v", err)
	}
	a.UV = true
	var o struct {
		PublicKey struct{ Challenge string } `json:"publicKey"`
	}
	json.Unmarshal(opts, &o)
	resp, _ = a.Assert(a.Credentials()[0], o.PublicKey.Challenge)
	if _, _, err := u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyCeremony) {
		t.Fatalf("a second answer to a refused challenge: %v", err)
	}

	// A login ceremony does not finish a registration, and a ceremony
	// expires.
	opts, _ = u.BeginPasskeyLogin(ctx, pkBrowser, false)
	resp, _ = a.Get(opts)
	if _, err := u.FinishPasskeyRegistration(ctx, sess, pkBrowser, resp, models.ClientMeta{}); err == nil {
		t.Fatal("an assertion finished a registration")
	}
	opts, _ = u.BeginPasskeyLogin(ctx, pkBrowser, false)
	resp, _ = a.Get(opts)
	clk.Advance(models.PasskeyCeremonyTTL + time.Second)
	if _, _, err := u.FinishPasskeyLogin(ctx, pkBrowser, resp, 0, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyCeremony) {
		t.Fatalf("an expired ceremony: %v", err)
	}
	if n, err := u.PrunePasskeyCeremonies(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the ceremony the registration did not take", n, err)
	}
}

// TestM5PasskeyChecks: the RP ID is the base URL's host and the origin its
// origin; the counter may not go back; the backup-eligible flag may not
// change; a second step's passkey must be the account's.
func TestM5PasskeyChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _, _ := passkeyUsers(t)
	sess := signedIn(t, u, "sam@example.com", "sam-secret-pw-1")
	a := passkeyfake.New(pkBase)
	registerPasskey(t, u, sess, a, "key")
	id := a.Credentials()[0]

	a.RPID = "evil.example.net" // made for another site
	if _, _, err := passkeyLogin(t, u, a); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("RP ID mismatch: %v", err)
	}
	a.RPID, a.Origin = "", "https://evil.example.net" // collected on another origin
	if _, _, err := passkeyLogin(t, u, a); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("origin mismatch: %v", err)
	}
	a.Origin = pkBase
	if _, _, err := passkeyLogin(t, u, a); err != nil {
		t.Fatalf("the right site and origin: %v", err)
	}
	a.SetCounter(id, 0) // a clone that signed fewer times: the next sends 1
	if _, _, err := passkeyLogin(t, u, a); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("counter regression: %v", err)
	}
	a.SetCounter(id, 100)
	if _, _, err := passkeyLogin(t, u, a); err != nil {
		t.Fatalf("a counter that went up: %v", err)
	}
	a.BE = true // registered not backup-eligible
	if _, _, err := passkeyLogin(t, u, a); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("the backup-eligible flag changed: %v", err)
	}
	a.BE = false

	// Registration needs a verified user, and a new ceremony per try.
	opts, _ := u.BeginPasskeyRegistration(ctx, sess, "unverified", pkBrowser)
	b := passkeyfake.New(pkBase)
	b.UV = false
	resp, _ := b.Create(opts)
	if _, err := u.FinishPasskeyRegistration(ctx, sess, pkBrowser, resp, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyNotRegistered) {
		t.Fatalf("registration without user verification: %v", err)
	}
	// Another session of the same user cannot finish this session's
	// registration.
	opts, _ = u.BeginPasskeyRegistration(ctx, sess, "other session", pkBrowser)
	tok2, _, _ := u.Login(ctx, models.Credentials{Email: "sam@example.com", Password: "sam-secret-pw-1"}, models.ClientMeta{})
	if tok2 != nil {
		t.Fatal("a login of an account with a passkey issued a session without the second step")
	}
	resp, _ = passkeyfake.New(pkBase).Create(opts)
	sess2 := *sess
	sess2.Token.Digest[0] ^= 1
	if _, err := u.FinishPasskeyRegistration(ctx, &sess2, pkBrowser, resp, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyCeremony) {
		t.Fatalf("another session finished the registration: %v", err)
	}
	if _, err := u.BeginPasskeyRegistration(ctx, sess, "", pkBrowser); !errors.Is(err, models.ErrPasskeyName) {
		t.Fatalf("no name: %v", err)
	}
	if _, err := u.BeginPasskeyRegistration(ctx, sess, strings.Repeat("n", models.PasskeyNameMax+1), pkBrowser); !errors.Is(err, models.ErrPasskeyName) {
		t.Fatalf("a long name: %v", err)
	}

	// Second step: another account's passkey is refused, and refusals are
	// throttled like codes.
	tess := signedIn(t, u, "tom@example.com", "tom-secret-pw-1")
	tomKey := passkeyfake.New(pkBase)
	registerPasskey(t, u, tess, tomKey, "tom's")
	mfa := passwordStep(t, u, "sam@example.com", "sam-secret-pw-1")
	opts, err := u.BeginPasskeySecondStep(ctx, mfa, pkBrowser)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct{ Challenge string } `json:"publicKey"`
	}
	json.Unmarshal(opts, &o)
	resp, _ = tomKey.Assert(tomKey.Credentials()[0], o.PublicKey.Challenge)
	if _, _, err := u.CompletePasskeyMFA(ctx, mfa, pkBrowser, resp, models.ClientMeta{}); !errors.Is(err, models.ErrPasskeyRefused) {
		t.Fatalf("another account's passkey as the second step: %v", err)
	}
	if _, err := u.PendingMFA(ctx, mfa); err != nil {
		t.Fatalf("a refused passkey used up the second step: %v", err)
	}
	opts, _ = u.BeginPasskeySecondStep(ctx, mfa, pkBrowser)
	resp, _ = a.Get(opts)
	if _, _, err := u.CompletePasskeyMFA(ctx, "not-the-token", pkBrowser, resp, models.ClientMeta{}); !errors.Is(err, models.ErrMFAInvalid) {
		t.Fatalf("a wrong mfaToken: %v", err)
	}
	if _, _, err := u.CompletePasskeyMFA(ctx, mfa, pkBrowser, resp, models.ClientMeta{}); err != nil {
		t.Fatalf("the account's passkey as the second step: %v", err)
	}
}

// TestPasskeysOff: without a base URL there are no passkeys, and a base
// URL whose host is an IP address (no RP ID) turns them off too.
func TestPasskeysOff(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	if u.PasskeysEnabled() {
		t.Fatal("passkeys on without a base URL")
	}
	if _, err := u.BeginPasskeyLogin(context.Background(), pkBrowser, false); !errors.Is(err, models.ErrPasskeysOff) {
		t.Fatalf("begin without a base URL: %v", err)
	}
	if u, _ := newUsers(t, models.Config{BaseURL: "http://127.0.0.1:3000"}); u.PasskeysEnabled() {
		t.Fatal("passkeys on for an IP address, which no browser takes as an RP ID")
	}
	if u, _ := newUsers(t, models.Config{BaseURL: "http://localhost:3000"}); !u.PasskeysEnabled() {
		t.Fatal("passkeys off on localhost")
	}
}
