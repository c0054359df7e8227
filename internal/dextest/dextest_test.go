package dextest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/dextest"
)

// The redirect URI is never contacted: Login stops at the redirect to it.
const redirectURI = "http://127.0.0.1:9/auth/dex/callback"

func startTwo(t *testing.T) *dextest.Dex {
	t.Helper()
	return dextest.Start(t, dextest.Config{
		RedirectURIs: []string{redirectURI},
		Users: []dextest.User{
			{Email: "alice@example.com", Password: "alice-password"},
			{Email: "bob@example.com", Username: "Bob", Password: "bob-password", Unverified: true},
		},
	})
}

// rp is a relying party on x/oauth2 + go-oidc, as Latchkey's is.
type rp struct {
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

func newRP(t *testing.T, ctx context.Context, d *dextest.Dex) *rp {
	t.Helper()
	p, err := oidc.NewProvider(ctx, d.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{
		conf: oauth2.Config{
			ClientID: d.ClientID, ClientSecret: d.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: d.ClientID}),
		provider: p,
	}
}

type claims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name"`
	Nonce         string `json:"nonce"`
}

// login runs one authorization-code flow with PKCE S256, state and nonce
// through Dex's login page, and returns the verified ID token's claims.
func (r *rp) login(t *testing.T, ctx context.Context, d *dextest.Dex, email, password string) claims {
	t.Helper()
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	authURL := r.conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	resp := d.Login(t, nil, authURL, email, password)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: status %d, want 303 to the redirect URI", email, resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want %s", loc, redirectURI)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback query %v: want our state and a code", q)
	}
	tok, err := r.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", c.Nonce, nonce)
	}
	// userinfo says the same about the email.
	ui, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Email != c.Email || ui.EmailVerified != c.EmailVerified || ui.Subject != c.Subject {
		t.Fatalf("userinfo %+v disagrees with the ID token %+v", ui, c)
	}
	return c
}

func TestFlow(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	if !strings.HasPrefix(d.Issuer, "http://127.0.0.1:") || !strings.HasSuffix(d.Issuer, "/dex") {
		t.Fatalf("issuer %q", d.Issuer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRP(t, ctx, d)

	for _, tc := range []struct {
		email, password, name string
		verified              bool
	}{
		{"alice@example.com", "alice-password", "alice", true},
		{"bob@example.com", "bob-password", "Bob", false},
	} {
		first := r.login(t, ctx, d, tc.email, tc.password)
		if first.Email != tc.email || first.EmailVerified != tc.verified || first.Name != tc.name {
			t.Errorf("%s: claims %+v, want email_verified %v and name %q", tc.email, first, tc.verified, tc.name)
		}
		if first.Subject != d.Subject(tc.email) {
			t.Errorf("%s: sub %q, Subject says %q", tc.email, first.Subject, d.Subject(tc.email))
		}
		second := r.login(t, ctx, d, tc.email, tc.password)
		if second.Subject != first.Subject {
			t.Errorf("%s: sub changed between logins: %q then %q", tc.email, first.Subject, second.Subject)
		}
	}
	if d.Subject("alice@example.com") == d.Subject("bob@example.com") {
		t.Error("alice and bob have the same subject")
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	ctx := context.Background()
	r := newRP(t, ctx, d)
	authURL := r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	resp := d.Login(t, nil, authURL, "alice@example.com", "bob-password")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !d.Rejected(resp) {
		t.Fatalf("wrong password: status %d at %s, want Dex's page again with 401", resp.StatusCode, resp.Request.URL)
	}
	if !strings.Contains(string(body), `id="login-error"`) {
		t.Errorf("no #login-error on the page:\n%s", body)
	}
	// An unknown user is rejected the same way.
	resp = d.Login(t, nil, authURL, "mallory@example.com", "x")
	resp.Body.Close()
	if !d.Rejected(resp) {
		t.Errorf("unknown user: status %d, want 401", resp.StatusCode)
	}
}

func TestUnregisteredRedirectURI(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	r := newRP(t, context.Background(), d)
	r.conf.RedirectURL = redirectURI + "x"
	resp := d.Login(t, nil, r.conf.AuthCodeURL("st"), "alice@example.com", "alice-password")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Unregistered redirect_uri") {
		t.Fatalf("status %d, want 400 Unregistered redirect_uri:\n%s", resp.StatusCode, body)
	}
	if d.Rejected(resp) {
		t.Error("Rejected is true for an error page")
	}
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	ctx := context.Background()
	r := newRP(t, ctx, d)
	verifier := oauth2.GenerateVerifier()
	resp := d.Login(t, nil, r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice@example.com", "alice-password")
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("exchange with the wrong verifier: %v, want invalid_grant", err)
	}
}

// TestLoginThroughApp: Login starts at an app URL that redirects to Dex,
// and returns the redirect back out of Dex unfollowed.
func TestLoginThroughApp(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	r := newRP(t, context.Background(), d)
	authURL := r.conf.AuthCodeURL("st")
	app := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host == "app.test" { // the app's /auth/dex
			return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {authURL}},
				Body: http.NoBody, Request: req}, nil
		}
		return http.DefaultTransport.RoundTrip(req)
	})}
	resp := d.Login(t, app, "http://app.test/auth/dex", "bob@example.com", "bob-password")
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("status %d, Location %v (%v): want 303 to %s", resp.StatusCode, loc, err, redirectURI)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// jwksKids returns the key ids Dex publishes.
func jwksKids(t *testing.T, d *dextest.Dex) []string {
	t.Helper()
	resp, err := http.Get(d.Issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestDownUp(t *testing.T) {
	t.Parallel()
	d := startTwo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := newRP(t, ctx, d) // discovery and keys from before the restart
	before := r.login(t, ctx, d, "alice@example.com", "alice-password")
	kidsBefore := jwksKids(t, d)
	issuer := d.Issuer

	d.Down(t)
	_, err := http.Get(issuer + "/.well-known/openid-configuration")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("discovery while down: %v, want connection refused", err)
	}
	// A flow that starts while Dex is down fails at the first request.
	if _, err := http.Get(r.conf.AuthCodeURL("st")); err == nil {
		t.Fatal("the authorization endpoint answered while Dex is down")
	}

	d.Up(t)
	if d.Issuer != issuer {
		t.Fatalf("issuer changed from %s to %s", issuer, d.Issuer)
	}
	kidsAfter := jwksKids(t, d)
	if len(kidsAfter) == 0 || strings.Join(kidsAfter, ",") == strings.Join(kidsBefore, ",") {
		t.Errorf("signing keys %v after Up, %v before: want new ones", kidsAfter, kidsBefore)
	}
	// The same relying party (go-oidc refetches the JWKS on an unknown
	// kid) signs alice in again, with the same subject.
	after := r.login(t, ctx, d, "alice@example.com", "alice-password")
	if after.Subject != before.Subject {
		t.Errorf("sub %q after Up, %q before", after.Subject, before.Subject)
	}
	// Down and Up again, to show it repeats.
	d.Down(t)
	d.Up(t)
	r.login(t, ctx, d, "bob@example.com", "bob-password")
}

func TestSubjectOf(t *testing.T) {
	t.Parallel()
	// Dex's own example: userID 08a8684b-db88-4b73-90a9-3cd1661f5466 from
	// config.dev.yaml gives this sub (base64url of the protobuf).
	got := dextest.SubjectOf("08a8684b-db88-4b73-90a9-3cd1661f5466")
	want := "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs"
	if got != want {
		t.Errorf("SubjectOf = %s, want %s", got, want)
	}
}
