package oauthfake

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// User is the person an OIDC fake signs in.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// OIDCOptions sets an OIDC fake up. The zero value, with a User, is a
// well-behaved provider; the other fields make it misbehave for the
// security tests.
type OIDCOptions struct {
	User User

	// OtherKey signs ID tokens with a key that is not in the JWKS (under
	// the same kid), as a forger would (SECURITY O2).
	OtherKey bool
	// Audience, when set, is the ID token's aud instead of the client id
	// (O2).
	Audience string
	// Nonce, when set, is the ID token's nonce instead of the one the
	// authorize request carried; OmitNonce leaves the claim out.
	Nonce     string
	OmitNonce bool
	// NoIDToken leaves id_token out of the token response.
	NoIDToken bool
	// EmailOnlyInUserinfo keeps email and email_verified out of the ID
	// token: only /userinfo has them, as with some providers.
	EmailOnlyInUserinfo bool
	// EmailVerifiedString sends email_verified as "true"/"false".
	EmailVerifiedString bool
	// UserinfoSubject, when set, is /userinfo's sub instead of the user's.
	UserinfoSubject string
	// Issuer, when set, is the issuer the discovery document and the ID
	// tokens claim instead of the fake's URL (discovery must refuse it).
	Issuer string
}

// OIDC is a running OpenID Connect provider. Its issuer is URL.
type OIDC struct {
	*server
	key   *rsa.PrivateKey
	other *rsa.PrivateKey // made on the first OtherKey token
	opts  OIDCOptions     // guarded by server.mu
}

const kid = "oauthfake-1"

// NewOIDC starts an OpenID Connect provider: /.well-known/openid-configuration,
// /jwks (an RSA key made for this fake), /authorize, /token (which issues
// an ID token signed RS256) and /userinfo. Its client authenticates with
// HTTP Basic or in the body.
func NewOIDC(t testing.TB, opts OIDCOptions) *OIDC {
	t.Helper()
	f := &OIDC{server: newServer(t, "oidc", authEither), opts: opts}
	f.key = newKey()
	f.issuer = f.URL
	f.extra = f.idToken
	f.mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                         f.claimedIssuer(),
			"authorization_endpoint":                         f.URL + "/authorize",
			"token_endpoint":                                 f.URL + "/token",
			"userinfo_endpoint":                              f.URL + "/userinfo",
			"jwks_uri":                                       f.URL + "/jwks",
			"response_types_supported":                       []string{"code"},
			"subject_types_supported":                        []string{"public"},
			"id_token_signing_alg_values_supported":          []string{"RS256"},
			"code_challenge_methods_supported":               []string{"S256"},
			"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
			"scopes_supported":                               []string{"openid", "email", "profile"},
			"authorization_response_iss_parameter_supported": true,
		})
	})
	f.mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &f.key.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})
	f.mux.HandleFunc("GET /authorize", f.handleAuthorize)
	f.mux.HandleFunc("/token", f.handleToken)
	f.api("/userinfo", func(w http.ResponseWriter, r *http.Request, g grant) {
		f.mu.Lock()
		defer f.mu.Unlock()
		u := f.opts.User
		writeJSON(w, http.StatusOK, map[string]any{
			"sub":            cmp.Or(f.opts.UserinfoSubject, u.Subject),
			"email":          u.Email,
			"email_verified": f.verified(u.EmailVerified),
			"name":           u.Name,
		})
	})
	return f
}

// Env is the variables that configure Latchkey with this provider as
// LATCHKEY_OIDC_<id>_… ("DEX", or "GOOGLE" for Google pointed here).
func (f *OIDC) Env(id string) []string {
	p := "LATCHKEY_OIDC_" + id + "_"
	return []string{p + "ISSUER=" + f.URL, p + "CLIENT_ID=" + f.ClientID, p + "CLIENT_SECRET=" + f.ClientSecret}
}

// Set changes the options (the user, a misbehaviour) from the next
// request on.
func (f *OIDC) Set(change func(*OIDCOptions)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.opts)
}

// SetUser changes who signs in next: the same subject with another email
// is the person who changed their address at the provider (O3).
func (f *OIDC) SetUser(u User) { f.Set(func(o *OIDCOptions) { o.User = u }) }

func (f *OIDC) claimedIssuer() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cmp.Or(f.opts.Issuer, f.URL)
}

// verified is email_verified as the options want it sent. mu is held.
func (f *OIDC) verified(v bool) any {
	if f.opts.EmailVerifiedString {
		return fmt.Sprint(v)
	}
	return v
}

// idToken is the token response's id_token for g. mu is held.
func (f *OIDC) idToken(g grant) (map[string]any, error) {
	o := f.opts
	if o.NoIDToken || !strings.Contains(" "+g.scope+" ", " openid ") {
		return nil, nil
	}
	now := time.Now()
	claims := map[string]any{
		"iss":  cmp.Or(o.Issuer, f.URL),
		"sub":  o.User.Subject,
		"aud":  cmp.Or(o.Audience, f.ClientID),
		"exp":  now.Add(5 * time.Minute).Unix(),
		"iat":  now.Unix(),
		"name": o.User.Name,
	}
	if !o.OmitNonce {
		claims["nonce"] = cmp.Or(o.Nonce, g.nonce)
	}
	if !o.EmailOnlyInUserinfo && o.User.Email != "" {
		claims["email"] = o.User.Email
		claims["email_verified"] = f.verified(o.User.EmailVerified)
	}
	key := f.key
	if o.OtherKey {
		if f.other == nil {
			f.other = newKey()
		}
		key = f.other
	}
	raw, err := sign(key, claims)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id_token": raw}, nil
}

func sign(key *rsa.PrivateKey, claims map[string]any) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// newKey makes an RSA key; crypto/rand does not fail (Go 1.24+).
func newKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}
