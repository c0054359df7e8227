// Package oauth signs people in through third-party providers: any OpenID
// Connect provider (discovery, ID token verified, nonce compared), Google
// (OIDC with its issuer preset), and the OAuth2-only presets GitHub,
// Facebook and X. Every flow is the authorization code flow with PKCE S256,
// state and nonce; the caller (handlers) keeps those server-side in the
// store (models flows) so a callback can land on any replica.
//
// A provider answers with an Account: who the person is at the provider
// (provider id, subject) and the email it vouches for. Provider access and
// refresh tokens never leave Exchange: nothing in Latchkey needs them
// (SECURITY O6).
package oauth

import (
	"context"
	"errors"
)

// Account is a person as a provider knows them, after a verified
// exchange. Subject is the provider's stable id (OIDC "sub", GitHub's
// numeric id, never a login name or an email: SECURITY O3).
type Account struct {
	Provider string // the provider's id (Provider.ID)
	Subject  string
	// Email is the address the provider gives ("" when it gives none, as
	// X does); EmailVerified says the provider vouches for it (OIDC
	// email_verified, GitHub's verified primary address, Facebook's).
	Email         string
	EmailVerified bool
	// Name is a display name, when the provider has one.
	Name string
	// Login is the provider's user name (GitHub login, X username), when
	// it has one: for display only, never for matching.
	Login string
}

// Provider is one configured provider.
type Provider interface {
	// ID is the lower-case id that names the routes: /auth/<id>.
	ID() string
	// Label is the button text: "Continue with <Label>".
	Label() string
	// Kind is "oidc", "google", "github", "facebook" or "x" (the icon).
	Kind() string
	// Issuer is the OIDC issuer, to compare with the callback's iss
	// parameter when the provider sends one (RFC 9207); "" for the
	// OAuth2 presets.
	Issuer() string
	// AutoLink says the operator opted in (…_AUTO_LINK=verified) to
	// signing a verified provider email in to the local account with the
	// same verified email.
	AutoLink() bool
	// Ready says the provider can be used now: an OIDC provider whose
	// discovery has not succeeded yet is not (its button is hidden).
	Ready() bool
	// AuthURL is where to send the browser: the authorization endpoint
	// with client_id, redirect_uri, scope, state, nonce (OIDC) and the
	// S256 challenge of verifier.
	AuthURL(state, nonce, verifier string) (string, error)
	// Exchange redeems code with verifier, verifies what comes back (an
	// OIDC ID token's signature, iss, aud, exp, and that its nonce is
	// nonce), and returns the account. Errors wrap ErrExchange or
	// ErrNotReady.
	Exchange(ctx context.Context, code, verifier, nonce string) (Account, error)
}

var (
	// ErrNotReady: the provider's discovery has not succeeded yet.
	ErrNotReady = errors.New("oauth: the provider is not available yet")
	// ErrExchange: the code could not be redeemed, or what the provider
	// answered did not verify.
	ErrExchange = errors.New("oauth: the provider's answer could not be verified")
)

// checkFlow refuses a flow the caller has not set up: an empty state, or
// a PKCE verifier that is not 43 to 128 characters (RFC 7636 §4.1;
// oauth2.GenerateVerifier makes 43).
func checkFlow(state, verifier string) error {
	if state == "" {
		return errors.New("oauth: empty state")
	}
	if len(verifier) < 43 || len(verifier) > 128 {
		return errors.New("oauth: the PKCE verifier must be 43 to 128 characters")
	}
	return nil
}
