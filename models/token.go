package models

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// TokenLength is LoopBack's access-token id length (uid2, 64 characters).
const TokenLength = 64

// Token scopes. A browser session and an API login are both ScopeSession.
const (
	ScopeSession = ""
	ScopeReset   = "reset-password"
)

const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewTokenID returns 64 characters of base62 from crypto/rand (about 381
// bits), with rejection sampling so every character is equally likely.
func NewTokenID() string {
	out := make([]byte, 0, TokenLength)
	var buf [96]byte
	for len(out) < TokenLength {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("models: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keep the distribution uniform
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == TokenLength {
				break
			}
		}
	}
	return string(out)
}

// newVerificationToken returns LoopBack's verification token shape: 128 hex
// characters (64 random bytes).
func newVerificationToken() string {
	var b [64]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("models: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Digest is what the database stores for a token: its SHA-256.
func Digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// ValidTokenShape reports whether s could be a token we issued; anything else
// is rejected without a database read.
func ValidTokenShape(s string) bool {
	if len(s) != TokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// AccessToken is a session, API login or reset token. ID is the token itself
// and is only known right after it is created; the database has its digest.
type AccessToken struct {
	ID       string
	Digest   [32]byte
	UserID   int64
	TTL      int64 // seconds; -1 eternal
	Created  time.Time
	Expires  time.Time // zero when eternal
	Scopes   string
	LastUsed time.Time
	IP       string
	UA       string
}

// Expired reports whether the token is past its lifetime at now.
func (t *AccessToken) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// DigestHex is the digest as hex, a stable handle for a session that is not the token.
func (t *AccessToken) DigestHex() string { return hex.EncodeToString(t.Digest[:8]) }

// ClientMeta is where a request came from, for audit rows and session lists.
type ClientMeta struct {
	IP        string
	UserAgent string
}
