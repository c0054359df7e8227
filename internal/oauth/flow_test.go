package oauth_test

import (
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/internal/oauthfake"
	"golang.org/x/oauth2"
)

var alice = oauthfake.User{Subject: "alice-sub", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}

// login runs a whole sign-in at p, as the handlers will: a fresh state,
// nonce and verifier, the browser at the provider, the exchange.
func login(t *testing.T, p oauth.Provider) (oauth.Account, error) {
	t.Helper()
	code, verifier, nonce := authorize(t, p)
	return p.Exchange(t.Context(), code, verifier, nonce)
}

// authorize runs the first half of login and returns the code it is sent
// back with, and the verifier and nonce to redeem it with.
func authorize(t *testing.T, p oauth.Provider) (code, verifier, nonce string) {
	t.Helper()
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	u, err := p.AuthURL(state, nonce, verifier)
	if err != nil {
		t.Fatal(err)
	}
	back := oauthfake.Authorize(t, u)
	q := back.Query()
	if want := base + "auth/" + p.ID() + "/callback"; back.Scheme+"://"+back.Host+back.Path != want {
		t.Errorf("sent back to %s; want %s", back, want)
	}
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("sent back with %v; want a code and state %s", q, state)
	}
	return q.Get("code"), verifier, nonce
}

func TestOIDC(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, op.Env("DEX"))
	p := ready(t, r, "dex")
	if p.Kind() != "oidc" || p.Label() != "Dex" || p.Issuer() != op.URL {
		t.Errorf("kind %q, label %q, issuer %q", p.Kind(), p.Label(), p.Issuer())
	}
	got, err := login(t, p)
	want := oauth.Account{Provider: "dex", Subject: "alice-sub", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}
	if err != nil || got != want {
		t.Errorf("login: %+v, %v; want %+v", got, err, want)
	}
}

func TestGoogle(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, op.Env("GOOGLE"))
	p := ready(t, r, "google")
	if p.Kind() != "google" || p.Label() != "Google" {
		t.Errorf("kind %q, label %q", p.Kind(), p.Label())
	}
	got, err := login(t, p)
	if err != nil || got.Provider != "google" || got.Subject != "alice-sub" || !got.EmailVerified {
		t.Errorf("login: %+v, %v", got, err)
	}
}

// O1: the authorize request carries state, nonce and an S256 challenge of
// the verifier, and sends the person back to the provider's own callback.
func TestO1AuthorizeRequestCarriesStateNonceAndPKCE(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1}, nil)
	fb := oauthfake.NewFacebook(t, oauthfake.FacebookUser{ID: "1"})
	x := oauthfake.NewX(t, oauthfake.XUser{ID: "1"})
	r, _ := newRegistry(t, op.Env("DEX"), gh.Env(), fb.Env(), x.Env())
	for _, tc := range []struct {
		id    string
		last  func() url.Values
		scope string
		nonce bool
	}{
		{"dex", op.LastAuthorize, "openid email profile", true},
		{"github", gh.LastAuthorize, "read:user user:email", false},
		{"facebook", fb.LastAuthorize, "email public_profile", false},
		{"x", x.LastAuthorize, "users.read tweet.read", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			p := ready(t, r, tc.id)
			state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
			u, err := p.AuthURL(state, nonce, verifier)
			if err != nil {
				t.Fatal(err)
			}
			oauthfake.Authorize(t, u)
			q := tc.last()
			want := map[string]string{
				"response_type":         "code",
				"state":                 state,
				"code_challenge":        oauth2.S256ChallengeFromVerifier(verifier),
				"code_challenge_method": "S256",
				"redirect_uri":          base + "auth/" + tc.id + "/callback",
				"scope":                 tc.scope,
				"nonce":                 "",
			}
			if tc.nonce {
				want["nonce"] = nonce
			}
			for k, v := range want {
				if got := q.Get(k); got != v {
					t.Errorf("%s = %q; want %q", k, got, v)
				}
			}
			if q.Get("code_verifier") != "" || strings.Contains(u, verifier) {
				t.Error("the verifier itself went to the browser")
			}
		})
	}
}

