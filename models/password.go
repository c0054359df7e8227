package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/latchkey/latchkey/models/blocklist"
)

// Password hashing algorithms.
const (
	AlgBcrypt   = "bcrypt"
	AlgArgon2id = "argon2id"
)

// bcryptMaxBytes is bcrypt's input limit; LoopBack refuses longer passwords
// with 422 PASSWORD_TOO_LONG, and so do we (never truncate).
const bcryptMaxBytes = 72

// argon2MaxChars is the limit when argon2id is configured.
const argon2MaxChars = 256

// argon2id parameters: OWASP's minimum (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// Policy is the rules a password must meet to be set (sign-up, change,
// reset): its length, not a common password, not the account's own words.
// It is apart from the Hasher, which only hashes and verifies; the one rule
// they share, the longest password, is the hash algorithm's input limit.
type Policy struct {
	MinLength int // minimum length in characters (code points); 0: any non-empty password

	// The zero value is the secure one: both checks on.
	NoBlocklist    bool // allow common passwords (LATCHKEY_PASSWORD_BLOCKLIST=off)
	NoContextCheck bool // allow the email, username and product name (LATCHKEY_PASSWORD_CONTEXT_CHECK=off)
}

// HashConfig configures hashing.
type HashConfig struct {
	Algorithm  string // AlgBcrypt (default) or AlgArgon2id
	BcryptCost int    // default 10, LoopBack's
	Workers    int    // hashes computed at once; default GOMAXPROCS
	Queue      int    // hashes allowed to wait for a worker before ErrHashingBusy; default 64
}

// ProductName is the site's name, refused inside passwords (SECURITY P7).
const ProductName = "latchkey"

// minContextWord is the shortest email local part or username that a
// password may not contain: shorter ones ("bob", "al") would refuse too many
// unrelated passwords by chance.
const minContextWord = 4

// PasswordContext is what a password may not contain (SECURITY P7): the
// account's email and username, as the request gives them (sign-up) or as
// stored (change, reset). Empty fields are ignored.
type PasswordContext struct {
	Email    string
	Username string
}

// words are the context words to look for, in blocklist.Key form.
func (pc PasswordContext) words() []string {
	words := []string{ProductName}
	add := func(w string) {
		if w = blocklist.Key(strings.TrimSpace(w)); utf8.RuneCountInString(w) >= minContextWord {
			words = append(words, w)
		}
	}
	if i := strings.LastIndexByte(pc.Email, '@'); i > 0 {
		local := pc.Email[:i]
		add(local)
		if tag := strings.IndexByte(local, '+'); tag > 0 {
			add(local[:tag]) // alice+shop@example.com: "alice" too
		}
	} else {
		add(pc.Email)
	}
	add(pc.Username)
	return words
}

// Hasher computes and verifies hashes on a bounded pool, so a login storm
// queues instead of exhausting CPU and memory, and tells which stored hashes
// are due an upgrade.
type Hasher struct {
	cfg     HashConfig
	sem     chan struct{}
	waiting atomic.Int64

	dummyOnce sync.Once
	dummy     string // a hash of a random password, verified for unknown users
}

