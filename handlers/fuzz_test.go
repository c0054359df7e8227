package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// Fuzz targets for what the handlers read from a request before any model
// code runs: token transports, bodies, a login's ttl, and the whole login
// handler. Run one with
// `go test -run '^$' -fuzz '^FuzzReadBody$' -fuzztime 15s ./handlers`;
// .ci/run runs every Fuzz* for a fixed time. Without -fuzz the seeds and
// testdata/fuzz/<Name>/ files run as ordinary tests.

const fuzzToken = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01"

// FuzzTokenFromAuthorization: an Authorization header value. Never panics,
// and the token is never longer than the header (base64 only shrinks).
func FuzzTokenFromAuthorization(f *testing.F) {
	b64 := base64.StdEncoding.EncodeToString
	for _, s := range []string{
		"", " ", fuzzToken, "Bearer " + fuzzToken, "bearer " + b64([]byte(fuzzToken)),
		"Bearer " + base64.RawStdEncoding.EncodeToString([]byte(fuzzToken)), "Basic " + b64([]byte(fuzzToken+":")),
		"Basic " + b64([]byte("a:"+fuzzToken)), "Basic " + b64([]byte("nocolon")), "Basic !!!", "Bearer",
		"Bearer  ", "Digest x", "Bearer \x00\xff", "BASIC " + b64([]byte(":")), "Bearer " + b64([]byte("\xff\xfe")),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok := handlers.TokenFromAuthorization(v)
		if len(tok) > len(v) {
			t.Fatalf("TokenFromAuthorization(%q) = %q, longer than its input", v, tok)
		}
	})
}

// FuzzTokenFromRequest: the three LoopBack transports at once (raw query,
// X-Access-Token, Authorization). Never panics; the token is never longer
// than the transport it came from; a well-formed token alone in
// X-Access-Token comes back as is.
func FuzzTokenFromRequest(f *testing.F) {
	f.Add("access_token="+fuzzToken, "", "")
	f.Add("", fuzzToken, "")
	f.Add("", "", "Bearer "+fuzzToken)
	f.Add("access_token=", "x", "y")
	f.Add("access_token=%zz&access_token=a", "", "")
	f.Add("a=1;access_token=b", "", "Basic "+base64.StdEncoding.EncodeToString([]byte(":"+fuzzToken)))
	f.Add("access_token=%00%ff", "\x00", "Bearer \xff")
	f.Add("ACCESS_TOKEN=x", "", "")
	f.Fuzz(func(t *testing.T, rawQuery, xToken, auth string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/users/1", RawQuery: rawQuery}, Header: http.Header{}}
		if xToken != "" {
			r.Header["X-Access-Token"] = []string{xToken}
		}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		tok := handlers.TokenFromRequest(r)
		if limit := max(len(rawQuery), len(xToken), len(auth)); len(tok) > limit {
			t.Fatalf("token %q longer than any transport (query %q, X-Access-Token %q, Authorization %q)", tok, rawQuery, xToken, auth)
		}
		if _, inQuery := r.URL.Query()["access_token"]; !inQuery && xToken == fuzzToken && tok != fuzzToken {
			t.Fatalf("X-Access-Token %q read as %q (query %q)", xToken, tok, rawQuery)
		}
	})
}

// FuzzReadBody: any body with any Content-Type gives either fields that
// marshal to valid JSON or a client error (*handlers.APIError, or Echo's
// 413 from a size limit) with a 4xx status: never a panic, never an error
// the error handler would turn into a 500.
func FuzzReadBody(f *testing.F) {
	for _, s := range [][2]string{
		{"application/json", `{"email":"a@b.co","password":"hunter22"}`},
		{"application/json; charset=utf-8", `{"a":1,"a":2}`},
		{"application/vnd.api+json", `{"x":[1,{"y":null}]}`},
		{"", `{"implicit":"json"}`},
		{"", `[1,2]`},
		{"", `email=a%40b.co&password=x`},
		{"application/x-www-form-urlencoded", "email=a%40b.co&password=hunter22&email=second"},
		{"application/x-www-form-urlencoded", "a=%zz&b=1"},
		{"application/x-www-form-urlencoded", "=&&=x&%00=%ff"},
		{"application/json", `{"a":`},
		{"application/json", `[]`},
		{"application/json", `"str"`},
		{"application/json", "   "},
		{"text/plain", "hello"},
		{"multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{"application/json; charset", `{}`},
		{";;;", `{}`},
		{"application/json", "{\"a\":\"\xff\"}"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/users/login", bytes.NewReader(body))
		req.Header.Set(echo.HeaderContentType, contentType)
		c := e.NewContext(req, httptest.NewRecorder())
		fields, err := handlers.ReadBody(c)
		if err == nil {
			out, merr := fields.MarshalJSON()
			if merr != nil || !json.Valid(out) {
				t.Fatalf("fields from %q (%q) marshal to invalid JSON %q (%v)", body, contentType, out, merr)
			}
			return
		}
		var ae *handlers.APIError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &ae):
			if ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("ReadBody(%q, %q): status %d (%v)", contentType, body, ae.Status, err)
			}
		case errors.As(err, &he):
			if he.Code < 400 || he.Code > 499 {
				t.Fatalf("ReadBody(%q, %q): echo status %d (%v)", contentType, body, he.Code, err)
			}
		default:
			t.Fatalf("ReadBody(%q, %q): %T %v would be a 500", contentType, body, err, err)
		}
	})
}