// O2: an ID token that is not the provider's, for us, for this flow is
// refused.
func TestO2IDTokenRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts oauthfake.OIDCOptions
	}{
		{"signed with another key", oauthfake.OIDCOptions{OtherKey: true}},
		{"another audience", oauthfake.OIDCOptions{Audience: "someone-else"}},
		{"another nonce", oauthfake.OIDCOptions{Nonce: "not-the-nonce"}},
		{"no nonce", oauthfake.OIDCOptions{OmitNonce: true}},
		{"no id token", oauthfake.OIDCOptions{NoIDToken: true}},
		{"userinfo about someone else", oauthfake.OIDCOptions{EmailOnlyInUserinfo: true, UserinfoSubject: "mallory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.User = alice
			op := oauthfake.NewOIDC(t, tc.opts)
			r, _ := newRegistry(t, op.Env("DEX"))
			got, err := login(t, ready(t, r, "dex"))
			if !errors.Is(err, oauth.ErrExchange) {
				t.Errorf("login: %+v, %v; want ErrExchange", got, err)
			}
			t.Log(err)
		})
	}
}

// The issuer is checked in the ID token too, not only at discovery.
func TestIDTokenFromAnotherIssuerRefused(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, op.Env("DEX"))
	p := ready(t, r, "dex")
	op.Set(func(o *oauthfake.OIDCOptions) { o.Issuer = "https://evil.example" })
	if _, err := login(t, p); !errors.Is(err, oauth.ErrExchange) || !strings.Contains(err.Error(), "evil.example") {
		t.Errorf("login: %v; want ErrExchange about the issuer", err)
	}
}

