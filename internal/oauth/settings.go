package oauth

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// Settings is one provider's configuration, as FromEnv reads it.
type Settings struct {
	ID    string // lower-case letters and digits: /auth/<id>
	Kind  string // "oidc", "google", "github", "facebook" or "x"
	Label string // the button text: "Continue with <Label>"

	ClientID     string
	ClientSecret string `json:"-"` // never printed: see String and LogValue
	Scopes       []string
	AutoLink     bool   // …_AUTO_LINK=verified
	RedirectURL  string // LATCHKEY_BASE_URL + /auth/<id>/callback

	// Issuer is the OIDC issuer, matched exactly at discovery ("" for the
	// OAuth2 presets).
	Issuer string
	// The OAuth2 presets' endpoints ("" for OIDC, which discovers them).
	// EmailsURL is GitHub's /user/emails.
	AuthURL, TokenURL, UserURL, EmailsURL string
}

// String describes the provider without its client secret.
func (s Settings) String() string {
	where := s.Issuer
	if where == "" {
		where = s.AuthURL
	}
	return fmt.Sprintf("%s (%s %s, client %s, secret %s)", s.ID, s.Kind, where, s.ClientID, secretState(s.ClientSecret))
}

// GoString keeps %#v from printing the client secret.
func (s Settings) GoString() string { return "oauth.Settings{" + s.String() + "}" }

// LogValue logs the provider without its client secret.
func (s Settings) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", s.ID),
		slog.String("kind", s.Kind),
		slog.String("client_id", s.ClientID),
		slog.String("client_secret", secretState(s.ClientSecret)),
	}
	if s.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", s.Issuer))
	}
	return slog.GroupValue(attrs...)
}

func secretState(secret string) string {
	if secret == "" {
		return "missing"
	}
	return "set"
}

const (
	oidcPrefix  = "LATCHKEY_OIDC_"
	oauthPrefix = "LATCHKEY_OAUTH_"
	googleIss   = "https://accounts.google.com"
)

// The settings each family of variables knows, longest first so that
// CLIENT_SECRET is not read as an ID ending in CLIENT_ + SECRET.
var (
	oidcFields  = []string{"CLIENT_SECRET", "CLIENT_ID", "AUTO_LINK", "ISSUER", "SCOPES", "LABEL"}
	oauthFields = []string{"CLIENT_SECRET", "EMAILS_URL", "CLIENT_ID", "AUTO_LINK", "TOKEN_URL", "AUTH_URL", "USER_URL", "LABEL"}
)

// preset is an OAuth2-only provider: its real endpoints and what it asks
// for.
type preset struct {
	kind, label                           string
	authURL, tokenURL, userURL, emailsURL string
	scopes                                []string
}

// presets are the OAuth2-only providers, by their variable name
// (LATCHKEY_OAUTH_<NAME>_…). Endpoints checked on 2026-11-28:
// docs.github.com "Authorizing OAuth apps"; developers.facebook.com Graph
// API (v25.0 is current: a version lives about two years);
// docs.x.com "OAuth 2.0 Authorization Code Flow with PKCE".
func presets() map[string]preset {
	return map[string]preset{
		"GITHUB": {
			kind: "github", label: "GitHub",
			authURL:   "https://github.com/login/oauth/authorize",
			tokenURL:  "https://github.com/login/oauth/access_token",
			userURL:   "https://api.github.com/user",
			emailsURL: "https://api.github.com/user/emails",
			scopes:    []string{"read:user", "user:email"},
		},
		"FACEBOOK": {
			kind: "facebook", label: "Facebook",
			authURL:  "https://www.facebook.com/v25.0/dialog/oauth",
			tokenURL: "https://graph.facebook.com/v25.0/oauth/access_token",
			userURL:  "https://graph.facebook.com/v25.0/me?fields=id,name,email",
			scopes:   []string{"email", "public_profile"},
		},
		"X": {
			kind: "x", label: "X",
			authURL:  "https://x.com/i/oauth2/authorize",
			tokenURL: "https://api.x.com/2/oauth2/token",
			userURL:  "https://api.x.com/2/users/me",
			// users.read and tweet.read are both required by GET /2/users/me.
			scopes: []string{"users.read", "tweet.read"},
		},
	}
}

