package oauthfake

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const callback = "https://app.example/auth/dex/callback"

// code gets a code for verifier from f's /authorize.
func code(t *testing.T, authorizeURL, clientID, verifier string) string {
	t.Helper()
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {callback}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	back := Authorize(t, authorizeURL+"?"+q.Encode())
	if back.Query().Get("code") == "" {
		t.Fatalf("no code: %s", back)
	}
	return back.Query().Get("code")
}

// redeem posts to tokenURL and returns the status and the error code.
func redeem(t *testing.T, tokenURL string, form url.Values, basic ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}

func TestTokenEndpointChecks(t *testing.T) {
	t.Parallel()
	f := NewOIDC(t, OIDCOptions{User: User{Subject: "s"}})
	x := NewX(t, XUser{ID: "1"})
	verifier := oauth2.GenerateVerifier()
	form := func(code string, change func(url.Values)) url.Values {
		v := url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}, "code_verifier": {verifier},
			"client_id": {f.ClientID}, "client_secret": {f.ClientSecret},
		}
		if change != nil {
			change(v)
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		change     func(url.Values)
		wantStatus int
		wantError  string
	}{
		{"another verifier", func(v url.Values) { v.Set("code_verifier", oauth2.GenerateVerifier()) }, 400, "invalid_grant"},
		{"no verifier", func(v url.Values) { v.Del("code_verifier") }, 400, "invalid_grant"},
		{"another redirect_uri", func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }, 400, "invalid_grant"},
		{"another secret", func(v url.Values) { v.Set("client_secret", "guess") }, 401, "invalid_client"},
		{"unknown code", func(v url.Values) { v.Set("code", rand.Text()) }, 400, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := code(t, f.URL+"/authorize", f.ClientID, verifier)
			if status, e := redeem(t, f.URL+"/token", form(c, tc.change)); status != tc.wantStatus || e != tc.wantError {
				t.Errorf("token: %d %q; want %d %q", status, e, tc.wantStatus, tc.wantError)
			}
		})
	}
	t.Run("once", func(t *testing.T) {
		t.Parallel()
		c := code(t, f.URL+"/authorize", f.ClientID, verifier)
		if status, e := redeem(t, f.URL+"/token", form(c, nil)); status != 200 {
			t.Fatalf("token: %d %q", status, e)
		}
		if status, e := redeem(t, f.URL+"/token", form(c, nil)); status != 400 || e != "invalid_grant" {
			t.Errorf("second use: %d %q; want 400 invalid_grant", status, e)
		}
	})
	t.Run("x wants http basic", func(t *testing.T) {
		t.Parallel()
		c := code(t, x.URL+"/i/oauth2/authorize", x.ClientID, verifier)
		v := form(c, func(v url.Values) { v.Set("client_id", x.ClientID); v.Set("client_secret", x.ClientSecret) })
		if status, e := redeem(t, x.URL+"/2/oauth2/token", v); status != 401 || e != "invalid_client" {
			t.Errorf("secret in the body: %d %q; want 401 invalid_client", status, e)
		}
		c = code(t, x.URL+"/i/oauth2/authorize", x.ClientID, verifier)
		v.Set("code", c)
		if status, e := redeem(t, x.URL+"/2/oauth2/token", v, x.ClientID, x.ClientSecret); status != 200 {
			t.Errorf("basic: %d %q", status, e)
		}
	})
}

func TestAuthorizeWantsS256(t *testing.T) {
	t.Parallel()
	f := NewGitHub(t, GitHubUser{ID: 1}, nil)
	for _, q := range []url.Values{
		{"code_challenge_method": {"plain"}, "code_challenge": {oauth2.GenerateVerifier()}},
		{},
	} {
		q.Set("client_id", f.ClientID)
		q.Set("redirect_uri", callback)
		q.Set("response_type", "code")
		back := Authorize(t, f.URL+"/login/oauth/authorize?"+q.Encode()).Query()
		if back.Get("error") != "invalid_request" || back.Get("code") != "" {
			t.Errorf("authorize %v: sent back with %v; want error=invalid_request", q, back)
		}
	}
}