func TestEmailFromUserinfo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts oauthfake.OIDCOptions
		want oauth.Account
	}{
		{"only in userinfo", oauthfake.OIDCOptions{User: alice, EmailOnlyInUserinfo: true},
			oauth.Account{Provider: "dex", Subject: "alice-sub", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}},
		{"email_verified as a string", oauthfake.OIDCOptions{User: alice, EmailVerifiedString: true},
			oauth.Account{Provider: "dex", Subject: "alice-sub", Email: "alice@example.com", EmailVerified: true, Name: "Alice"}},
		{"unverified, string, in userinfo", oauthfake.OIDCOptions{
			User:                oauthfake.User{Subject: "bob-sub", Email: "bob@example.com"},
			EmailOnlyInUserinfo: true, EmailVerifiedString: true},
			oauth.Account{Provider: "dex", Subject: "bob-sub", Email: "bob@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op := oauthfake.NewOIDC(t, tc.opts)
			r, _ := newRegistry(t, op.Env("DEX"))
			got, err := login(t, ready(t, r, "dex"))
			if err != nil || got != tc.want {
				t.Errorf("login: %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// O3: the subject identifies the person; a new email at the provider is
// the same subject.
func TestO3SubjectStaysWhenTheEmailChanges(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, op.Env("DEX"))
	p := ready(t, r, "dex")
	before, err := login(t, p)
	if err != nil {
		t.Fatal(err)
	}
	moved := alice
	moved.Email = "alice@elsewhere.example"
	op.SetUser(moved)
	after, err := login(t, p)
	if err != nil || after.Subject != before.Subject || after.Email != moved.Email {
		t.Errorf("after the change: %+v, %v; want subject %q with email %q", after, err, before.Subject, moved.Email)
	}
}

func TestGitHub(t *testing.T) {
	t.Parallel()
	user := oauthfake.GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat"}
	for _, tc := range []struct {
		name         string
		emails       []oauthfake.GitHubEmail
		wantEmail    string
		wantVerified bool
	}{
		{"primary verified", []oauthfake.GitHubEmail{
			{Email: "old@example.com", Verified: true},
			{Email: "octo@example.com", Primary: true, Verified: true},
		}, "octo@example.com", true},
		{"primary unverified", []oauthfake.GitHubEmail{
			{Email: "octo@example.com", Primary: true},
			{Email: "other@example.com", Verified: true},
		}, "octo@example.com", false},
		{"no primary", []oauthfake.GitHubEmail{{Email: "other@example.com", Verified: true}}, "", false},
		{"no emails", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gh := oauthfake.NewGitHub(t, user, tc.emails)
			r, _ := newRegistry(t, gh.Env())
			got, err := login(t, ready(t, r, "github"))
			want := oauth.Account{Provider: "github", Subject: "583231", Login: "octocat", Name: "The Octocat",
				Email: tc.wantEmail, EmailVerified: tc.wantVerified}
			if err != nil || got != want {
				t.Errorf("login: %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestFacebook(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		user oauthfake.FacebookUser
		want oauth.Account
	}{
		{"with email", oauthfake.FacebookUser{ID: "10158", Name: "Fay", Email: "fay@example.com"},
			oauth.Account{Provider: "facebook", Subject: "10158", Name: "Fay", Email: "fay@example.com", EmailVerified: true}},
		{"signed up by phone", oauthfake.FacebookUser{ID: "10159", Name: "Phil"},
			oauth.Account{Provider: "facebook", Subject: "10159", Name: "Phil"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fb := oauthfake.NewFacebook(t, tc.user)
			r, _ := newRegistry(t, fb.Env())
			got, err := login(t, ready(t, r, "facebook"))
			if err != nil || got != tc.want {
				t.Errorf("login: %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestXHasNoEmail(t *testing.T) {
	t.Parallel()
	x := oauthfake.NewX(t, oauthfake.XUser{ID: "2244994945", Username: "XDevelopers", Name: "Developers"})
	r, _ := newRegistry(t, x.Env())
	got, err := login(t, ready(t, r, "x"))
	want := oauth.Account{Provider: "x", Subject: "2244994945", Login: "XDevelopers", Name: "Developers"}
	if err != nil || got != want {
		t.Errorf("login: %+v, %v; want %+v", got, err, want)
	}
}

// Every fake checks PKCE and uses a code once; the errors say so without
// quoting the code, the verifier or the secret.
func TestCodeNeedsItsVerifierAndWorksOnce(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1}, nil)
	fb := oauthfake.NewFacebook(t, oauthfake.FacebookUser{ID: "1"})
	x := oauthfake.NewX(t, oauthfake.XUser{ID: "1"})
	r, _ := newRegistry(t, op.Env("DEX"), gh.Env(), fb.Env(), x.Env())
	secrets := []string{op.ClientSecret, gh.ClientSecret, fb.ClientSecret, x.ClientSecret}
	for _, id := range []string{"dex", "github", "facebook", "x"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			p := ready(t, r, id)
			code, verifier, nonce := authorize(t, p)
			wrong := oauth2.GenerateVerifier()
			_, err := p.Exchange(t.Context(), code, wrong, nonce)
			if !errors.Is(err, oauth.ErrExchange) {
				t.Fatalf("exchange with another verifier: %v; want ErrExchange", err)
			}
			t.Log(err)
			for _, s := range append([]string{code, verifier, wrong}, secrets...) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error %q shows a code, verifier or secret", err)
				}
			}

			code, verifier, nonce = authorize(t, p)
			if _, err := p.Exchange(t.Context(), code, verifier, nonce); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Exchange(t.Context(), code, verifier, nonce); !errors.Is(err, oauth.ErrExchange) {
				t.Errorf("the same code again: %v; want ErrExchange", err)
			}
		})
	}
}

func TestProviderError(t *testing.T) {
	t.Parallel()
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, op.Env("DEX"))
	p := ready(t, r, "dex")
	op.SetError("access_denied")
	u, err := p.AuthURL("state", "nonce", oauth2.GenerateVerifier())
	if err != nil {
		t.Fatal(err)
	}
	q := oauthfake.Authorize(t, u).Query()
	if q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "state" || q.Get("iss") != op.URL {
		t.Errorf("sent back with %v; want error=access_denied, the state and iss", q)
	}
}

func TestAuthURLNeedsAFlow(t *testing.T) {
	t.Parallel()
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1}, nil)
	op := oauthfake.NewOIDC(t, oauthfake.OIDCOptions{User: alice})
	r, _ := newRegistry(t, gh.Env(), op.Env("DEX"))
	v := oauth2.GenerateVerifier()
	for _, id := range []string{"github", "dex"} {
		p := ready(t, r, id)
		for _, args := range [][3]string{{"", "n", v}, {"s", "n", "short"}} {
			if _, err := p.AuthURL(args[0], args[1], args[2]); err == nil {
				t.Errorf("%s AuthURL%q: no error", id, args)
			}
		}
	}
	if _, err := ready(t, r, "dex").AuthURL("s", "", v); err == nil {
		t.Error("dex AuthURL with no nonce: no error")
	}
}

func TestResponseBodiesAreBounded(t *testing.T) {
	t.Parallel()
	gh := oauthfake.NewGitHub(t, oauthfake.GitHubUser{ID: 1}, nil)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id": 1, "login": "` + strings.Repeat("a", 2<<20) + `"}`))
	}))
	t.Cleanup(huge.Close)
	r, _ := newRegistry(t, gh.Env(), []string{"LATCHKEY_OAUTH_GITHUB_USER_URL=" + huge.URL})
	if _, err := login(t, ready(t, r, "github")); !errors.Is(err, oauth.ErrExchange) || !strings.Contains(err.Error(), "1 MiB") {
		t.Errorf("login with a 2 MiB user: %v; want ErrExchange (over 1 MiB)", err)
	}
}
