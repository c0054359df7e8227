package oauth_test

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/internal/oauthfake"
	"github.com/latchkey/latchkey/internal/testkit"
	"golang.org/x/oauth2"
)

// newRegistry configures a registry from env (retrying discovery every few
// milliseconds) and returns it with its log.
func newRegistry(t *testing.T, env ...[]string) (*oauth.Registry, *testkit.SyncBuffer) {
	t.Helper()
	settings, err := oauth.FromEnv(slices.Concat(env...), base)
	if err != nil {
		t.Fatal(err)
	}
	var log testkit.SyncBuffer
	r := oauth.NewRegistry(t.Context(), settings, nil, slog.New(slog.NewTextHandler(&log, nil)),
		oauth.WithRetry(5*time.Millisecond, 20*time.Millisecond))
	return r, &log
}

// ready returns the provider id once it is ready.
func ready(t *testing.T, r *oauth.Registry, id string) oauth.Provider {
	t.Helper()
	p, ok := r.Get(id)
	if !ok {
		t.Fatalf("no provider %q", id)
	}
	eventually(t, p.Ready, id+" ready")
	return p
}

// eventually polls cond until it holds or 10 s have passed.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10 s", what)
		}
	}
}

func TestDiscoveryRetriedUntilTheProviderIsUp(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	op.Down()
	r, log := newRegistry(t, op.Env("DEX"))
	p, _ := r.Get("dex")

	eventually(t, func() bool { return strings.Count(log.String(), "discovery failed") >= 2 }, "retried")
	if p.Ready() {
		t.Fatal("ready while the provider is down")
	}
	if _, err := p.AuthURL("state", "nonce", oauth2.GenerateVerifier()); !errors.Is(err, oauth.ErrNotReady) {
		t.Errorf("AuthURL before discovery: %v; want ErrNotReady", err)
	}
	if _, err := p.Exchange(t.Context(), "code", oauth2.GenerateVerifier(), "nonce"); !errors.Is(err, oauth.ErrNotReady) {
		t.Errorf("Exchange before discovery: %v; want ErrNotReady", err)
	}

	op.Up()
	eventually(t, p.Ready, "ready after Up")
	if _, err := login(t, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), op.ClientSecret) {
		t.Errorf("the log shows the client secret:\n%s", log)
	}
}

func TestDiscoveryRefusesAnotherIssuer(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice, Issuer: "https://evil.example"})
	r, log := newRegistry(t, op.Env("DEX"))
	eventually(t, func() bool { return strings.Contains(log.String(), "evil.example") }, "refused")
	if p, _ := r.Get("dex"); p.Ready() {
		t.Error("ready with a discovery document naming another issuer")
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1}, nil)
	x := oauthfake.NewX(t, oauthfake.XUser{ID: "2"})
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	op.Down()
	r, _ := newRegistry(t, x.Env(), op.Env("DEX"), gh.Env())

	var ids []string
	for _, p := range r.List() {
		ids = append(ids, p.ID())
	}
	if want := []string{"dex", "github", "x"}; !slices.Equal(ids, want) {
		t.Errorf("List: %v; want %v", ids, want)
	}
	for id, want := range map[string]bool{"dex": false, "github": true, "x": true} {
		if p, ok := r.Get(id); !ok || p.Ready() != want {
			t.Errorf("Get(%q): ok %v, ready %v; want ready %v", id, ok, ok && p.Ready(), want)
		}
	}
	if _, ok := r.Get("gitlab"); ok {
		t.Error("Get(gitlab) found a provider")
	}
	if p, _ := r.Get("dex"); p.Issuer() != op.URL {
		t.Errorf("dex Issuer() = %q; want %q", p.Issuer(), op.URL)
	}
	if p, _ := r.Get("github"); p.Issuer() != "" || p.Kind() != "github" || p.Label() != "GitHub" {
		t.Errorf("github: issuer %q, kind %q, label %q", p.Issuer(), p.Kind(), p.Label())
	}

	of := oauth.NewRegistryOf(r.List()[2], r.List()[0])
	if p, ok := of.Get("x"); !ok || p.ID() != "x" || len(of.List()) != 2 || of.List()[0].ID() != "dex" {
		t.Errorf("NewRegistryOf: %v", of.List())
	}
}