// FuzzAPILogin drives POST /api/users/login through the real Echo router,
// middleware, error handler and login throttle over a temporary SQLite file
// holding one user (bcrypt cost 4 to keep iterations fast). Whatever the body, content
// type and query: never a 5xx except a 503 with Retry-After, and every
// answer with a body is JSON.
func FuzzAPILogin(f *testing.F) {
	for _, s := range [][3]string{
		{"application/json", `{"email":"fuzz@example.com","password":"correct horse"}`, ""},
		{"application/json", `{"email":"FUZZ@example.com ","password":"correct horse","ttl":60}`, "include=user"},
		{"application/json", `{"username":"fuzzer","password":"correct horse","ttl":"-1"}`, ""},
		{"application/json", `{"email":"fuzz@example.com","password":"wrong"}`, ""},
		{"application/json", `{"email":"nobody@example.com","password":"x"}`, ""},
		{"application/json", `{"email":{"$ne":null},"password":{"$gt":""}}`, ""},
		{"application/json", `{"email":"fuzz@example.com","password":"correct horse","ttl":1e400}`, ""},
		{"application/json", `{"email":"fuzz@example.com","password":"correct horse","ttl":[1]}`, ""},
		{"application/json", `{"email":"","username":""}`, ""},
		{"application/json", `{"email":"a@b.co","password":"` + strings.Repeat("p", 200) + `"}`, ""},
		{"application/x-www-form-urlencoded", "email=fuzz%40example.com&password=correct+horse", ""},
		{"application/json", `[{"email":"fuzz@example.com"}]`, ""},
		{"application/json", `{"email":`, ""},
		{"text/plain", "email=fuzz@example.com", ""},
		{"", "", "access_token=" + fuzzToken},
	} {
		f.Add(s[0], []byte(s[1]), s[2])
	}
	ctx := context.Background()
	db, err := models.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	// The throttle boot installs, with its defaults: it reads the typed
	// identifier and the client IP, both fuzzed here.
	limiter := models.NewLimiter(db, models.DefaultLimitConfig())
	users := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), limiter, models.Config{Password: models.Policy{MinLength: 8}})
	if _, err := users.CreateUser(ctx, models.StringFields("email", "fuzz@example.com", "username", "fuzzer",
		"password", "correct horse"), models.ClientMeta{}); err != nil {
		f.Fatal(err)
	}
	e := echo.New()
	handlers.New(handlers.Options{Users: users, BaseURL: "http://localhost:3000"}).Register(e)

	f.Fuzz(func(t *testing.T, contentType string, body []byte, rawQuery string) {
		target := "/api/users/login"
		req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		req.URL.RawQuery = rawQuery // any bytes, as a raw request line could carry
		// Spread inputs over many client IPs so the per-IP bucket does not
		// answer 429 to everything after the first failures.
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:4321", len(body)%256, len(rawQuery)%256, len(contentType)%256)
		if contentType != "" {
			req.Header.Set(echo.HeaderContentType, contentType)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 && !(rec.Code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") != "") {
			t.Fatalf("POST %s (%q, %q) → %d %s", target, contentType, body, rec.Code, rec.Body.String())
		}
		if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST %s (%q, %q) → %d with a body that is not JSON: %q", target, contentType, body, rec.Code, rec.Body.String())
		}
	})
}

// FuzzParseTTL: the ttl member of a login body, any raw bytes. Never panics;
// the answer is models.ErrInvalidTTL or a value ≥ -1 (-1 is "eternal", for the
// caller to allow or refuse).
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{
		``, `null`, `0`, `60`, `-1`, `-2`, `1.5`, `1e3`, `1e400`, `-1e400`, `"120"`, `" 120 "`,
		`""`, `"abc"`, `"1e3"`, `9223372036854775807`, `9223372036854775808`, `-0`, `true`, `{}`,
		`[60]`, `"\u0031"`, `0x10`, `1_000`, `Inf`, `NaN`, `"-1"`, ` 60 `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := handlers.ParseTTL(json.RawMessage(data))
		if err != nil {
			if !errors.Is(err, models.ErrInvalidTTL) {
				t.Fatalf("ParseTTL(%q): unexpected error %v", data, err)
			}
			if n != 0 {
				t.Fatalf("ParseTTL(%q): error with value %d", data, n)
			}
			return
		}
		if n < -1 {
			t.Fatalf("ParseTTL(%q) = %d, below -1", data, n)
		}
	})
}
