package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9]{64}$`)

// lbErr is the envelope body LoopBack answers, as in loopback3-observed.md.
func lbErr(status int, name, message, code string) string {
	s := fmt.Sprintf(`{"error":{"statusCode":%d,"name":%s,"message":%s`, status, mustJSON(name), mustJSON(message))
	if code != "" {
		s += `,"code":` + mustJSON(code)
	}
	return s + "}}"
}

var (
	authRequired = lbErr(401, "Error", "Authorization Required", "AUTHORIZATION_REQUIRED")
	loginFailed  = lbErr(401, "Error", "login failed", "LOGIN_FAILED")
)

// sameJSON compares two JSON documents ignoring key order.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

// TestAPICreate covers section 1 of loopback3-observed.md.
func TestAPICreate(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	validation := func(msg string, codes, messages string) string {
		return `{"error":{"statusCode":422,"name":"ValidationError","message":` + mustJSON(msg) +
			`,"details":{"context":"User","codes":` + codes + `,"messages":` + messages + `}}}`
	}
	tests := []struct {
		name       string
		body       string
		headers    []string
		wantStatus int
		want       string // exact body (key order matters: LoopBack's order)
	}{
		{"1.1 ok with username", `{"email":"alice@example.com","password":"ecila-pw-1","username":"alice"}`, nil,
			200, `{"username":"alice","email":"alice@example.com","id":1}`},
		{"1.2 ok without username", `{"email":"bob@example.com","password":"bob-pw-1"}`, nil,
			200, `{"email":"bob@example.com","id":2}`},
		{"1.3 duplicate email", `{"email":"alice@example.com","password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` Email already exists (value: \"alice@example.com\").",
				`{"email":["uniqueness"]}`, `{"email":["Email already exists"]}`)},
		{"duplicate email in another case", `{"email":"ALICE@Example.com","password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` Email already exists (value: \"ALICE@Example.com\").",
				`{"email":["uniqueness"]}`, `{"email":["Email already exists"]}`)},
		{"1.4 duplicate username", `{"email":"other@example.com","password":"long-enough","username":"alice"}`, nil,
			422, validation("The `User` instance is not valid. Details: `username` User already exists (value: \"alice\").",
				`{"username":["uniqueness"]}`, `{"username":["User already exists"]}`)},
		{"1.5 missing password", `{"email":"nopw@example.com"}`, nil,
			422, validation("The `User` instance is not valid. Details: `password` can't be blank (value: undefined).",
				`{"password":["presence"]}`, `{"password":["can't be blank"]}`)},
		{"1.6 empty password", `{"email":"emptypw@example.com","password":""}`, nil,
			422, lbErr(422, "Error", "Invalid password.", "INVALID_PASSWORD")},
		{"1.7 password is a number", `{"email":"numpw@example.com","password":12345}`, nil,
			422, validation("The `User` instance is not valid. Details: `password` can't be blank (value: undefined).",
				`{"password":["presence"]}`, `{"password":["can't be blank"]}`)},
		{"1.8 missing email", `{"password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` can't be blank (value: undefined).",
				`{"email":["presence"]}`, `{"email":["can't be blank"]}`)},
		{"1.9 empty object", `{}`, nil,
			422, validation("The `User` instance is not valid. Details: `password` can't be blank (value: undefined); `email` can't be blank (value: undefined).",
				`{"password":["presence"],"email":["presence"]}`, `{"password":["can't be blank"],"email":["can't be blank"]}`)},
		{"1.10 invalid email", `{"email":"not-an-email","password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` is invalid (value: \"not-an-email\").",
				`{"email":["custom.email"]}`, `{"email":["is invalid"]}`)},
		{"1.11 email with leading spaces", `{"email":"  spaced@example.com","password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` is invalid (value: \"  spaced@example.com\").",
				`{"email":["custom.email"]}`, `{"email":["is invalid"]}`)},
		{"email as an object", `{"email":{"neq":"x"},"password":"long-enough"}`, nil,
			422, validation("The `User` instance is not valid. Details: `email` is invalid (value: {\"neq\":\"x\"}).",
				`{"email":["custom.email"]}`, `{"email":["is invalid"]}`)},
		{"1.12 explicit id", `{"email":"withid@example.com","password":"long-enough","id":77}`, nil,
			422, validation("The `User` instance is not valid. Details: `id` can't be set (value: 77).",
				`{"id":["absence"]}`, `{"id":["can't be set"]}`)},
		{"1.13 extra fields, emailVerified forced false, realm kept", `{"email":"carol@example.com","password":"lorac-pw-1","nickname":"caz","prefs":{"a":1},"emailVerified":true,"verificationToken":"chosen-by-client","realm":"r1"}`, nil,
			200, `{"realm":"r1","email":"carol@example.com","emailVerified":false,"id":3,"nickname":"caz","prefs":{"a":1}}`},
		{"1.16 password of 72 bytes", `{"email":"p72@example.com","password":"` + strings.Repeat("a", 72) + `"}`, nil,
			200, `{"email":"p72@example.com","id":4}`},
		{"1.17 password of 73 bytes", `{"email":"p73@example.com","password":"` + strings.Repeat("a", 73) + `"}`, nil,
			422, lbErr(422, "Error", "The password entered was too long. Max length is 72 (entered 73)", "PASSWORD_TOO_LONG")},
		{"1.18 37 x é is 74 bytes", `{"email":"p74@example.com","password":"` + strings.Repeat("é", 37) + `"}`, nil,
			422, lbErr(422, "Error", "The password entered was too long. Max length is 72 (entered 74)", "PASSWORD_TOO_LONG")},
		{"password under the minimum", `{"email":"short@example.com","password":"1234567"}`, nil,
			422, lbErr(422, "Error", "The password entered was too short. Min length is 8 (entered 7)", "PASSWORD_TOO_SHORT")},
		{"password rule checked before validation (as LoopBack)", `{"password":""}`, nil,
			422, lbErr(422, "Error", "Invalid password.", "INVALID_PASSWORD")},
		{"1.20 array body is not a bulk create", `[{"email":"bulk1@example.com","password":"long-enough"}]`, nil,
			400, lbErr(400, "Error", "Create one user per request", "BULK_CREATE_UNSUPPORTED")},
		{"1.21 malformed JSON", `{"email":`, nil,
			400, `{"error":{"statusCode":400,"name":"SyntaxError","message":"Unexpected end of JSON input"}}`},
		{"JSON that is not an object", `"hello"`, nil,
			400, lbErr(400, "Error", "The request body must be a JSON object", "INVALID_BODY")},
		{"1.22 unknown token on a public endpoint is anonymous", `{"email":"erin@example.com","password":"nire-pw-1"}`, []string{"Authorization: bogus"},
			200, `{"email":"erin@example.com","id":5}`},
		{"wrong content type", `email=x`, []string{"Content-Type: text/plain"},
			415, lbErr(415, "Error", "Unsupported Content-Type text/plain: send application/json or application/x-www-form-urlencoded", "UNSUPPORTED_MEDIA_TYPE")},
		{"form-encoded", `email=frank%40example.com&password=knarf-pw-1`, []string{"Content-Type: application/x-www-form-urlencoded"},
			200, `{"email":"frank@example.com","id":6}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("POST", "/api/users", tt.body, tt.headers...)
			if r.status != tt.wantStatus || r.body != tt.want {
				t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, tt.wantStatus, tt.want)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if strings.Contains(r.body, "password\":") && r.status == 200 {
				t.Errorf("password leaked: %s", r.body)
			}
		})
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestAPILogin covers section 2 of loopback3-observed.md.
func TestAPILogin(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("alice@example.com", "ecila-pw-1", "username", "alice")
	env.signup("carol@example.com", "lorac-pw-1", "realm", "r1", "nickname", "caz")

	tests := []struct {
		name       string
		path, body string
		headers    []string
		wantStatus int
		wantBody   string  // exact, for errors
		wantTTL    float64 // for successes
		wantUser   string  // the included user, exact
	}{
		{"2.1 by email", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1"}`, nil, 200, "", 1209600, ""},
		{"2.2 by username", "/api/users/login", `{"username":"alice","password":"ecila-pw-1"}`, nil, 200, "", 1209600, ""},
		{"2.3 email wins over username", "/api/users/login", `{"email":"alice@example.com","username":"nobody","password":"ecila-pw-1"}`, nil, 200, "", 1209600, ""},
		{"2.4 wrong password", "/api/users/login", `{"email":"alice@example.com","password":"wrong"}`, nil, 401, loginFailed, 0, ""},
		{"2.5 unknown user", "/api/users/login", `{"email":"nobody@example.com","password":"x"}`, nil, 401, loginFailed, 0, ""},
		{"2.6 missing password", "/api/users/login", `{"email":"alice@example.com"}`, nil, 401, loginFailed, 0, ""},
		{"password as an object", "/api/users/login", `{"email":"alice@example.com","password":{"neq":""}}`, nil, 401, loginFailed, 0, ""},
		{"2.7 missing email and username", "/api/users/login", `{"password":"ecila-pw-1"}`, nil, 400,
			lbErr(400, "Error", "username or email is required", "USERNAME_EMAIL_REQUIRED"), 0, ""},
		{"2.8 no body", "/api/users/login", ``, nil, 400,
			lbErr(400, "Error", "username or email is required", "USERNAME_EMAIL_REQUIRED"), 0, ""},
		{"2.9 email as object", "/api/users/login", `{"email":{"neq":"x"},"password":"x"}`, nil, 400,
			lbErr(400, "Error", "Invalid email", "INVALID_EMAIL"), 0, ""},
		{"2.10 username as object", "/api/users/login", `{"username":{"neq":null},"password":"x"}`, nil, 400,
			lbErr(400, "Error", "Invalid username", "INVALID_USERNAME"), 0, ""},
		{"2.11 email in other case (case-insensitive here)", "/api/users/login", `{"email":"ALICE@example.com","password":"ecila-pw-1"}`, nil, 200, "", 1209600, ""},
		{"2.12 form-urlencoded", "/api/users/login", `email=alice%40example.com&password=ecila-pw-1`, []string{"Content-Type: application/x-www-form-urlencoded"}, 200, "", 1209600, ""},
		{"2.13 ttl 60", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":60}`, nil, 200, "", 60, ""},
		{"2.14 ttl above max is capped", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":99999999999}`, nil, 200, "", 31556926, ""},
		{"2.15 ttl 0 is the default", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":0}`, nil, 200, "", 1209600, ""},
		{"2.16 numeric string ttl", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":"120"}`, nil, 200, "", 120, ""},
		{"form ttl", "/api/users/login", `email=alice%40example.com&password=ecila-pw-1&ttl=300`, []string{"Content-Type: application/x-www-form-urlencoded"}, 200, "", 300, ""},
		{"2.17 ttl -1 refused", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":-1}`, nil, 400,
			lbErr(400, "Error", models.ErrInvalidTTL.Message, "INVALID_TTL"), 0, ""},
		{"ttl -5 refused", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":-5}`, nil, 400,
			lbErr(400, "Error", models.ErrInvalidTTL.Message, "INVALID_TTL"), 0, ""},
		{"2.20 ttl abc refused", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":"abc"}`, nil, 400,
			lbErr(400, "Error", models.ErrInvalidTTL.Message, "INVALID_TTL"), 0, ""},
		{"ttl fractional refused", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":1.5}`, nil, 400,
			lbErr(400, "Error", models.ErrInvalidTTL.Message, "INVALID_TTL"), 0, ""},
		{"ttl boolean refused", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":true}`, nil, 400,
			lbErr(400, "Error", models.ErrInvalidTTL.Message, "INVALID_TTL"), 0, ""},
		{"2.22 include=user", "/api/users/login?include=user", `{"email":"alice@example.com","password":"ecila-pw-1"}`, nil, 200, "", 1209600,
			`{"username":"alice","email":"alice@example.com","id":1}`},
		{"2.23 include=USER with profile and realm", "/api/users/login?include=USER", `{"email":"carol@example.com","password":"lorac-pw-1"}`, nil, 200, "", 1209600,
			`{"realm":"r1","email":"carol@example.com","id":2,"nickname":"caz"}`},
		{"2.24 realm in credentials ignored", "/api/users/login", `{"email":"carol@example.com","password":"lorac-pw-1","realm":"other"}`, nil, 200, "", 1209600, ""},
		{"2.25 canonical path /api/Users/login", "/api/Users/login", `{"email":"alice@example.com","password":"ecila-pw-1"}`, nil, 200, "", 1209600, ""},
		{"malformed JSON", "/api/users/login", `{"email":"alice@example.com",`, nil, 400,
			`{"error":{"statusCode":400,"name":"SyntaxError","message":"Unexpected end of JSON input"}}`, 0, ""},
		{"GET with credentials in the query is not a login", "/api/users/login?email=alice@example.com&password=ecila-pw-1", "", nil, 401, authRequired, 0, ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if strings.HasPrefix(tt.name, "GET") {
				method = "GET"
			}
			r := env.do(method, tt.path, tt.body, tt.headers...)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantBody != "" {
				if r.body != tt.wantBody {
					t.Fatalf("body\n got %s\nwant %s", r.body, tt.wantBody)
				}
				return
			}
			m := r.json(t)
			id, _ := m["id"].(string)
			if !tokenRE.MatchString(id) || seen[id] {
				t.Fatalf("token id %q not 64 base62 characters or reused", id)
			}
			seen[id] = true
			if m["ttl"] != tt.wantTTL {
				t.Errorf("ttl %v, want %v", m["ttl"], tt.wantTTL)
			}
			if m["created"] != "2026-11-25T23:54:13.199Z" {
				t.Errorf("created %v", m["created"])
			}
			if _, ok := m["userId"].(float64); !ok {
				t.Errorf("userId not a number: %v", m["userId"])
			}
			keys := orderOfKeys(t, r.body)
			wantKeys := "id,ttl,created,userId"
			if tt.wantUser != "" {
				wantKeys += ",user"
				u, _ := json.Marshal(m["user"])
				if !sameJSON(t, string(u), tt.wantUser) {
					t.Errorf("user %s, want %s", u, tt.wantUser)
				}
			}
			if keys != wantKeys {
				t.Errorf("keys %s, want %s", keys, wantKeys)
			}
		})
	}
}

func orderOfKeys(t *testing.T, body string) string {
	f, err := models.ParseObject([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range f {
		names = append(names, x.Name)
	}
	return strings.Join(names, ",")
}

// TestAPIEternalTokens: ttl -1 only when enabled, and then it works.
func TestAPIEternalTokens(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(c *models.Config, _ *handlers.Options) { c.AllowEternalTokens = true })
	env.signup("alice@example.com", "ecila-pw-1")
	r := env.do("POST", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":-1}`)
	if r.status != 200 || r.json(t)["ttl"] != float64(-1) {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tok := r.json(t)["id"].(string)
	env.clock.Advance(10 * 365 * 24 * time.Hour)
	if r := env.do("GET", "/api/users/1", "", "Authorization: "+tok); r.status != 200 {
		t.Fatalf("eternal token after 10 years: %d %s", r.status, r.body)
	}
}

// TestAPITokenTransport covers section 3 of loopback3-observed.md.
func TestAPITokenTransport(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("alice@example.com", "ecila-pw-1", "username", "alice")
	a1 := env.login("alice@example.com", "ecila-pw-1")
	alice := `{"username":"alice","email":"alice@example.com","id":1}`
	b64 := base64.StdEncoding.EncodeToString([]byte(a1))
	tests := []struct {
		name    string
		path    string
		headers []string
		want    string
	}{
		{"3.1 Authorization: <id>", "/api/users/1", []string{"Authorization: " + a1}, alice},
		{"3.2 Bearer <id> (RFC 6750, accepted here)", "/api/users/1", []string{"Authorization: Bearer " + a1}, alice},
		{"3.3 Bearer base64(<id>)", "/api/users/1", []string{"Authorization: Bearer " + b64}, alice},
		{"3.4 lower-case bearer (accepted here)", "/api/users/1", []string{"Authorization: bearer " + a1}, alice},
		{"3.5 Basic base64(<id>:)", "/api/users/1", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(a1+":"))}, alice},
		{"3.6 ?access_token=", "/api/users/1?access_token=" + a1, nil, alice},
		{"3.7 X-Access-Token", "/api/users/1", []string{"X-Access-Token: " + a1}, alice},
		{"3.8 cookie access_token never authenticates", "/api/users/1", []string{"Cookie: access_token=" + a1}, authRequired},
		{"3.9 cookie authorization never authenticates", "/api/users/1", []string{"Cookie: authorization=" + a1}, authRequired},
		{"session cookie never authenticates the API", "/api/users/1", []string{"Cookie: latchkey_session=" + a1}, authRequired},
		{"3.11 valid query wins over bogus header", "/api/users/1?access_token=" + a1, []string{"Authorization: bogus"}, alice},
		{"3.12 bogus query wins over valid header", "/api/users/1?access_token=bogus", []string{"Authorization: " + a1}, authRequired},
		{"3.13 bogus X-Access-Token wins over valid Authorization", "/api/users/1", []string{"X-Access-Token: bogus", "Authorization: " + a1}, authRequired},
		{"3.14 unknown token", "/api/users/1", []string{"Authorization: bogus"}, authRequired},
		{"a token of the right shape that does not exist", "/api/users/1", []string{"Authorization: " + models.NewTokenID()}, authRequired},
		{"/api/Users path case", "/api/Users/1", []string{"Authorization: " + a1}, alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.do("GET", tt.path, "", tt.headers...)
			if r.body != tt.want {
				t.Fatalf("got %d %s\nwant %s", r.status, r.body, tt.want)
			}
		})
	}
	t.Run("3.10 access_token in the JSON body is not read", func(t *testing.T) {
		r := env.do("PATCH", "/api/users/1", `{"access_token":"`+a1+`","username":"alice"}`)
		if r.body != authRequired {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("3.15-3.17 an expired token is refused, and anonymous on public endpoints", func(t *testing.T) {
		r := env.do("POST", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1","ttl":1}`)
		exp := r.json(t)["id"].(string)
		if r := env.do("GET", "/api/users/1", "", "Authorization: "+exp); r.status != 200 {
			t.Fatalf("fresh ttl-1 token: %d", r.status)
		}
		env.clock.Advance(1500 * time.Millisecond)
		if r := env.do("GET", "/api/users/1", "", "Authorization: "+exp); r.body != authRequired {
			t.Fatalf("expired token: %d %s", r.status, r.body)
		}
		if r := env.do("POST", "/api/users", `{"email":"frank@example.com","password":"knarf-pw-1"}`, "Authorization: "+exp); r.status != 200 {
			t.Fatalf("public create with an expired token: %d %s", r.status, r.body)
		}
	})
}

// TestAPILogout covers section 4 of loopback3-observed.md.
func TestAPILogout(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("bob@example.com", "bob-pw-1234")
	l1 := env.login("bob@example.com", "bob-pw-1234")
	l2 := env.login("bob@example.com", "bob-pw-1234")
	logoutErr := `{"error":{"statusCode":401,"name":"Error","message":"accessToken is required to logout"}}`
	steps := []struct {
		name       string
		method     string
		path       string
		headers    []string
		wantStatus int
		wantBody   string
	}{
		{"4.3 logout", "POST", "/api/users/logout", []string{"Authorization: " + l1}, 204, ""},
		{"4.4 same token again", "POST", "/api/users/logout", []string{"Authorization: " + l1}, 401, logoutErr},
		{"4.5 logged-out token", "GET", "/api/users/1", []string{"Authorization: " + l1}, 401, authRequired},
		{"4.6 other session still valid", "GET", "/api/users/1", []string{"Authorization: " + l2}, 200, `{"email":"bob@example.com","id":1}`},
		{"4.7 no token", "POST", "/api/users/logout", nil, 401, logoutErr},
		{"4.8 bogus token", "POST", "/api/users/logout", []string{"Authorization: bogus"}, 401, logoutErr},
		{"4.9 GET /logout is findById(\"logout\")", "GET", "/api/users/logout", []string{"Authorization: " + l2}, 401, authRequired},
		{"4.10 logout via ?access_token=", "POST", "/api/users/logout?access_token=" + l2, nil, 204, ""},
		{"after 4.10", "GET", "/api/users/1", []string{"Authorization: " + l2}, 401, authRequired},
	}
	for _, s := range steps {
		r := env.do(s.method, s.path, "", s.headers...)
		if r.status != s.wantStatus || r.body != s.wantBody {
			t.Fatalf("%s: got %d %q, want %d %q", s.name, r.status, r.body, s.wantStatus, s.wantBody)
		}
	}
}

// TestAPIUsersCRUD covers section 5 of loopback3-observed.md.
func TestAPIUsersCRUD(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("alice@example.com", "ecila-pw-1", "username", "alice")
	env.signup("bob@example.com", "bob-pw-1234")
	a1 := env.login("alice@example.com", "ecila-pw-1")
	a2 := env.login("alice@example.com", "ecila-pw-1")
	b1 := env.login("bob@example.com", "bob-pw-1234")
	steps := []struct {
		name       string
		method     string
		path       string
		body       string
		token      string
		wantStatus int
		wantBody   string
	}{
		{"5.1 GET own", "GET", "/api/users/1", "", a1, 200, `{"username":"alice","email":"alice@example.com","id":1}`},
		{"5.2 GET other's", "GET", "/api/users/2", "", a1, 401, authRequired},
		{"5.3 GET missing id", "GET", "/api/users/999", "", a1, 401, authRequired},
		{"id that is not a number", "GET", "/api/users/abc", "", a1, 401, authRequired},
		{"5.4 GET without token", "GET", "/api/users/1", "", "", 401, authRequired},
		{"5.5 find", "GET", "/api/users", "", a1, 401, authRequired},
		{"5.6 count", "GET", "/api/users/count", "", a1, 401, authRequired},
		{"5.7 own accessTokens", "GET", "/api/users/1/accessTokens", "", a1, 401, authRequired},
		{"5.8 other's accessTokens", "GET", "/api/users/2/accessTokens", "", a1, 401, authRequired},
		{"5.9 /users/me", "GET", "/api/users/me", "", a1, 401, authRequired},
		{"exists", "GET", "/api/users/1/exists", "", a1, 401, authRequired},
		{"findOne", "GET", "/api/users/findOne", "", a1, 401, authRequired},
		{"5.10 PATCH own", "PATCH", "/api/users/1", `{"username":"alice2","nickname":"al"}`, a1, 200,
			`{"username":"alice2","email":"alice@example.com","id":1,"nickname":"al"}`},
		{"5.11 PATCH other", "PATCH", "/api/users/2", `{"username":"evil"}`, a1, 401, authRequired},
		{"5.12 PATCH without token", "PATCH", "/api/users/1", `{"username":"evil"}`, "", 401, authRequired},
		{"5.13 PATCH emailVerified is refused", "PATCH", "/api/users/1", `{"emailVerified":true}`, a1, 422,
			`{"error":{"statusCode":422,"name":"ValidationError","message":"The ` + "`User`" + ` instance is not valid. Details: ` + "`emailVerified`" + ` can't be set: use verify and confirm (value: true).","details":{"context":"User","codes":{"emailVerified":["readonly"]},"messages":{"emailVerified":["can't be set: use verify and confirm"]}}}}`},
		{"5.14 PUT own without password", "PUT", "/api/users/1", `{"email":"alice@example.com"}`, a1, 422,
			`{"error":{"statusCode":422,"name":"ValidationError","message":"The ` + "`User`" + ` instance is not valid. Details: ` + "`password`" + ` can't be blank (value: undefined).","details":{"context":"User","codes":{"password":["presence"]},"messages":{"password":["can't be blank"]}}}}`},
		{"5.15 PATCH password is refused", "PATCH", "/api/users/1", `{"password":"ecila-pw-2"}`, a1, 422,
			`{"error":{"statusCode":422,"name":"ValidationError","message":"The ` + "`User`" + ` instance is not valid. Details: ` + "`password`" + ` can't be changed here: use change-password (value: [hidden]).","details":{"context":"User","codes":{"password":["readonly"]},"messages":{"password":["can't be changed here: use change-password"]}}}}`},
		{"PATCH to a taken email", "PATCH", "/api/users/1", `{"email":"BOB@example.com"}`, a1, 422,
			`{"error":{"statusCode":422,"name":"ValidationError","message":"The ` + "`User`" + ` instance is not valid. Details: ` + "`email`" + ` Email already exists (value: \"BOB@example.com\").","details":{"context":"User","codes":{"email":["uniqueness"]},"messages":{"email":["Email already exists"]}}}}`},
		{"PATCH malformed JSON", "PATCH", "/api/users/1", `{"email":`, a1, 400,
			`{"error":{"statusCode":400,"name":"SyntaxError","message":"Unexpected end of JSON input"}}`},
		{"a2 still valid before the email change", "GET", "/api/users/1", "", a2, 200,
			`{"username":"alice2","email":"alice@example.com","id":1,"nickname":"al"}`},
		{"5.19 PATCH own email", "PATCH", "/api/users/1", `{"email":"alice2@example.com"}`, a1, 200,
			`{"username":"alice2","email":"alice2@example.com","id":1,"nickname":"al"}`},
		{"5.20 other token revoked by the email change", "GET", "/api/users/1", "", a2, 401, authRequired},
		{"5.21 the token used for the change stays", "GET", "/api/users/1", "", a1, 200,
			`{"username":"alice2","email":"alice2@example.com","id":1,"nickname":"al"}`},
		{"5.23 DELETE other", "DELETE", "/api/users/1", "", b1, 401, authRequired},
		{"5.24 DELETE own", "DELETE", "/api/users/2", "", b1, 200, `{"count":1}`},
		{"5.25 token of deleted user", "GET", "/api/users/2", "", b1, 401, authRequired},
		{"5.26 login of deleted user", "POST", "/api/users/login", `{"email":"bob@example.com","password":"bob-pw-1234"}`, "", 401, loginFailed},
	}
	for _, s := range steps {
		var headers []string
		if s.token != "" {
			headers = append(headers, "Authorization: "+s.token)
		}
		r := env.do(s.method, s.path, s.body, headers...)
		if r.status != s.wantStatus || r.body != s.wantBody {
			t.Fatalf("%s: got %d %s\nwant %d %s", s.name, r.status, r.body, s.wantStatus, s.wantBody)
		}
	}
}

// TestAPIChangePassword covers section 6 of loopback3-observed.md.
func TestAPIChangePassword(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("bob@example.com", "bob-pw-1234")
	b2 := env.login("bob@example.com", "bob-pw-1234")
	b3 := env.login("bob@example.com", "bob-pw-1234")
	required := func(arg string) string {
		return `{"error":{"statusCode":400,"name":"Error","message":"` + arg + ` is a required argument"}}`
	}
	steps := []struct {
		name       string
		path, body string
		token      string
		form       bool
		wantStatus int
		wantBody   string
	}{
		{"6.3 no token", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":"bob-pw-2345"}`, "", false, 401, authRequired},
		{"6.4 wrong oldPassword", "/api/users/change-password", `{"oldPassword":"nope","newPassword":"bob-pw-2345"}`, b2, false, 400,
			lbErr(400, "Error", "Invalid current password", "INVALID_PASSWORD")},
		{"6.5 missing oldPassword", "/api/users/change-password", `{"newPassword":"bob-pw-2345"}`, b2, false, 400, required("oldPassword")},
		{"6.6 missing newPassword", "/api/users/change-password", `{"oldPassword":"bob-pw-1234"}`, b2, false, 400, required("newPassword")},
		{"6.7 empty newPassword", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":""}`, b2, false, 400, required("newPassword")},
		{"6.8 numeric newPassword", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":12345}`, b2, false, 400,
			`{"error":{"statusCode":400,"name":"Error","message":"Value is not a string."}}`},
		{"6.9 73-byte newPassword", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":"` + strings.Repeat("a", 73) + `"}`, b2, false, 422,
			lbErr(422, "Error", "The password entered was too long. Max length is 72 (entered 73)", "PASSWORD_TOO_LONG")},
		{"short newPassword", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":"short"}`, b2, false, 422,
			lbErr(422, "Error", "The password entered was too short. Min length is 8 (entered 5)", "PASSWORD_TOO_SHORT")},
		{"6.10 passwords in the query string are not read", "/api/users/change-password?oldPassword=bob-pw-1234&newPassword=bob-pw-2345", "", b2, false, 400, required("oldPassword")},
		{"6.11 ok", "/api/users/change-password", `{"oldPassword":"bob-pw-1234","newPassword":"bob-pw-2345"}`, b2, false, 204, ""},
		{"6.15 form-urlencoded", "/api/users/change-password", `oldPassword=bob-pw-2345&newPassword=bob-pw-3456`, b2, true, 204, ""},
	}
	for _, s := range steps {
		headers := []string{}
		if s.token != "" {
			headers = append(headers, "Authorization: "+s.token)
		}
		if s.form {
			headers = append(headers, "Content-Type: application/x-www-form-urlencoded")
		}
		r := env.do("POST", s.path, s.body, headers...)
		if r.status != s.wantStatus || r.body != s.wantBody {
			t.Fatalf("%s: got %d %s\nwant %d %s", s.name, r.status, r.body, s.wantStatus, s.wantBody)
		}
	}
	if r := env.do("GET", "/api/users/1", "", "Authorization: "+b2); r.status != 200 {
		t.Errorf("6.12 token used for the change: %d", r.status)
	}
	if r := env.do("GET", "/api/users/1", "", "Authorization: "+b3); r.body != authRequired {
		t.Errorf("6.13 other token: %d %s", r.status, r.body)
	}
	if r := env.do("POST", "/api/users/login", `{"email":"bob@example.com","password":"bob-pw-1234"}`); r.body != loginFailed {
		t.Errorf("6.14 old password: %d %s", r.status, r.body)
	}
	env.login("bob@example.com", "bob-pw-3456")
}

// TestAPIRoutingAndHeaders covers section 9 and the headers of API.md.
func TestAPIRoutingAndHeaders(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
	}{
		{"GET", "/api/nope", 404, `{"error":{"statusCode":404,"name":"Error","message":"There is no method to handle GET /nope"}}`},
		{"POST", "/api/users/nope", 404, `{"error":{"statusCode":404,"name":"Error","message":"Shared class \"User\" has no method handling POST /nope"}}`},
		{"POST", "/api/users/1", 404, `{"error":{"statusCode":404,"name":"Error","message":"Shared class \"User\" has no method handling POST /1"}}`},
		{"GET", "/api/users/2/verify", 404, `{"error":{"statusCode":404,"name":"Error","message":"Shared class \"User\" has no method handling GET /2/verify"}}`},
	}
	for _, tt := range tests {
		r := env.offSpec().do(tt.method, tt.path, "") // no such routes, on purpose
		if r.status != tt.wantStatus || r.body != tt.wantBody {
			t.Errorf("%s %s: got %d %s", tt.method, tt.path, r.status, r.body)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Content-Type": "application/json; charset=utf-8"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.path, k, got, v)
			}
		}
		if r.header.Get("X-Powered-By") != "" {
			t.Errorf("X-Powered-By sent")
		}
	}
	t.Run("body over 1 MiB is 413", func(t *testing.T) {
		big := `{"email":"` + strings.Repeat("a", 2<<20) + `"}`
		r := env.do("POST", "/api/users/login", big)
		if r.status != 413 || r.body != `{"error":{"statusCode":413,"name":"PayloadTooLargeError","message":"request entity too large"}}` {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("a chunked body over 1 MiB to create is 413, not a truncated parse", func(t *testing.T) {
		big := `{"email":"` + strings.Repeat("a", 2<<20) + `"}`
		req := httptest.NewRequest("POST", "/api/users", strings.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1 // as Transfer-Encoding: chunked
		rec := httptest.NewRecorder()
		env.e.ServeHTTP(rec, req)
		if rec.Code != 413 {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	})
	t.Run("an object of more than 1000 fields is refused at once", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"email":"many@example.com","password":"many-fields-1"`)
		for i := 0; i < 90000; i++ {
			fmt.Fprintf(&b, `,"k%d":1`, i)
		}
		b.WriteString("}")
		r := env.do("POST", "/api/users/login", b.String())
		if r.status != 400 || r.body != lbErr(400, "Error", "The request body has more than 1000 fields", "INVALID_BODY") {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("C4 no CORS for an origin not on the allow-list", func(t *testing.T) {
		r := env.do("OPTIONS", "/api/users/login", "", "Origin: https://evil.test", "Access-Control-Request-Method: POST")
		if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("CORS headers sent: %v", r.header)
		}
	})
}

// TestAPICORSAllowList: an allowed origin gets CORS, without credentials.
func TestAPICORSAllowList(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(_ *models.Config, o *handlers.Options) { o.CORSOrigins = []string{"https://app.example.com"} })
	r := env.do("OPTIONS", "/api/users/login", "", "Origin: https://app.example.com", "Access-Control-Request-Method: POST")
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed origin: %d %v", r.status, r.header)
	}
	r = env.do("OPTIONS", "/api/users/login", "", "Origin: https://evil.test", "Access-Control-Request-Method: POST")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("evil origin allowed: %v", r.header)
	}
}

// TestAPIHealth: /healthz answers when the database does.
func TestAPIHealth(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	if r := env.do("GET", "/healthz", ""); r.status != 200 || r.body != `{"status":"ok"}` {
		t.Fatalf("%d %s", r.status, r.body)
	}
	env.db.Close()
	if r := env.do("GET", "/healthz", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("closed database: %d %s", r.status, r.body)
	}
}

// TestAPIAuditRows: login ok/failed, logout and password change leave audit
// rows, and none holds a secret.
func TestAPIAuditRows(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	env.signup("alice@example.com", "ecila-pw-1")
	tok := env.login("alice@example.com", "ecila-pw-1")
	env.do("POST", "/api/users/login", `{"email":"alice@example.com","password":"wrong-secret"}`)
	env.do("POST", "/api/users/change-password", `{"oldPassword":"ecila-pw-1","newPassword":"ecila-pw-2"}`, "Authorization: "+tok)
	env.do("POST", "/api/users/logout", "", "Authorization: "+tok)
	rows, err := env.db.Query(context.Background(), `SELECT kind, coalesce(user_id, 0), ip, user_agent, detail FROM audit_events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var kinds []string
	for rows.Next() {
		var kind, ip, ua, detail string
		var uid int64
		if err := rows.Scan(&kind, &uid, &ip, &ua, &detail); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, kind)
		all := kind + ip + ua + detail
		for _, secret := range []string{"ecila-pw-1", "wrong-secret", "ecila-pw-2", tok} {
			if strings.Contains(all, secret) {
				t.Errorf("audit row %s holds a secret", kind)
			}
		}
		if ip != "192.0.2.1" || uid != 1 {
			t.Errorf("audit row %s: ip %q user %d", kind, ip, uid)
		}
	}
	got := strings.Join(kinds, ",")
	if got != "user.created,login.ok,login.failed,password.changed,logout" {
		t.Fatalf("audit kinds %s", got)
	}
}

// TestRedactQuery: tokens never reach the access log.
func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"access_token=abc":                     "access_token=[REDACTED]",
		"include=user&access_token=ab":         "include=user&access_token=[REDACTED]",
		"ACCESS_TOKEN=x&a=b":                   "ACCESS_TOKEN=[REDACTED]&a=b",
		"uid=2&token=abc&redirect=%2F":         "uid=2&token=[REDACTED]&redirect=%2F",
		"access%5Ftoken=x":                     "access%5Ftoken=[REDACTED]",
		"x=1;access_token=secret":              "x=1&access_token=[REDACTED]",
		"code=4/0AX-abc&state=s1&scope=openid": "code=[REDACTED]&state=[REDACTED]&scope=openid",
	} {
		if got := handlers.RedactQuery(in); got != want {
			t.Errorf("RedactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTokenFromAuthorization(t *testing.T) {
	tok := models.NewTokenID()
	b64 := base64.StdEncoding.EncodeToString([]byte(tok))
	for in, want := range map[string]string{
		tok:             tok,
		"Bearer " + tok: tok,
		"Bearer " + b64: tok,
		"Basic " + base64.StdEncoding.EncodeToString([]byte(tok+":")):  tok,
		"Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+tok)): tok,
		"bogus": "bogus",
	} {
		if got := handlers.TokenFromAuthorization(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
