package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// oidcProvider is an OpenID Connect provider (Google included). It is not
// Ready until discovery has succeeded (Registry runs it).
type oidcProvider struct {
	s      Settings
	client *http.Client
	found  atomic.Pointer[discovered] // nil until discovery succeeds
}

// discovered is what discovery gives: endpoints and the ID token verifier
// (with its JWKS cache).
type discovered struct {
	op       *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (p *oidcProvider) ID() string     { return p.s.ID }
func (p *oidcProvider) Label() string  { return p.s.Label }
func (p *oidcProvider) Kind() string   { return p.s.Kind }
func (p *oidcProvider) AutoLink() bool { return p.s.AutoLink }
func (p *oidcProvider) Issuer() string { return p.s.Issuer }
func (p *oidcProvider) Ready() bool    { return p.found.Load() != nil }

// discover fetches the discovery document; go-oidc refuses one whose
// issuer is not exactly the configured one (ASVS 10.5.3).
func (p *oidcProvider) discover(ctx context.Context) error {
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.s.Issuer)
	if err != nil {
		return err
	}
	endpoint := op.Endpoint()
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return err
	}
	// The default, when the provider lists none, is client_secret_basic
	// (OpenID Connect Discovery 1.0 §3); picking one saves x/oauth2's
	// auto-detection a failed request.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	p.found.Store(&discovered{
		op: op,
		config: oauth2.Config{
			ClientID:     p.s.ClientID,
			ClientSecret: p.s.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  p.s.RedirectURL,
			Scopes:       p.s.Scopes,
		},
		verifier: op.Verifier(&oidc.Config{ClientID: p.s.ClientID}),
	})
	return nil
}

func (p *oidcProvider) AuthURL(state, nonce, verifier string) (string, error) {
	d := p.found.Load()
	if d == nil {
		return "", ErrNotReady
	}
	if err := checkFlow(state, verifier); err != nil {
		return "", err
	}
	if nonce == "" {
		return "", errors.New("oauth: empty nonce")
	}
	return d.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil
}

// idClaims are the claims Latchkey reads, from the ID token or userinfo.
type idClaims struct {
	Email             string     `json:"email"`
	EmailVerified     stringBool `json:"email_verified"`
	Name              string     `json:"name"`
	PreferredUsername string     `json:"preferred_username"`
	AuthorizedParty   string     `json:"azp"`
}

func (p *oidcProvider) Exchange(ctx context.Context, code, verifier, nonce string) (Account, error) {
	d := p.found.Load()
	if d == nil {
		return Account{}, ErrNotReady
	}
	ctx = oidc.ClientContext(ctx, p.client)
	tok, err := d.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Account{}, failed("token request", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Account{}, failed("no id_token in the token response", nil)
	}
	// Signature (JWKS, cached), iss, aud and exp; not the nonce.
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return Account{}, failed("id token", err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Account{}, failed("id token: nonce mismatch", nil)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return Account{}, failed("id token claims", err)
	}
	// With several audiences, the token must say it was issued to us
	// (OpenID Connect Core 1.0 §3.1.3.7, items 4 and 5).
	if len(idt.Audience) > 1 && c.AuthorizedParty != p.s.ClientID {
		return Account{}, failed("id token: several audiences and azp is not the client id", nil)
	}
	if idt.Subject == "" {
		return Account{}, failed("id token: no sub", nil)
	}
	a := Account{
		Provider:      p.s.ID,
		Subject:       idt.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		Name:          c.Name,
		Login:         c.PreferredUsername,
	}
	// Some providers put the email only in userinfo (OpenID Connect Core
	// 1.0 §5.4 lets the scope's claims come from either).
	if a.Email == "" && d.op.UserInfoEndpoint() != "" {
		ui, err := d.op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Account{}, failed("userinfo", err)
		}
		// §5.3.2: the userinfo sub must be the ID token's, or it is
		// someone else's answer.
		if ui.Subject != idt.Subject {
			return Account{}, failed("userinfo: sub differs from the id token's", nil)
		}
		var uc idClaims
		if err := ui.Claims(&uc); err != nil {
			return Account{}, failed("userinfo claims", err)
		}
		a.Email, a.EmailVerified = uc.Email, bool(uc.EmailVerified)
		if a.Name == "" {
			a.Name = uc.Name
		}
		if a.Login == "" {
			a.Login = uc.PreferredUsername
		}
	}
	return a, nil
}

// stringBool is a JSON boolean that some providers send as a string
// ("true"): AWS Cognito, and Azure AD B2C in some set-ups.
type stringBool bool

func (b *stringBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = stringBool(v)
	case string:
		*b = v == "true"
	case nil:
		*b = false
	default:
		return fmt.Errorf("email_verified: %v is neither a boolean nor a string", v)
	}
	return nil
}
