// Package oauthfake runs fake sign-in providers for tests, each an
// httptest server closed when the test ends: a real OpenID Connect
// provider (NewOIDC: discovery, JWKS, ID tokens signed RS256, userinfo)
// and fakes of GitHub, Facebook and X (NewGitHub, NewFacebook, NewX).
//
// Every fake approves at once: /authorize redirects straight back to
// redirect_uri with a code and the state. Every token endpoint checks, as
// the real ones do, the client's credentials, that redirect_uri is the one
// the code was issued for, that the code is used once, and PKCE S256 (the
// code_verifier against the code_challenge /authorize was sent); a fake's
// /authorize refuses a request without an S256 challenge.
//
// Env gives the variables that point Latchkey at a fake (oauth.FromEnv's
// input); Authorize follows an authorize URL to the callback it redirects
// to, as a browser would.
package oauthfake

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// clientAuth is how a token endpoint wants the client to authenticate.
type clientAuth int

const (
	authEither clientAuth = iota // HTTP Basic or client_secret in the body
	authBasic                    // HTTP Basic only (X)
	authBody                     // client_id and client_secret in the body (Facebook)
)

// server is the authorization server every fake is built on.
type server struct {
	t   testing.TB
	srv *httptest.Server
	mux *http.ServeMux
	// URL is the server's root, http://127.0.0.1:port.
	URL string
	// ClientID and ClientSecret are the one registered client's.
	ClientID, ClientSecret string

	auth      clientAuth
	formToken bool   // answer /token form-encoded, with errors in a 200 (as GitHub does)
	issuer    string // sent as iss with the code (RFC 9207), when set

	mu            sync.Mutex
	down          bool
	authErr       string
	lastAuthorize url.Values
	codes         map[string]grant // by code, deleted when redeemed
	tokens        map[string]grant // by access token
	// extra adds fields to a token response (the OIDC fake's id_token); it
	// runs with mu held.
	extra func(g grant) (map[string]any, error)
}

// grant is what an authorization was for.
type grant struct {
	redirectURI, challenge, nonce, scope string
}

func newServer(t testing.TB, kind string, auth clientAuth) *server {
	s := &server{
		t:            t,
		mux:          http.NewServeMux(),
		ClientID:     kind + "-client",
		ClientSecret: kind + "-secret-" + rand.Text(),
		auth:         auth,
		codes:        map[string]grant{},
		tokens:       map[string]grant{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.isDown() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		s.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Down makes every endpoint answer 503 until Up.
func (s *server) Down() { s.mu.Lock(); s.down = true; s.mu.Unlock() }

// Up undoes Down.
func (s *server) Up() { s.mu.Lock(); s.down = false; s.mu.Unlock() }

func (s *server) isDown() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.down }

// SetError makes /authorize send the person back with error=code (as
// "access_denied" when they cancel) instead of a code; "" approves again.
func (s *server) SetError(code string) { s.mu.Lock(); s.authErr = code; s.mu.Unlock() }

// LastAuthorize is the query of the last request to /authorize (nil before
// the first): client_id, redirect_uri, scope, state, nonce,
// code_challenge, code_challenge_method…
func (s *server) LastAuthorize() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := url.Values{}
	for k, v := range s.lastAuthorize {
		q[k] = append([]string(nil), v...)
	}
	return q
}

// handleAuthorize approves at once. Like a real provider it shows an error
// page, not a redirect, for an unknown client or a missing redirect_uri.
func (s *server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.lastAuthorize = q
	authErr := s.authErr
	s.mu.Unlock()

	back, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("client_id") != s.ClientID || err != nil || !back.IsAbs() {
		http.Error(w, "unknown client_id or bad redirect_uri", http.StatusBadRequest)
		return
	}
	answer := url.Values{"state": {q.Get("state")}}
	if s.issuer != "" {
		answer.Set("iss", s.issuer)
	}
	switch {
	case q.Get("response_type") != "code":
		answer.Set("error", "unsupported_response_type")
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		answer.Set("error", "invalid_request")
		answer.Set("error_description", "PKCE with S256 is required")
	case authErr != "":
		answer.Set("error", authErr)
	default:
		code := rand.Text()
		s.mu.Lock()
		s.codes[code] = grant{
			redirectURI: q.Get("redirect_uri"),
			challenge:   q.Get("code_challenge"),
			nonce:       q.Get("nonce"),
			scope:       q.Get("scope"),
		}
		s.mu.Unlock()
		answer.Set("code", code)
	}
	bq := back.Query()
	for k, v := range answer {
		bq[k] = v
	}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// handleToken redeems a code once, for the client it was issued to, with
// the same redirect_uri and the verifier of its challenge.
func (s *server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		s.tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !s.clientOK(r) {
		s.tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		s.tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	code := r.PostForm.Get("code")
	g, ok := s.codes[code]
	delete(s.codes, code)
	if !ok || r.PostForm.Get("redirect_uri") != g.redirectURI || !pkceOK(r.PostForm.Get("code_verifier"), g.challenge) {
		s.tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	at := rand.Text()
	s.tokens[at] = g
	resp := map[string]any{"access_token": at, "token_type": "bearer", "expires_in": 3600, "scope": g.scope}
	if s.extra != nil {
		more, err := s.extra(g)
		if err != nil {
			s.t.Errorf("oauthfake: %v", err)
			s.tokenError(w, http.StatusInternalServerError, "server_error")
			return
		}
		for k, v := range more {
			resp[k] = v
		}
	}
	if s.formToken {
		f := url.Values{}
		for k, v := range resp {
			f.Set(k, fmt.Sprint(v))
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte(f.Encode()))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) clientOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded inside the header.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	switch {
	case basic && s.auth != authBody:
	case !basic && s.auth != authBasic:
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		return false
	}
	return id == s.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) == 1
}

func (s *server) tokenError(w http.ResponseWriter, status int, code string) {
	if s.formToken {
		// GitHub answers 200 with the error in the body.
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		w.Write([]byte(url.Values{"error": {code}}.Encode()))
		return
	}
	writeJSON(w, status, map[string]string{"error": code})
}

// bearer is the grant behind the request's access token.
func (s *server) bearer(r *http.Request) (grant, bool) {
	scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return grant{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.tokens[at]
	return g, ok
}

// api serves an endpoint that needs an access token from this server.
func (s *server) api(pattern string, serve func(w http.ResponseWriter, r *http.Request, g grant)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		g, ok := s.bearer(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
			return
		}
		serve(w, r, g)
	})
}

func pkceOK(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return verifier != "" && base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Authorize does what a browser does with an authorize URL at a fake:
// it follows it to the provider, which approves at once, and returns
// where the provider sends the person back (the callback, with code and
// state, or error).
func Authorize(t testing.TB, authURL string) *url.URL {
	t.Helper()
	c := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("oauthfake: authorize: %v", err)
	}
	resp.Body.Close()
	back, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("oauthfake: authorize answered %s, not a redirect back", resp.Status)
	}
	return back
}