// FromEnv reads the providers configured in environ (os.Environ's "K=V"
// form) and returns them sorted by ID; baseURL is LATCHKEY_BASE_URL, the
// start of every redirect URL. Variables with an empty value count as
// unset. Every error names the variable at fault; none prints a value.
//
//	LATCHKEY_OIDC_<ID>_ISSUER, _CLIENT_ID, _CLIENT_SECRET   any OpenID Connect provider
//	LATCHKEY_OIDC_<ID>_LABEL, _SCOPES, _AUTO_LINK           optional
//	LATCHKEY_OIDC_GOOGLE_…                                  Google; ISSUER defaults to https://accounts.google.com
//	LATCHKEY_OAUTH_{GITHUB,FACEBOOK,X}_CLIENT_ID, _CLIENT_SECRET
//	LATCHKEY_OAUTH_…_LABEL, _AUTO_LINK, _AUTH_URL, _TOKEN_URL, _USER_URL (GitHub: _EMAILS_URL)
func FromEnv(environ []string, baseURL string) ([]Settings, error) {
	type group struct {
		prefix string // "LATCHKEY_OIDC_DEX_"
		oidc   bool
		name   string // "DEX"
		vals   map[string]string
	}
	groups := map[string]*group{} // by lower-case id
	for _, kv := range environ {
		key, val, _ := strings.Cut(kv, "=")
		var fields []string
		oidc := strings.HasPrefix(key, oidcPrefix)
		switch {
		case oidc:
			fields = oidcFields
		case strings.HasPrefix(key, oauthPrefix):
			fields = oauthFields
		default:
			continue
		}
		if val == "" {
			continue
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(key, oidcPrefix), oauthPrefix)
		field := ""
		for _, f := range fields {
			if strings.HasSuffix(rest, "_"+f) {
				field = f
				break
			}
		}
		if field == "" {
			return nil, fmt.Errorf("%s: unknown setting (known: %s)", key, strings.Join(fields, ", "))
		}
		name := strings.TrimSuffix(rest, "_"+field)
		if name == "" || strings.IndexFunc(name, notAlnum) >= 0 {
			return nil, fmt.Errorf("%s: the provider id %q must be letters and digits only", key, name)
		}
		if !oidc {
			if _, ok := presets()[name]; !ok {
				return nil, fmt.Errorf("%s: %q is not an OAuth2 preset (GITHUB, FACEBOOK, X); use LATCHKEY_OIDC_%s_… for an OpenID Connect provider", key, name, name)
			}
			if field == "EMAILS_URL" && name != "GITHUB" {
				return nil, fmt.Errorf("%s: unknown setting (EMAILS_URL is GitHub's)", key)
			}
		}
		id := strings.ToLower(name)
		g := groups[id]
		if g == nil {
			g = &group{prefix: strings.TrimSuffix(key, field), oidc: oidc, name: name, vals: map[string]string{}}
			groups[id] = g
		} else if g.oidc != oidc || g.name != name {
			return nil, fmt.Errorf("%s: the provider id %q is already used by %s…", key, id, g.prefix)
		}
		g.vals[field] = val
	}

	base := strings.TrimRight(baseURL, "/")
	var out []Settings
	for _, id := range slices.Sorted(maps.Keys(groups)) {
		g := groups[id]
		s := Settings{
			ID:           id,
			ClientID:     g.vals["CLIENT_ID"],
			ClientSecret: g.vals["CLIENT_SECRET"],
			Label:        g.vals["LABEL"],
			RedirectURL:  base + "/auth/" + id + "/callback",
		}
		for _, f := range []string{"CLIENT_ID", "CLIENT_SECRET"} {
			if g.vals[f] == "" {
				return nil, fmt.Errorf("%s%s: missing (needed since %s… is set)", g.prefix, f, g.prefix)
			}
		}
		switch g.vals["AUTO_LINK"] {
		case "":
		case "verified":
			s.AutoLink = true
		default:
			return nil, fmt.Errorf("%sAUTO_LINK: must be \"verified\" or empty", g.prefix)
		}
		var err error
		if g.oidc {
			err = oidcSettings(&s, g.prefix, g.vals)
		} else {
			err = presetSettings(&s, g.prefix, g.name, g.vals)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func oidcSettings(s *Settings, prefix string, vals map[string]string) error {
	s.Kind, s.Issuer = "oidc", vals["ISSUER"]
	if s.ID == "google" {
		s.Kind = "google"
		if s.Issuer == "" {
			s.Issuer = googleIss
		}
		if s.Label == "" {
			s.Label = "Google"
		}
	}
	if s.Issuer == "" {
		return fmt.Errorf("%sISSUER: missing (needed since %s… is set)", prefix, prefix)
	}
	if err := checkURL(s.Issuer); err != nil {
		return fmt.Errorf("%sISSUER: %w", prefix, err)
	}
	if s.Label == "" {
		s.Label = strings.ToUpper(s.ID[:1]) + s.ID[1:]
	}
	s.Scopes = []string{"openid", "email", "profile"}
	if v := vals["SCOPES"]; v != "" {
		s.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		if !slices.Contains(s.Scopes, "openid") {
			return fmt.Errorf("%sSCOPES: must include openid", prefix)
		}
	}
	return nil
}

func presetSettings(s *Settings, prefix, name string, vals map[string]string) error {
	p := presets()[name]
	s.Kind, s.Scopes = p.kind, p.scopes
	if s.Label == "" {
		s.Label = p.label
	}
	for _, e := range []struct {
		field, def string
		dst        *string
	}{
		{"AUTH_URL", p.authURL, &s.AuthURL},
		{"TOKEN_URL", p.tokenURL, &s.TokenURL},
		{"USER_URL", p.userURL, &s.UserURL},
		{"EMAILS_URL", p.emailsURL, &s.EmailsURL},
	} {
		*e.dst = cmp.Or(vals[e.field], e.def)
		if vals[e.field] == "" {
			continue
		}
		if err := checkURL(*e.dst); err != nil {
			return fmt.Errorf("%s%s: %w", prefix, e.field, err)
		}
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	return nil
}

func notAlnum(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
}
