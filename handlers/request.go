package handlers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// TokenFromRequest finds the access token the way LoopBack does: the
// access_token query parameter, then X-Access-Token, then Authorization. The
// first transport present wins, valid or not. Authorization may be the bare
// token, "Bearer base64(token)" (LoopBack), "Bearer token" (RFC 6750) or
// "Basic base64(token:)". Cookies are never read: they must not
// authenticate the JSON API.
func TokenFromRequest(r *http.Request) string {
	if r.URL.RawQuery != "" { // most API calls have no query: skip parsing one
		if vs, ok := r.URL.Query()["access_token"]; ok && len(vs) > 0 {
			return vs[0]
		}
	}
	if v, ok := r.Header["X-Access-Token"]; ok && len(v) > 0 {
		return v[0]
	}
	if v := r.Header.Get("Authorization"); v != "" {
		return TokenFromAuthorization(v)
	}
	return ""
}

// TokenFromAuthorization reads a token from an Authorization header value.
func TokenFromAuthorization(v string) string {
	v = strings.TrimSpace(v)
	scheme, rest, found := strings.Cut(v, " ")
	if !found {
		return v
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "bearer":
		if models.ValidTokenShape(rest) {
			return rest
		}
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
		if b, err := base64.RawStdEncoding.DecodeString(rest); err == nil {
			return string(b)
		}
		return rest
	case "basic":
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return rest
		}
		user, pass, ok := strings.Cut(string(b), ":")
		if !ok {
			return string(b)
		}
		// LoopBack: "a:b" -> the longer part is the token.
		if len(pass) > len(user) {
			return pass
		}
		return user
	}
	return v
}

// ReadBody parses a request body into ordered fields: JSON objects, or
// application/x-www-form-urlencoded (values become strings). An empty body
// is an empty object. Other content types are 415; malformed JSON is 400
// SyntaxError as LoopBack's body parser answers.
func ReadBody(c echo.Context) (models.Fields, error) {
	r := c.Request()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, echo.ErrStatusRequestEntityTooLarge
		}
		return nil, err
	}
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, _ := mime.ParseMediaType(ct)
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &APIError{Status: 400, Name: "BadRequestError", Message: "Malformed form body"}
		}
		return formFields(string(body), q), nil
	case mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "" && looksJSON(body):
		f, err := models.ParseObject(body)
		if errors.Is(err, models.ErrArray) {
			return nil, errArrayBody
		}
		if errors.Is(err, models.ErrNotObject) {
			return nil, errNotObjectBody
		}
		if errors.Is(err, models.ErrTooManyMembers) {
			return nil, &APIError{Status: 400, Name: "Error", Code: "INVALID_BODY",
				Message: "The request body has more than " + itoa(models.MaxMembers) + " fields"}
		}
		if err != nil {
			return nil, jsonSyntaxError(err)
		}
		return f, nil
	}
	if ct == "" {
		ct = "(none)"
	}
	return nil, &APIError{Status: http.StatusUnsupportedMediaType, Name: "Error", Code: "UNSUPPORTED_MEDIA_TYPE",
		Message: "Unsupported Content-Type " + ct + ": send application/json or application/x-www-form-urlencoded"}
}

// The answers for a JSON body that is not an object; an array gets its own
// so create can word it as LoopBack's bulk create.
var (
	errNotObjectBody = &APIError{Status: 400, Name: "Error", Code: "INVALID_BODY", Message: "The request body must be a JSON object"}
	errArrayBody     = &APIError{Status: 400, Name: "Error", Code: "INVALID_BODY", Message: "The request body must be a JSON object"}
)

func looksJSON(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[")
}

// formFields keeps the order in which the form's names first appear.
func formFields(raw string, q url.Values) models.Fields {
	var kv []string
	seen := map[string]bool{}
	for _, part := range strings.Split(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(name)
		if err != nil || name == "" || seen[name] {
			continue
		}
		seen[name] = true
		kv = append(kv, name, q.Get(name))
	}
	return models.StringFields(kv...)
}

var jsonOffset = regexp.MustCompile(`offset (\d+)`)

// jsonSyntaxError words a decoding error as Node's JSON.parse does.
func jsonSyntaxError(err error) error {
	msg := "Unexpected token in JSON"
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		msg = "Unexpected end of JSON input"
	case errors.As(err, &se):
		msg = "Unexpected token in JSON at position " + itoa(se.Offset)
	default:
		if m := jsonOffset.FindStringSubmatch(err.Error()); m != nil {
			msg += " at position " + m[1]
		}
	}
	return &APIError{Status: 400, Name: "SyntaxError", Message: msg}
}

// stringArg reads a string argument as strong-remoting does: absent → "",
// false; present but not a string → a 400 "Value is not a string.".
func stringArg(f models.Fields, name string) (string, bool, error) {
	s, present, ok := f.String(name)
	if present && !ok {
		return "", true, &APIError{Status: 400, Name: "Error", Message: "Value is not a string."}
	}
	return s, present, nil
}

// clientMeta is where the request came from, for audit rows and sessions,
// with the browser's device cookie, which the limiter checks (SECURITY N1).
func clientMeta(c echo.Context) models.ClientMeta {
	return models.ClientMeta{IP: c.RealIP(), UserAgent: c.Request().UserAgent(), RequestID: requestID(c),
		Device: deviceCookieValue(c)}
}

// deviceCookieValue is the device cookie sent, under either name (with the
// __Host- prefix behind https): its entries are signed, so which one does
// not matter.
func deviceCookieValue(c echo.Context) string {
	for _, name := range []string{"__Host-" + deviceCookie, deviceCookie} {
		if ck, err := c.Cookie(name); err == nil && ck.Value != "" {
			return ck.Value
		}
	}
	return ""
}
