package oauthfake

import (
	"net/http"
	"strings"
	"testing"
)

// GitHubUser is GET /user's answer (the part Latchkey reads).
type GitHubUser struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// GitHub is a running fake of GitHub's OAuth app flow and REST API:
// /login/oauth/authorize, /login/oauth/access_token (form-encoded answers,
// errors in a 200, as GitHub does), /user and /user/emails (which want
// Accept: application/vnd.github+json).
type GitHub struct {
	*server
	user   GitHubUser // guarded by server.mu
	emails []GitHubEmail
}

// NewGitHub starts a GitHub fake that signs user in, with emails.
func NewGitHub(t testing.TB, user GitHubUser, emails []GitHubEmail) *GitHub {
	t.Helper()
	f := &GitHub{server: newServer(t, "github", authEither), user: user, emails: emails}
	f.formToken = true
	f.mux.HandleFunc("GET /login/oauth/authorize", f.handleAuthorize)
	f.mux.HandleFunc("/login/oauth/access_token", f.handleToken)
	f.githubAPI("GET /user", func() any { return f.user })
	f.githubAPI("GET /user/emails", func() any { return f.emails })
	return f
}

// SetUser changes who signs in next.
func (f *GitHub) SetUser(user GitHubUser, emails []GitHubEmail) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user, f.emails = user, emails
}

func (f *GitHub) githubAPI(pattern string, answer func() any) {
	f.api(pattern, func(w http.ResponseWriter, r *http.Request, g grant) {
		if r.Header.Get("Accept") != "application/vnd.github+json" {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"message": "Accept: application/vnd.github+json"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, http.StatusOK, answer())
	})
}

// Env is the variables that configure Latchkey with this fake as GitHub.
func (f *GitHub) Env() []string {
	return presetEnv("GITHUB", f.server, "/login/oauth/authorize", "/login/oauth/access_token", "/user",
		"EMAILS_URL="+f.URL+"/user/emails")
}

// FacebookUser is /me's answer; an empty Email is left out, as Facebook
// does for a person without one.
type FacebookUser struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Facebook is a running fake of Facebook Login: /dialog/oauth,
// /oauth/access_token (the client secret in the body) and /me.
type Facebook struct {
	*server
	user FacebookUser
}

// NewFacebook starts a Facebook fake that signs user in.
func NewFacebook(t testing.TB, user FacebookUser) *Facebook {
	t.Helper()
	f := &Facebook{server: newServer(t, "facebook", authBody), user: user}
	f.mux.HandleFunc("GET /dialog/oauth", f.handleAuthorize)
	f.mux.HandleFunc("/oauth/access_token", f.handleToken)
	f.api("GET /me", func(w http.ResponseWriter, r *http.Request, g grant) {
		u := f.user
		if !strings.Contains(r.URL.Query().Get("fields"), "email") {
			u.Email = ""
		}
		writeJSON(w, http.StatusOK, u)
	})
	return f
}

// Env is the variables that configure Latchkey with this fake as
// Facebook.
func (f *Facebook) Env() []string {
	return presetEnv("FACEBOOK", f.server, "/dialog/oauth", "/oauth/access_token", "/me?fields=id,name,email")
}

// XUser is GET /2/users/me's data. X gives no email.
type XUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

// X is a running fake of X's OAuth 2.0: /i/oauth2/authorize,
// /2/oauth2/token (HTTP Basic client authentication only, as X wants of a
// confidential client) and /2/users/me.
type X struct {
	*server
	user XUser
}

// NewX starts an X fake that signs user in.
func NewX(t testing.TB, user XUser) *X {
	t.Helper()
	f := &X{server: newServer(t, "x", authBasic), user: user}
	f.mux.HandleFunc("GET /i/oauth2/authorize", f.handleAuthorize)
	f.mux.HandleFunc("/2/oauth2/token", f.handleToken)
	f.api("GET /2/users/me", func(w http.ResponseWriter, r *http.Request, g grant) {
		writeJSON(w, http.StatusOK, map[string]any{"data": f.user})
	})
	return f
}

// Env is the variables that configure Latchkey with this fake as X.
func (f *X) Env() []string {
	return presetEnv("X", f.server, "/i/oauth2/authorize", "/2/oauth2/token", "/2/users/me")
}

func presetEnv(name string, s *server, auth, token, user string, more ...string) []string {
	p := "LATCHKEY_OAUTH_" + name + "_"
	env := []string{
		p + "CLIENT_ID=" + s.ClientID,
		p + "CLIENT_SECRET=" + s.ClientSecret,
		p + "AUTH_URL=" + s.URL + auth,
		p + "TOKEN_URL=" + s.URL + token,
		p + "USER_URL=" + s.URL + user,
	}
	for _, m := range more {
		env = append(env, p+m)
	}
	return env
}
