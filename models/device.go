package models

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SecretKeyMinLength is the shortest Config.SecretKey accepted
// (LATCHKEY_SECRET_KEY), in bytes.
const SecretKeyMinLength = 32

// keyring holds the server's master key once it is known: Config.SecretKey,
// or the random key kept in server_secrets. Every purpose gets its own key
// derived from it (purposeKey), so no two uses share one.
type keyring struct {
	mu     sync.Mutex
	master []byte
}

// purposeKey is the key of one use of the server's secret ("device
// cookie"): HMAC-SHA256 of the purpose under the master key. Without
// Config.SecretKey the master key is read from the database, or made there
// by the first replica that needs it (INSERT … ON CONFLICT DO NOTHING, then
// read back: every replica ends up with the same one).
func (s *Users) purposeKey(ctx context.Context, purpose string) ([]byte, error) {
	k := &s.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.master == nil {
		if len(s.cfg.SecretKey) > 0 {
			k.master = append([]byte(nil), s.cfg.SecretKey...)
		} else {
			m, err := s.storedMasterKey(ctx)
			if err != nil {
				return nil, err
			}
			k.master = m
		}
	}
	h := hmac.New(sha256.New, k.master)
	h.Write([]byte("latchkey " + purpose))
	return h.Sum(nil), nil
}

func (s *Users) storedMasterKey(ctx context.Context) ([]byte, error) {
	var key []byte
	err := s.db.QueryRow(ctx, `SELECT value FROM server_secrets WHERE name = 'master'`).Scan(&key)
	if err == nil && len(key) >= SecretKeyMinLength {
		return key, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("models: reading the server key: %w", err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO server_secrets(name, value, created) VALUES ('master', ?, ?)
			ON CONFLICT(name) DO NOTHING`, fresh, ms(tx.now)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM server_secrets WHERE name = 'master'`).Scan(&key)
	})
	if err != nil {
		return nil, fmt.Errorf("models: making the server key: %w", err)
	}
	return key, nil
}

// Device cookies (OWASP "Slow Down Online Guessing Attacks with Device
// Cookies", SECURITY N1). A browser that signed in to an account gets a
// signed entry for it: "<user id>.<issued, Unix seconds>.<nonce>.<MAC>",
// the MAC an HMAC under the server's device-cookie key. One cookie holds
// the entries of the last few accounts signed in to, newest first.
//
// A password attempt (or a second step) on an account whose valid entry
// the browser sends skips the per-IP bucket and the account's failures:
// it is held to the entry's own counter (same free failures and backoff
// as an account), so one attacker behind a shared address cannot lock out
// the people who signed in from it before, and a stolen or kept entry
// still guesses no faster than an account may be guessed.
const (
	// DeviceCookieTTL is how long an entry counts after the sign-in that made it.
	DeviceCookieTTL = 180 * 24 * time.Hour
	// maxDeviceEntries is how many accounts one browser's cookie remembers.
	maxDeviceEntries = 5
	deviceSep        = "~"
)

type deviceEntry struct {
	userID int64
	issued int64
	nonce  string
	raw    string
}

func (s *Users) deviceMAC(key []byte, userID, issued int64, nonce string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strconv.FormatInt(userID, 10) + "." + strconv.FormatInt(issued, 10) + "." + nonce))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// deviceEntries are the valid, unexpired entries of a device cookie.
func (s *Users) deviceEntries(ctx context.Context, cookie string) []deviceEntry {
	if cookie == "" || len(cookie) > 1024 {
		return nil
	}
	key, err := s.purposeKey(ctx, "device cookie")
	if err != nil {
		return nil // no key, no trust: the attempt is throttled as any other
	}
	now := s.now().Unix()
	var out []deviceEntry
	for _, raw := range strings.Split(cookie, deviceSep) {
		f := strings.Split(raw, ".")
		if len(f) != 4 || len(f[2]) < 16 {
			continue
		}
		uid, err1 := strconv.ParseInt(f[0], 10, 64)
		issued, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || now-issued > int64(DeviceCookieTTL/time.Second) || issued > now+300 {
			continue
		}
		if !hmac.Equal([]byte(f[3]), []byte(s.deviceMAC(key, uid, issued, f[2]))) {
			continue
		}
		out = append(out, deviceEntry{userID: uid, issued: issued, nonce: f[2], raw: raw})
	}
	return out
}

// DeviceCookie is the device cookie's value after this browser signed in
// to userID, its cookie holding prior: a new entry for userID first, then
// the valid entries it had for other accounts, at most five in all.
func (s *Users) DeviceCookie(ctx context.Context, userID int64, prior string) (string, error) {
	key, err := s.purposeKey(ctx, "device cookie")
	if err != nil {
		return "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	nonce, issued := base64.RawURLEncoding.EncodeToString(b[:]), s.now().Unix()
	entries := []string{strconv.FormatInt(userID, 10) + "." + strconv.FormatInt(issued, 10) + "." + nonce + "." +
		s.deviceMAC(key, userID, issued, nonce)}
	for _, e := range s.deviceEntries(ctx, prior) {
		if e.userID != userID && len(entries) < maxDeviceEntries {
			entries = append(entries, e.raw)
		}
	}
	return strings.Join(entries, deviceSep), nil
}

// trustDevice returns meta with its device cookie's entry for userID
// checked: meta.device is then that entry's nonce, which the limiter
// counts this browser's attempts on that account by (SECURITY N1).
func (s *Users) trustDevice(ctx context.Context, meta ClientMeta, userID int64) ClientMeta {
	meta.device = ""
	if userID == 0 || meta.Device == "" {
		return meta
	}
	for _, e := range s.deviceEntries(ctx, meta.Device) {
		if e.userID == userID {
			meta.device = e.nonce
			break
		}
	}
	return meta
}
