package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/models"
)

// APIError is the strong-error-handler envelope: {"error": {...}}.
type APIError struct {
	Status  int           `json:"statusCode"`
	Name    string        `json:"name,omitempty"`
	Message string        `json:"message"`
	Code    string        `json:"code,omitempty"`
	Details *errorDetails `json:"details,omitempty"`
	// MFAToken and MFAMethods come with MFA_REQUIRED: the password was
	// right, and the token with a code finishes the login.
	MFAToken   string   `json:"mfaToken,omitempty"`
	MFAMethods []string `json:"mfaMethods,omitempty"`
	RetryAfter int      `json:"-"`
}

type errorDetails struct {
	Context  string             `json:"context"`
	Codes    orderedStringLists `json:"codes"`
	Messages orderedStringLists `json:"messages"`
}

// orderedStringLists is a JSON object of string arrays in insertion order.
type orderedStringLists struct {
	keys []string
	vals map[string][]string
}

func (o *orderedStringLists) add(k, v string) {
	if o.vals == nil {
		o.vals = map[string][]string{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = append(o.vals[k], v)
}

func (o orderedStringLists) MarshalJSON() ([]byte, error) {
	f := make(models.Fields, 0, len(o.keys))
	for _, k := range o.keys {
		b, err := jsonMarshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		f = append(f, models.Field{Name: k, Value: b})
	}
	return f.MarshalJSON()
}

func (e *APIError) Error() string { return e.Message }

// errInternal is what a client sees of any unexpected failure.
var errInternal = &APIError{Status: 500, Message: "Internal Server Error"}

// errUnavailable is what a client sees while the database cannot be reached
// (PostgreSQL down or restarting, a network cut): the request may work in
// a few seconds, and nothing about the cause is shown.
var errUnavailable = &APIError{Status: 503, Name: "Error", Code: "SERVICE_UNAVAILABLE",
	Message: "The service is temporarily unavailable. Try again shortly.", RetryAfter: 5}

// toAPIError maps any error to the envelope and status. Unknown errors are
// 500 with no cause.
func toAPIError(err error, c echo.Context) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var mfa *models.MFARequiredError
	if errors.As(err, &mfa) {
		return &APIError{Status: 401, Name: "Error", Code: "MFA_REQUIRED", MFAToken: mfa.Token, MFAMethods: mfa.Methods,
			Message: "A second factor is required: send mfaToken and a code to POST /api/users/login/mfa"}
	}
	if v, ok := models.AsValidation(err); ok {
		out := &APIError{Status: 422, Name: "ValidationError", Message: v.Error(),
			Details: &errorDetails{Context: "User"}}
		for _, f := range v.Fields {
			out.Details.Codes.add(f.Field, f.Code)
			out.Details.Messages.add(f.Field, f.Message)
		}
		return out
	}
	if me, ok := models.AsError(err); ok {
		return &APIError{Status: kindStatus(me.Kind), Name: "Error", Message: me.Message, Code: me.Code, RetryAfter: me.RetryAfter}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromEchoError(he, c)
	}
	if models.IsUnavailable(err) {
		return errUnavailable
	}
	return errInternal
}

func kindStatus(k models.Kind) int {
	switch k {
	case models.KindInvalid:
		return http.StatusBadRequest
	case models.KindUnauthorized:
		return http.StatusUnauthorized
	case models.KindNotFound:
		return http.StatusNotFound
	case models.KindUnprocessable:
		return http.StatusUnprocessableEntity
	case models.KindTooMany:
		return http.StatusTooManyRequests
	case models.KindBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fromEchoError words Echo's routing and middleware errors as LoopBack does.
func fromEchoError(he *echo.HTTPError, c echo.Context) *APIError {
	r := c.Request()
	path := r.URL.Path
	switch he.Code {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		switch {
		case strings.HasPrefix(path, "/api/users/") || path == "/api/users":
			rest := strings.TrimPrefix(path, "/api/users")
			if rest == "" {
				rest = "/"
			}
			return &APIError{Status: 404, Name: "Error", Message: `Shared class "User" has no method handling ` + r.Method + " " + rest}
		case strings.HasPrefix(path, "/api/") || path == "/api":
			return &APIError{Status: 404, Name: "Error", Message: "There is no method to handle " + r.Method + " " + strings.TrimPrefix(path, "/api")}
		}
		if he.Code == http.StatusMethodNotAllowed {
			// A page that exists, asked with a method it does not take:
			// 405, with the Allow header Echo's router set (pages only;
			// the API answers as LoopBack did, above).
			return &APIError{Status: 405, Name: "Error", Message: "Method Not Allowed"}
		}
		return &APIError{Status: 404, Name: "Error", Message: "Cannot " + r.Method + " " + path}
	case http.StatusRequestEntityTooLarge:
		return &APIError{Status: 413, Name: "PayloadTooLargeError", Message: "request entity too large"}
	}
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && he.Code < 500 {
		msg = s
	}
	if he.Code >= 500 {
		return &APIError{Status: he.Code, Message: msg}
	}
	return &APIError{Status: he.Code, Name: "Error", Message: msg}
}

// isAPI reports whether a path belongs to the JSON API.
func isAPI(path string) bool { return path == "/api" || strings.HasPrefix(path, "/api/") }

// HandleError is Echo's HTTPErrorHandler: the one place errors become
// responses. /api gets the JSON envelope; pages get the HTML error page.
// A 5xx is logged with its cause, which never reaches the client.
func (h *Handler) HandleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody is left to answer.
		c.Response().WriteHeader(499)
		return
	}
	ae := toAPIError(err, c)
	switch {
	case ae == errUnavailable:
		h.reqLog(c).Warn("database unavailable", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	case ae.Status >= 500 && ae.RetryAfter == 0:
		h.reqLog(c).Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", ae.Status, "err", err)
	}
	if ae.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	var werr error
	if isAPI(c.Request().URL.Path) {
		// LoopBack's 404 for a method it has no route for carries no
		// Allow header; the request id stays in its header, never in the
		// body (the envelope is LoopBack's, byte for byte). HEAD gets the
		// same headers; dropHeadBody drops the body.
		c.Response().Header().Del(echo.HeaderAllow)
		werr = writeJSON(c, ae.Status, struct {
			Error *APIError `json:"error"`
		}{ae})
	} else {
		werr = h.renderErrorPage(c, ae.Status)
	}
	if werr != nil {
		h.reqLog(c).Error("writing error response", "err", werr)
	}
}
