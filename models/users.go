// Package models is Latchkey's domain and its persistence: accounts,
// tokens and sessions, password rules and hashing, throttling, the outbox
// of mail and the audit trail, over one store (SQLite or PostgreSQL behind
// a small dialect seam: store.go, dialect.go). Each file holds one job and
// is named for it. It imports no other package of ours.
package models

import (
	"context"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
)

// Config holds the account rules.
type Config struct {
	TokenTTL            int64  // seconds, default lifetime of a login token (LoopBack: 1209600)
	TokenMaxTTL         int64  // seconds, the cap on a requested ttl (LoopBack: 31556926)
	ResetTTL            int64  // seconds, lifetime of a reset token (LoopBack: 900)
	VerifyTTL           int64  // seconds, lifetime of an email confirmation link
	AllowEternalTokens  bool   // accept ttl -1
	CompatEmailNotFound bool   // reset for an unknown email answers 404 as LoopBack
	Password            Policy // the rules a new password must meet
	Now                 func() time.Time
	CacheSize           int           // tokens and users kept in memory; default 100000
	CacheFresh          time.Duration // how long a cached entry is trusted; default 10s
	TouchEvery          time.Duration // last_used is written at most this often per token; default 1m
	// RecentAuth is how recently a session must have been authenticated
	// (a login, or a re-authentication through a provider) for a sensitive
	// change of an account without a password, which cannot be asked for
	// one (SECURITY O7, S9); default 10 minutes (issue 12).
	RecentAuth time.Duration
	// BaseURL is the public URL (LATCHKEY_BASE_URL): passkeys belong to its
	// host (the WebAuthn RP ID) and are accepted from its origin only. ""
	// turns passkeys off.
	BaseURL string
	// OnLogin, when set, hears the outcome of every login step: a
	// password login (Login) and a second step (CompleteMFA). boot counts
	// them for the metrics (observe.go says which outcomes count).
	OnLogin func(LoginStep, LoginResult)
	// SecretKey signs device cookies (device.go); all replicas need the
	// same one. Empty: a random key kept in the database (server_secrets),
	// made on first use.
	SecretKey []byte
	// IdleTimeout ends a session (ScopeSession) unused for longer
	// (SECURITY S5); 0, the default, never does (LoopBack). last_used is
	// written at most every TouchEvery, so a session ends between
	// IdleTimeout and IdleTimeout+TouchEvery after its last use, never
	// sooner (idleExpired).
	IdleTimeout time.Duration
}

// Users is the account service: the LoopBack User and AccessToken methods
// over the store. Both the JSON API and the pages call it.
type Users struct {
	db     *DB
	hasher *Hasher
	cfg    Config
	cache  *authCache

	onReset   []func(context.Context, *Tx, ResetPasswordRequest) error
	onChanged []func(context.Context, *Tx, PasswordChanged) error
	onVerify  []func(context.Context, *Tx, VerifyEmailRequest) error

	onEmailChanged []func(context.Context, *Tx, EmailChanged) error
	onMethods      []func(context.Context, *Tx, SignInMethodChanged) error
	onEmailChange  []func(context.Context, *Tx, EmailChangeRequested) error
	onDeleted      []func(context.Context, *Tx, AccountDeleted) error
	onAccount      []func(context.Context, *Tx, AccountEvent) error // webhooks (hooks.go)
	limiter        *Limiter                                         // nil: nothing is throttled

	// rp is the WebAuthn relying party of cfg.BaseURL; rpErr why there is
	// none (passkeys off, or a base URL no browser accepts as an RP ID).
	rp    *webauthn.WebAuthn
	rpErr error
	keys  keyring // the server's secret, once known (device.go)
}

// NewUsers returns the account service, filling in LoopBack's defaults.
// limiter throttles logins and reset and verification mail; nil throttles
// nothing.
func NewUsers(db *DB, hasher *Hasher, limiter *Limiter, cfg Config) *Users {
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 1209600
	}
	if cfg.TokenMaxTTL == 0 {
		cfg.TokenMaxTTL = 31556926
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = 900
	}
	if cfg.VerifyTTL == 0 {
		cfg.VerifyTTL = 86400
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 100000
	}
	if cfg.CacheFresh == 0 {
		cfg.CacheFresh = 10 * time.Second
	}
	if cfg.TouchEvery == 0 {
		cfg.TouchEvery = time.Minute
	}
	if cfg.RecentAuth == 0 {
		cfg.RecentAuth = 10 * time.Minute
	}
	s := &Users{db: db, hasher: hasher, cfg: cfg, limiter: limiter}
	s.rp, s.rpErr = newRelyingParty(cfg.BaseURL)
	if cfg.CacheSize > 0 {
		s.cache = newAuthCache(cfg.CacheSize, cfg.CacheFresh)
		db.watch(s.cache)
	}
	return s
}

func (s *Users) now() time.Time { return s.cfg.Now().UTC() }

// PasswordMinLength is the password policy's minimum length in characters,
// for the forms' hints.
func (s *Users) PasswordMinLength() int { return s.cfg.Password.MinLength }

// ResetTTL is the lifetime of a reset token, in seconds.
func (s *Users) ResetTTL() int64 { return s.cfg.ResetTTL }

// RecentAuth is how long after a sign-in (or a re-authentication) an
// account without a password may make sensitive changes.
func (s *Users) RecentAuth() time.Duration { return s.cfg.RecentAuth }

// VerifyTTL is the lifetime of an email confirmation link, in seconds.
func (s *Users) VerifyTTL() int64 { return s.cfg.VerifyTTL }

// CheckPasswordPolicy checks a password about to be set against the rules
// every way of setting one applies (sign-up, change, reset), with what the
// account's password may not contain. The forms call it before anything
// else, so a refused password shows beside its field with the others.
func (s *Users) CheckPasswordPolicy(pw string, pc PasswordContext) error {
	return s.cfg.Password.Check(pw, pc, s.hasher)
}

// CheckPasswordLength checks only the length rules: for a password that is
// validated but never stored (the one LoopBack accepts alongside a reset
// request).
func (s *Users) CheckPasswordLength(pw string) error { return s.cfg.Password.CheckLength(pw, s.hasher) }
