package models

import "context"

// Throttle limits login guessing. BeforeLogin may refuse an attempt (an
// *Error of KindTooMany with RetryAfter); AfterLogin records its outcome.
// key is the normalised identifier tried, whether or not the account exists,
// so a throttled unknown account looks like a throttled real one.
type Throttle interface {
	BeforeLogin(ctx context.Context, key string, meta ClientMeta) error
	AfterLogin(ctx context.Context, key string, meta ClientMeta, ok bool)
}

// SetThrottle installs the login throttle (boot does, before serving).
func (s *Users) SetThrottle(t Throttle) { s.throttle = t }
