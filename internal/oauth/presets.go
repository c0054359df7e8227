package oauth

import (
	"context"
	"net/http"
	"strconv"

	"golang.org/x/oauth2"
)

// presetProvider is an OAuth2-only provider (GitHub, Facebook, X): the
// code flow with PKCE, then the provider's own API says who the person
// is. It is ready at once.
type presetProvider struct {
	s       Settings
	client  *http.Client
	config  oauth2.Config
	account func(ctx context.Context, p *presetProvider, tok *oauth2.Token) (Account, error)
}

func newPreset(s Settings, client *http.Client) *presetProvider {
	p := &presetProvider{
		s:      s,
		client: client,
		config: oauth2.Config{
			ClientID:     s.ClientID,
			ClientSecret: s.ClientSecret,
			Endpoint: oauth2.Endpoint{
				AuthURL:  s.AuthURL,
				TokenURL: s.TokenURL,
				// GitHub and Facebook document the secret in the body.
				AuthStyle: oauth2.AuthStyleInParams,
			},
			RedirectURL: s.RedirectURL,
			Scopes:      s.Scopes,
		},
	}
	switch s.Kind {
	case "github":
		p.account = githubAccount
	case "facebook":
		p.account = facebookAccount
	case "x":
		// X wants confidential clients to authenticate with HTTP Basic
		// (docs.x.com, "Working with confidential clients").
		p.config.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		p.account = xAccount
	default:
		panic("oauth: no OAuth2 preset of kind " + s.Kind)
	}
	return p
}

func (p *presetProvider) ID() string     { return p.s.ID }
func (p *presetProvider) Label() string  { return p.s.Label }
func (p *presetProvider) Kind() string   { return p.s.Kind }
func (p *presetProvider) AutoLink() bool { return p.s.AutoLink }
func (p *presetProvider) Issuer() string { return "" }
func (p *presetProvider) Ready() bool    { return true }

// AuthURL ignores nonce: OAuth2-only providers have no ID token to carry
// it. PKCE is sent to all three; X requires it, GitHub supports it since
// 2025-07 (github.blog changelog "PKCE support for OAuth and GitHub App
// authentication").
func (p *presetProvider) AuthURL(state, nonce, verifier string) (string, error) {
	if err := checkFlow(state, verifier); err != nil {
		return "", err
	}
	return p.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func (p *presetProvider) Exchange(ctx context.Context, code, verifier, nonce string) (Account, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Account{}, failed("token request", err)
	}
	a, err := p.account(ctx, p, tok)
	if err != nil {
		return Account{}, err
	}
	if a.Subject == "" {
		return Account{}, failed(p.s.Kind+" user: no id", nil)
	}
	a.Provider = p.s.ID
	return a, nil
}

// githubAccount reads GET /user (the numeric id is the subject: a login
// can be renamed and taken by someone else, SECURITY O3) and
// GET /user/emails for the primary address and whether it is verified
// (as PocketBase tools/auth/github.go and Supabase provider/github.go do).
func githubAccount(ctx context.Context, p *presetProvider, tok *oauth2.Token) (Account, error) {
	const accept = "application/vnd.github+json"
	var u struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := getJSON(ctx, p.client, p.s.UserURL, accept, tok, &u); err != nil {
		return Account{}, failed("github user", err)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := getJSON(ctx, p.client, p.s.EmailsURL, accept, tok, &emails); err != nil {
		return Account{}, failed("github emails", err)
	}
	a := Account{Login: u.Login, Name: u.Name}
	if u.ID > 0 {
		a.Subject = strconv.FormatInt(u.ID, 10)
	}
	for _, e := range emails {
		if e.Primary {
			a.Email, a.EmailVerified = e.Email, e.Verified
			break
		}
	}
	return a, nil
}

// facebookAccount reads /me?fields=id,name,email. The id is app-scoped:
// stable while the Facebook app stays the same. The email counts as
// verified, as Supabase (internal/api/provider/facebook.go) and PocketBase
// (tools/auth/facebook.go) count it: the Graph API leaves the field out
// when it has no valid address (a person signed up by phone).
func facebookAccount(ctx context.Context, p *presetProvider, tok *oauth2.Token) (Account, error) {
	var u struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	if err := getJSON(ctx, p.client, p.s.UserURL, "application/json", tok, &u); err != nil {
		return Account{}, failed("facebook user", err)
	}
	return Account{Subject: u.ID, Name: u.Name, Email: u.Email, EmailVerified: u.Email != ""}, nil
}

// xAccount reads GET /2/users/me: the numeric id, the @username and the
// display name. X gives no email.
func xAccount(ctx context.Context, p *presetProvider, tok *oauth2.Token) (Account, error) {
	var u struct {
		Data struct {
			ID       string `json:"id"`
			Username string `json:"username"`
			Name     string `json:"name"`
		} `json:"data"`
	}
	if err := getJSON(ctx, p.client, p.s.UserURL, "application/json", tok, &u); err != nil {
		return Account{}, failed("x user", err)
	}
	return Account{Subject: u.Data.ID, Login: u.Data.Username, Name: u.Data.Name}, nil
}
