package models

import (
	"context"
	"errors"
)

// What the metrics observe, as plain values and counters: models knows
// nothing of Prometheus; boot reads these at scrape time (the cache and
// queue counts) or hears them (Config.OnLogin) and feeds its collectors.

// LoginStep is the step of a login whose outcome Config.OnLogin hears.
type LoginStep uint8

const (
	StepPassword LoginStep = iota // Login: an email or username and a password
	StepSecond                    // CompleteMFA: the code of a two-step login
)

func (s LoginStep) String() string {
	if s == StepSecond {
		return "second"
	}
	return "password"
}

// LoginResult is how a login step ended.
type LoginResult uint8

const (
	// LoginSuccess: the password (or the code) was right. For an account
	// with a second factor the password step succeeds when it starts the
	// second step, which then has an outcome of its own.
	LoginSuccess LoginResult = iota
	// LoginFailure: wrong credentials (ErrLoginFailed; for a second step
	// ErrMFACode, or ErrMFAInvalid: an unknown or expired step).
	LoginFailure
	// LoginThrottled: refused by the limiter before anything was tried
	// (ErrThrottled, 429).
	LoginThrottled
)

func (r LoginResult) String() string {
	switch r {
	case LoginFailure:
		return "failure"
	case LoginThrottled:
		return "throttled"
	}
	return "success"
}

// loginResult classifies a login step's error. Anything else (a malformed
// request, an invalid ttl, the hashing queue full, a database error, a
// cancelled request) is no outcome of the credentials and is not counted:
// such answers show in the request metrics as 4xx or 5xx.
func loginResult(err error) (LoginResult, bool) {
	var second *MFARequiredError
	switch {
	case err == nil, errors.As(err, &second):
		return LoginSuccess, true
	case errors.Is(err, ErrThrottled):
		return LoginThrottled, true
	case errors.Is(err, ErrLoginFailed), errors.Is(err, ErrMFACode), errors.Is(err, ErrMFAInvalid):
		return LoginFailure, true
	}
	return 0, false
}

func (s *Users) observeLogin(step LoginStep, err error) {
	if s.cfg.OnLogin == nil {
		return
	}
	if r, ok := loginResult(err); ok {
		s.cfg.OnLogin(step, r)
	}
}

// Login checks credentials and issues a new access token (login.go), and
// tells Config.OnLogin how it ended. Every way to log in with a password
// comes here: the API, the login page and the sign-in after sign-up.
func (s *Users) Login(ctx context.Context, c Credentials, meta ClientMeta) (*AccessToken, *User, error) {
	tok, u, err := s.login(ctx, c, meta)
	s.observeLogin(StepPassword, err)
	return tok, u, err
}

// CompleteMFA finishes a two-step login (mfa.go), and tells Config.OnLogin
// how it ended.
func (s *Users) CompleteMFA(ctx context.Context, mfaToken, code string, meta ClientMeta) (*AccessToken, *User, error) {
	tok, u, err := s.completeMFA(ctx, mfaToken, code, meta)
	s.observeLogin(StepSecond, err)
	return tok, u, err
}

// AuthCacheCounts are the auth cache's lookups since start: hits were
// answered from memory, misses went to the database (the entry was absent
// or stale, or the cache was bypassed). A lookup is a token with its user
// (Authenticate) or a user by id (FindUserByID). Both stay 0 when the
// cache is off (LATCHKEY_AUTH_CACHE=0).
func (s *Users) AuthCacheCounts() (hits, misses uint64) { return s.cache.counts() }

// QueueDepth is how many hashes are waiting for a worker right now (at
// most HashConfig.Queue; one more gets ErrHashingBusy).
func (h *Hasher) QueueDepth() int64 { return h.waiting.Load() }
