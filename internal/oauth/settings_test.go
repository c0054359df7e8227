package oauth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/oauth"
)

const base = "https://id.example.com/"

func TestFromEnv(t *testing.T) {
	t.Parallel()
	got, err := oauth.FromEnv([]string{
		"PATH=/bin",
		"LATCHKEY_OIDC_DEX_ISSUER=http://127.0.0.1:5556/dex",
		"LATCHKEY_OIDC_DEX_CLIENT_ID=latchkey",
		"LATCHKEY_OIDC_DEX_CLIENT_SECRET=dex-secret",
		"LATCHKEY_OIDC_DEX_SCOPES=openid,email  groups",
		"LATCHKEY_OIDC_DEX_LABEL=", // empty counts as unset
		"LATCHKEY_OIDC_GOOGLE_CLIENT_ID=g.apps.googleusercontent.com",
		"LATCHKEY_OIDC_GOOGLE_CLIENT_SECRET=google-secret",
		"LATCHKEY_OIDC_GOOGLE_AUTO_LINK=verified",
		"LATCHKEY_OAUTH_GITHUB_CLIENT_ID=gh",
		"LATCHKEY_OAUTH_GITHUB_CLIENT_SECRET=github-secret",
		"LATCHKEY_OAUTH_GITHUB_USER_URL=http://127.0.0.1:9/user",
		"LATCHKEY_OAUTH_X_CLIENT_ID=x",
		"LATCHKEY_OAUTH_X_CLIENT_SECRET=x-secret",
		"LATCHKEY_OAUTH_X_LABEL=X (Twitter)",
	}, base)
	if err != nil {
		t.Fatal(err)
	}
	want := []oauth.Settings{{
		ID: "dex", Kind: "oidc", Label: "Dex",
		ClientID: "latchkey", ClientSecret: "dex-secret",
		Scopes:      []string{"openid", "email", "groups"},
		RedirectURL: "https://id.example.com/auth/dex/callback",
		Issuer:      "http://127.0.0.1:5556/dex",
	}, {
		ID: "github", Kind: "github", Label: "GitHub",
		ClientID: "gh", ClientSecret: "github-secret",
		Scopes:      []string{"read:user", "user:email"},
		RedirectURL: "https://id.example.com/auth/github/callback",
		AuthURL:     "https://github.com/login/oauth/authorize",
		TokenURL:    "https://github.com/login/oauth/access_token",
		UserURL:     "http://127.0.0.1:9/user",
		EmailsURL:   "https://api.github.com/user/emails",
	}, {
		ID: "google", Kind: "google", Label: "Google",
		ClientID: "g.apps.googleusercontent.com", ClientSecret: "google-secret",
		Scopes:      []string{"openid", "email", "profile"},
		AutoLink:    true,
		RedirectURL: "https://id.example.com/auth/google/callback",
		Issuer:      "https://accounts.google.com",
	}, {
		ID: "x", Kind: "x", Label: "X (Twitter)",
		ClientID: "x", ClientSecret: "x-secret",
		Scopes:      []string{"users.read", "tweet.read"},
		RedirectURL: "https://id.example.com/auth/x/callback",
		AuthURL:     "https://x.com/i/oauth2/authorize",
		TokenURL:    "https://api.x.com/2/oauth2/token",
		UserURL:     "https://api.x.com/2/users/me",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnv:\n got %+v\nwant %+v", got, want)
	}

	none, err := oauth.FromEnv([]string{"HOME=/root", "LATCHKEY_OIDC_DEX_ISSUER="}, base)
	if err != nil || len(none) != 0 {
		t.Errorf("FromEnv(nothing set) = %v, %v; want none", none, err)
	}
}

func TestFromEnvErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	dex := []string{
		"LATCHKEY_OIDC_DEX_ISSUER=https://dex.example.com",
		"LATCHKEY_OIDC_DEX_CLIENT_ID=latchkey",
		"LATCHKEY_OIDC_DEX_CLIENT_SECRET=s3cret-value",
	}
	github := []string{"LATCHKEY_OAUTH_GITHUB_CLIENT_ID=gh", "LATCHKEY_OAUTH_GITHUB_CLIENT_SECRET=s3cret-value"}
	for _, tc := range []struct {
		name    string
		env     []string
		wantVar string
	}{
		{"missing secret", dex[:2], "LATCHKEY_OIDC_DEX_CLIENT_SECRET"},
		{"missing client id", []string{dex[0], dex[2]}, "LATCHKEY_OIDC_DEX_CLIENT_ID"},
		{"missing issuer", dex[1:], "LATCHKEY_OIDC_DEX_ISSUER"},
		{"preset missing secret", github[:1], "LATCHKEY_OAUTH_GITHUB_CLIENT_SECRET"},
		{"id not alphanumeric", append(dex, "LATCHKEY_OIDC_MY_DEX_ISSUER=https://a.example"), "LATCHKEY_OIDC_MY_DEX_ISSUER"},
		{"relative issuer", append(dex, "LATCHKEY_OIDC_DEX_ISSUER=/dex"), "LATCHKEY_OIDC_DEX_ISSUER"},
		{"ftp issuer", append(dex, "LATCHKEY_OIDC_DEX_ISSUER=ftp://dex.example.com"), "LATCHKEY_OIDC_DEX_ISSUER"},
		{"same id twice", append(dex, "LATCHKEY_OIDC_Dex_LABEL=Dex"), "LATCHKEY_OIDC_Dex_LABEL"},
		{"oidc id taken by a preset", append(github, "LATCHKEY_OIDC_GITHUB_ISSUER=https://gh.example"), "LATCHKEY_OIDC_GITHUB_ISSUER"},
		{"auto link not verified", append(dex, "LATCHKEY_OIDC_DEX_AUTO_LINK=yes"), "LATCHKEY_OIDC_DEX_AUTO_LINK"},
		{"scopes without openid", append(dex, "LATCHKEY_OIDC_DEX_SCOPES=email profile"), "LATCHKEY_OIDC_DEX_SCOPES"},
		{"unknown setting", append(dex, "LATCHKEY_OIDC_DEX_CLIENTID=x"), "LATCHKEY_OIDC_DEX_CLIENTID"},
		{"unknown preset", []string{"LATCHKEY_OAUTH_GITLAB_CLIENT_ID=x"}, "LATCHKEY_OAUTH_GITLAB_CLIENT_ID"},
		{"emails url is github's", []string{"LATCHKEY_OAUTH_X_EMAILS_URL=https://x.example"}, "LATCHKEY_OAUTH_X_EMAILS_URL"},
		{"bad endpoint override", append(github, "LATCHKEY_OAUTH_GITHUB_TOKEN_URL=github.example/token"), "LATCHKEY_OAUTH_GITHUB_TOKEN_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := oauth.FromEnv(tc.env, base)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantVar+":") {
				t.Fatalf("FromEnv: %v; want an error naming %s", err, tc.wantVar)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestSettingsNeverPrintTheSecret(t *testing.T) {
	t.Parallel()
	s := oauth.Settings{ID: "dex", Kind: "oidc", ClientID: "latchkey", ClientSecret: "s3cret-value", Issuer: "https://dex.example.com"}
	var log bytes.Buffer
	slog.New(slog.NewJSONHandler(&log, nil)).Info("provider", "settings", s, "list", []oauth.Settings{s})
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		s.String(), fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprint([]oauth.Settings{s}),
		log.String(), string(js),
	} {
		if strings.Contains(out, "s3cret-value") {
			t.Errorf("the secret shows in %q", out)
		}
	}
	if !strings.Contains(s.String(), "dex") || !strings.Contains(log.String(), `"client_secret":"set"`) {
		t.Errorf("String %q / log %q do not describe the provider", s.String(), log.String())
	}
}
