package models

import (
	"errors"
	"fmt"
	"strings"
)

// Kind says what sort of failure an Error is; handlers map it to a status.
type Kind int

const (
	KindInvalid       Kind = iota + 1 // malformed or missing input (400)
	KindUnauthorized                  // no or bad credentials (401)
	KindNotFound                      // (404)
	KindUnprocessable                 // input understood but refused by a rule (422)
	KindTooMany                       // throttled (429)
	KindBusy                          // over capacity, try again (503)
)

// Error is a domain error with LoopBack's error code ("LOGIN_FAILED") and a
// message safe to show to the client. Code may be empty: some LoopBack errors
// have none ("accessToken is required to logout").
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	RetryAfter int // seconds, for KindTooMany and KindBusy

	// throttledBy is which counter refused a throttled attempt (account,
	// ip, device, in-flight), for its audit row (ThrottledBy).
	throttledBy string
}

// ThrottledBy is which counter refused an attempt that err throttled:
// "account" (the account's failures), "ip" (the client IP's bucket),
// "device" (a device cookie's own failures), "in-flight" (attempts under
// way held the allowance too long); "" when err is no throttle.
func ThrottledBy(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind == KindTooMany {
		return e.throttledBy
	}
	return ""
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// Is makes errors.Is(err, ErrLoginFailed) match any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code && t.Kind == e.Kind
}

// The sentinel errors. Compare with errors.Is.
var (
	ErrNotFound       = &Error{Kind: KindNotFound, Code: "MODEL_NOT_FOUND", Message: "not found"}
	ErrLoginFailed    = &Error{Kind: KindUnauthorized, Code: "LOGIN_FAILED", Message: "login failed"}
	ErrAuthRequired   = &Error{Kind: KindUnauthorized, Code: "AUTHORIZATION_REQUIRED", Message: "Authorization Required"}
	ErrEmailRequired  = &Error{Kind: KindInvalid, Code: "EMAIL_REQUIRED", Message: "Email is required"}
	ErrEmailNotFound  = &Error{Kind: KindNotFound, Code: "EMAIL_NOT_FOUND", Message: "Email not found"}
	ErrLoginRequired  = &Error{Kind: KindInvalid, Code: "USERNAME_EMAIL_REQUIRED", Message: "username or email is required"}
	ErrInvalidEmail   = &Error{Kind: KindInvalid, Code: "INVALID_EMAIL", Message: "Invalid email"}
	ErrInvalidUser    = &Error{Kind: KindInvalid, Code: "INVALID_USERNAME", Message: "Invalid username"}
	ErrInvalidTTL     = &Error{Kind: KindInvalid, Code: "INVALID_TTL", Message: "ttl must be a whole number of seconds, 0 for the default"}
	ErrWrongPassword  = &Error{Kind: KindInvalid, Code: "INVALID_PASSWORD", Message: "Invalid current password"}
	ErrEmptyPassword  = &Error{Kind: KindUnprocessable, Code: "INVALID_PASSWORD", Message: "Invalid password."}
	ErrInvalidToken   = &Error{Kind: KindInvalid, Code: "INVALID_TOKEN", Message: "Invalid token"}
	ErrUserNotFound   = &Error{Kind: KindNotFound, Code: "USER_NOT_FOUND", Message: "User not found"}
	ErrHashingBusy    = &Error{Kind: KindBusy, Code: "SERVICE_UNAVAILABLE", Message: "Too many logins at once, try again shortly", RetryAfter: 1}
	ErrPasswordTooLng = &Error{Kind: KindUnprocessable, Code: "PASSWORD_TOO_LONG"}
	ErrPasswordTooSht = &Error{Kind: KindUnprocessable, Code: "PASSWORD_TOO_SHORT"}
	ErrPasswordCommon = &Error{Kind: KindUnprocessable, Code: "PASSWORD_BREACHED", Message: "This password is too common: choose another"}
	ErrPasswordContxt = &Error{Kind: KindUnprocessable, Code: "PASSWORD_CONTEXT", Message: "The password must not contain your email, username or the site's name"}
)

// RequiredArg is strong-remoting's 400 for a missing argument ("newPassword is a required argument").
func RequiredArg(name string) *Error {
	return &Error{Kind: KindInvalid, Message: name + " is a required argument"}
}

// ValidationError is LoopBack's 422 "The `User` instance is not valid": a list
// of fields, each with rule codes ("presence", "uniqueness", "custom.email")
// and messages, in the order they were found.
type ValidationError struct {
	Fields []FieldError
}

// FieldError is one failed rule on one field. Value is the offending value as
// LoopBack prints it in the message (`undefined`, `"a@b"`, `77`).
type FieldError struct {
	Field   string
	Code    string
	Message string
	Value   string
}

func (v *ValidationError) Error() string {
	parts := make([]string, 0, len(v.Fields))
	for _, f := range v.Fields {
		parts = append(parts, fmt.Sprintf("`%s` %s (value: %s)", f.Field, f.Message, f.Value))
	}
	return "The `User` instance is not valid. Details: " + strings.Join(parts, "; ") + "."
}

// Add records a failed rule.
func (v *ValidationError) Add(field, code, message, value string) {
	v.Fields = append(v.Fields, FieldError{Field: field, Code: code, Message: message, Value: value})
}

// Err returns v as an error, or nil when nothing failed.
func (v *ValidationError) Err() error {
	if len(v.Fields) == 0 {
		return nil
	}
	return v
}

// AsValidation unwraps a *ValidationError.
func AsValidation(err error) (*ValidationError, bool) {
	var v *ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

// AsError unwraps a *Error.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