// NewHasher returns a Hasher, filling in defaults.
func NewHasher(cfg HashConfig) *Hasher {
	if cfg.Algorithm == "" {
		cfg.Algorithm = AlgBcrypt
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 10
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	return &Hasher{cfg: cfg, sem: make(chan struct{}, cfg.Workers)}
}

// Warm computes the dummy hash now (start-up calls it in the background) so
// the first login for an unknown user costs the same as every later one.
func (h *Hasher) Warm() { h.dummyHash() }

func (h *Hasher) dummyHash() string {
	h.dummyOnce.Do(func() {
		var b [16]byte
		_, _ = rand.Read(b[:])
		hash, err := h.hashRaw(base64.RawStdEncoding.EncodeToString(b[:]))
		if err != nil {
			panic(fmt.Sprintf("models: dummy hash: %v", err))
		}
		h.dummy = hash
	})
	return h.dummy
}

// Normalize is the form of a password that new hashes are made over (NFKC),
// so the same passphrase typed on another keyboard still matches.
func Normalize(pw string) string { return norm.NFKC.String(pw) }

// Check enforces the rules for a password about to be set and hashed by h,
// in this order: not empty, not longer than h's algorithm takes (never
// truncated), at least MinLength characters (all three CheckLength); then
// not a common password (P6, 422 PASSWORD_BREACHED) and not containing the
// account's email local part, username or the product name (P7, 422
// PASSWORD_CONTEXT). Both compare the NFKC form, ignoring case. No
// composition rules.
func (p Policy) Check(pw string, pc PasswordContext, h *Hasher) error {
	if err := p.CheckLength(pw, h); err != nil {
		return err
	}
	if !p.NoBlocklist && blocklist.Contains(pw) {
		return ErrPasswordCommon
	}
	if !p.NoContextCheck {
		key := blocklist.Key(pw)
		for _, w := range pc.words() {
			if strings.Contains(key, w) {
				return ErrPasswordContxt
			}
		}
	}
	return nil
}

// CheckLength is LoopBack's validatePassword plus our minimum: not empty,
// not longer than h's algorithm takes, at least MinLength characters. On
// its own it is for a password that is only validated, never stored (the
// one LoopBack accepts alongside a reset request).
func (p Policy) CheckLength(pw string, h *Hasher) error {
	if pw == "" {
		return ErrEmptyPassword
	}
	n := Normalize(pw)
	if err := h.checkInput(pw, n); err != nil {
		return err
	}
	if c := utf8.RuneCountInString(n); c < p.MinLength {
		return &Error{Kind: KindUnprocessable, Code: ErrPasswordTooSht.Code,
			Message: fmt.Sprintf("The password entered was too short. Min length is %d (entered %d)", p.MinLength, c)}
	}
	return nil
}

// checkInput refuses a password longer than the algorithm takes, as
// LoopBack's 422 PASSWORD_TOO_LONG (never truncated): bcrypt's 72 bytes, of
// the password as typed or of its NFKC form n, whichever is longer; or
// argon2id's 256 characters of n.
func (h *Hasher) checkInput(pw, n string) error {
	if h.cfg.Algorithm == AlgArgon2id {
		if c := utf8.RuneCountInString(n); c > argon2MaxChars {
			return tooLong(argon2MaxChars, c)
		}
	} else if l := max(len(pw), len(n)); l > bcryptMaxBytes {
		return tooLong(bcryptMaxBytes, l)
	}
	return nil
}

func tooLong(limit, entered int) error {
	return &Error{Kind: KindUnprocessable, Code: ErrPasswordTooLng.Code,
		Message: fmt.Sprintf("The password entered was too long. Max length is %d (entered %d)", limit, entered)}
}

// acquire takes a hashing slot, waiting in a bounded queue.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > int64(h.cfg.Queue) {
		h.waiting.Add(-1)
		return ErrHashingBusy
	}
	defer h.waiting.Add(-1)
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash hashes a password that passed Policy.Check, over its NFKC form.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hashRaw(Normalize(pw))
}

func (h *Hasher) hashRaw(pw string) (string, error) {
	if h.cfg.Algorithm == AlgArgon2id {
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
	}
	b, err := bcrypt.GenerateFromPassword([]byte(pw), h.cfg.BcryptCost)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Verify compares pw with a stored hash. nfkc says whether the hash was made
// over the normalised form (ours) or the raw bytes (imported LoopBack hashes).
// An empty hash verifies against the dummy so the cost is the same.
func (h *Hasher) Verify(ctx context.Context, hash string, nfkc bool, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if hash == "" {
		verifyHash(h.dummyHash(), pw)
		return false, nil
	}
	if nfkc {
		pw = Normalize(pw)
	}
	return verifyHash(hash, pw), nil
}

// VerifyDummy spends the cost of one verification and always fails: used for
// unknown users and missing passwords so timing does not reveal which.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	_, err := h.Verify(ctx, "", false, pw)
	return err
}

func verifyHash(hash, pw string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		return verifyArgon2(hash, pw)
	}
	if len(pw) > bcryptMaxBytes {
		// x/crypto refuses these and no stored hash can match one (a short
		// password can pass 72 bytes once normalised). Spend the hash's
		// cost all the same, so the answer takes as long as for an
		// unknown user and does not tell that the account exists.
		_ = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw[:bcryptMaxBytes]))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

func verifyArgon2(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NeedsRehash reports whether a hash was made with other parameters than the
// configured ones (or over raw bytes), so a successful login upgrades it.
func (h *Hasher) NeedsRehash(hash string, nfkc bool) bool {
	if !nfkc {
		return true
	}
	if h.cfg.Algorithm == AlgArgon2id {
		return !strings.HasPrefix(hash, fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$", argon2.Version, argonMemory, argonTime, argonThreads))
	}
	if !strings.HasPrefix(hash, "$2") {
		return true
	}
	cost, err := bcrypt.Cost([]byte(hash))
	return err != nil || cost != h.cfg.BcryptCost
}
