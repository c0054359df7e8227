// Package lb3store makes real LoopBack 3 stores for tests: it runs the stock
// LB3 app in testdata/lb3 (loopback 3.28.0, its MySQL and PostgreSQL
// connectors and loopback-component-passport, pinned by a lockfile), which
// writes users, tokens, a Passport identity and a case-duplicate email
// through LoopBack's own models, and returns the store's location together
// with the app's description of what it wrote. The importer's tests read
// the store and check against the description; nothing here parses the
// store itself.
//
// Environment:
//
//	LATCHKEY_TEST_MYSQL     base URL, default mysql://root@127.0.0.1:3306/
//	LATCHKEY_TEST_POSTGRES  base URL, default testdb.DefaultPostgres (only its
//	                        server and credentials are used)
//	LATCHKEY_E2E_REQUIRE    "1": fail, rather than skip, without node, npm,
//	                        MariaDB or PostgreSQL
//
// The node_modules folder is shared by every test process on the machine:
// npm ci runs at most once per process, under a file lock, and not at all
// while the lockfile matches the one the folder was installed from.
package lb3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The kinds of store Make writes.
const (
	Memory   = "memory"
	MySQL    = "mysql"
	Postgres = "postgres"
)

// The states a token in the description is in, as LoopBack sees it when
// the store is made.
const (
	// StateLive: in the store and valid by LoopBack's rule (created+ttl in
	// the future, or ttl -1 under allowEternalTokens). Reset-scoped tokens
	// are live too; tell them by Scopes.
	StateLive = "live"
	// StateExpired: still in the store (LoopBack deletes an expired token
	// only when it is next presented) but past created+ttl.
	StateExpired = "expired"
	// StateLoggedOut: User.logout deleted the row; the token is not in the
	// store, and InStore is false.
	StateLoggedOut = "logged-out"
)

// EnvMySQL names the variable holding the MariaDB/MySQL base URL.
const EnvMySQL = "LATCHKEY_TEST_MYSQL"

// DefaultMySQL is the base URL used when LATCHKEY_TEST_MYSQL is unset: the
// local MariaDB's root, which has an empty password over TCP on the
// project's machines (TOOLCHAIN.md).
const DefaultMySQL = "mysql://root@127.0.0.1:3306/"

const (
	// npmTimeout bounds npm ci: about 20 s with a warm npm cache, and more
	// than a minute on a cold one.
	npmTimeout = 10 * time.Minute
	// scriptTimeout bounds one run of make-store.js (about 2-4 s: bcrypt
	// at cost 10 for each user and each login).
	scriptTimeout = 2 * time.Minute
	// lockName and stampName live in testdata/lb3: the lock serialises npm
	// ci between test processes, the stamp records the lockfile's digest.
	lockName  = ".npm-ci.lock"
	stampName = "node_modules/.latchkey-lockfile.sha256"
)

// Fixture is one store Make wrote and what the LB3 app says is in it. The
// fields after Source are decoded from make-store.js's output.
type Fixture struct {
	// Kind is Memory, MySQL or Postgres.
	Kind string `json:"kind"`
	// Source is what `latchkey import lb3` takes: the memory file's path,
	// or a mysql:// or postgres:// URL of the store's database.
	Source string `json:"source"`

	// Versions of node, loopback, the juggler, the connector and passport.
	Versions map[string]string `json:"versions"`
	// Models names the app's models: user ("user", based on the built-in
	// "User", which stays empty), token ("AccessToken"), identity
	// ("UserIdentity"), credential ("UserCredential"), role, roleMapping.
	Models map[string]string `json:"models"`
	// Settings are the user model's settings that are not in the data.
	Settings Settings `json:"settings"`

	Users       []User        `json:"users"`
	Tokens      []Token       `json:"tokens"`
	Identities  []Identity    `json:"identities"`
	Credentials []Identity    `json:"credentials"`
	Duplicates  []Duplicate   `json:"duplicates"`
	Roles       []RoleMapping `json:"roles"`
	// Notes say where the store departs from the usual, e.g. how the case
	// duplicate got into a case-insensitive MariaDB.
	Notes []string `json:"notes"`
	// Counts are rows per model, counted through LoopBack after writing.
	Counts map[string]int `json:"counts"`
}

// Settings are the custom user model's settings (common/models/user.json
// merged over the built-in User's).
type Settings struct {
	CaseSensitiveEmail              bool   `json:"caseSensitiveEmail"`
	AllowEternalTokens              bool   `json:"allowEternalTokens"`
	RestrictResetPasswordTokenScope bool   `json:"restrictResetPasswordTokenScope"`
	RealmRequired                   bool   `json:"realmRequired"`
	RealmDelimiter                  string `json:"realmDelimiter"`
	TTL                             int64  `json:"ttl"`
	MaxTTL                          int64  `json:"maxTTL"`
	ResetPasswordTokenTTL           int64  `json:"resetPasswordTokenTTL"`
	EmailVerificationRequired       bool   `json:"emailVerificationRequired"`
}

// User is one row of the custom user model.
type User struct {
	// Key names the user in the fixture ("alice", "bob", "carol",
	// "ann-upper", "ann-lower", "gil").
	Key      string `json:"key"`
	ID       int64  `json:"id"`
	Email    string `json:"email"`
	Username string `json:"username"`
	Realm    string `json:"realm"`
	// EmailVerified is nil when the app never set it.
	EmailVerified     *bool  `json:"emailVerified"`
	VerificationToken string `json:"verificationToken"`
	// Password is the plaintext (test-only), "" for the Passport user, whose
	// password passport generated and nobody knows.
	Password     string `json:"password"`
	PasswordHash string `json:"passwordHash"`
	// PlaceholderEmail: the address Passport invented (…@loopback.<provider>.com).
	PlaceholderEmail bool `json:"placeholderEmail"`
	// Extra holds the custom model's own properties, as LoopBack read them
	// back (fullName, age, newsletter, memberSince, tags, preferences).
	Extra map[string]any `json:"extra"`
}

// Token is one AccessToken the app made.
type Token struct {
	Key string `json:"key"`
	// ID is the raw 64-character token a client presents.
	ID     string `json:"id"`
	UserID int64  `json:"userId"`
	// User is the Key of the token's user.
	User string `json:"user"`
	// TTL in seconds; -1 is eternal.
	TTL     int64     `json:"ttl"`
	Created time.Time `json:"created"`
	// Scopes is nil for an ordinary (DEFAULT) token.
	Scopes []string `json:"scopes"`
	// State is StateLive, StateExpired or StateLoggedOut.
	State string `json:"state"`
	// Note says how the app made the token.
	Note    string `json:"note"`
	InStore bool   `json:"inStore"`
	// LB3 is AccessToken.prototype.validate's verdict when the store was
	// made: "valid" or "invalid" ("" for a token no longer in the store).
	LB3 string `json:"lb3"`
}

// Identity is one UserIdentity (a login through a provider) or
// UserCredential (a provider account linked to a user) row.
type Identity struct {
	ID         int64          `json:"id"`
	Provider   string         `json:"provider"`
	AuthScheme string         `json:"authScheme"`
	ExternalID string         `json:"externalId"`
	UserID     int64          `json:"userId"`
	User       string         `json:"user"`
	Profile    map[string]any `json:"profile"`
	// Credentials are the provider's tokens, in plaintext as passport keeps them.
	Credentials map[string]any `json:"credentials"`
	Created     time.Time      `json:"created"`
	Modified    time.Time      `json:"modified"`
}

// Duplicate is a group of users whose emails differ only in case.
type Duplicate struct {
	Normalized string `json:"normalized"`
	Users      []struct {
		Key   string `json:"key"`
		ID    int64  `json:"id"`
		Email string `json:"email"`
	} `json:"users"`
}

// RoleMapping is one RoleMapping row with its Role's name.
type RoleMapping struct {
	Role          string `json:"role"`
	RoleID        int64  `json:"roleId"`
	PrincipalType string `json:"principalType"`
	PrincipalID   string `json:"principalId"`
	User          string `json:"user"`
}

// User returns the user with key, failing t if there is none.
func (f Fixture) User(t testing.TB, key string) User {
	t.Helper()
	for _, u := range f.Users {
		if u.Key == key {
			return u
		}
	}
	t.Fatalf("lb3store: no user %q in the fixture", key)
	return User{}
}

// Token returns the token with key, failing t if there is none.
func (f Fixture) Token(t testing.TB, key string) Token {
	t.Helper()
	for _, tok := range f.Tokens {
		if tok.Key == key {
			return tok
		}
	}
	t.Fatalf("lb3store: no token %q in the fixture", key)
	return Token{}
}

// TokensIn returns the tokens in state.
func (f Fixture) TokensIn(state string) []Token {
	var ts []Token
	for _, tok := range f.Tokens {
		if tok.State == state {
			ts = append(ts, tok)
		}
	}
	return ts
}

// Make writes a fresh LoopBack 3 store of kind (Memory, MySQL or Postgres)
// and returns it. A memory file goes in t.TempDir(); a database is created
// as lb3_test_<random hex> and dropped when t ends.
//
// Without node and npm, or without the database server kind needs, t is
// skipped, or failed under LATCHKEY_E2E_REQUIRE=1.
func Make(t testing.TB, kind string) Fixture {
	t.Helper()
	var target string
	switch kind {
	case Memory:
		target = filepath.Join(t.TempDir(), "lb3-memory.json")
	case MySQL:
		target = createMySQL(t)
	case Postgres:
		target = createPostgres(t)
	default:
		t.Fatalf("lb3store: unknown kind %q: want %q, %q or %q", kind, Memory, MySQL, Postgres)
	}
	dir := appDir(t)
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node is not installed (%v); LoopBack 3 stores need node v20 and npm", err)
	}
	if err := installNodeModules(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			unavailable(t, "npm is not installed (%v); LoopBack 3 stores need node v20 and npm", err)
		}
		t.Fatalf("lb3store: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, "make-store.js", kind, target)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("lb3store: node make-store.js %s %s: %v\n%s", kind, redact(target), err, stderr.Bytes())
	}
	var f Fixture
	if err := json.Unmarshal(stdout.Bytes(), &f); err != nil {
		t.Fatalf("lb3store: make-store.js printed no description (%v):\n%s\nstderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	f.Kind, f.Source = kind, target
	t.Logf("lb3store: LoopBack %s wrote a %s store in %v: %d users, %d tokens",
		f.Versions["loopback"], kind, time.Since(start).Round(time.Millisecond), len(f.Users), len(f.Tokens))
	return f
}

// installNodeModules runs npm ci in testdata/lb3 unless node_modules was
// installed from the same lockfile. It is package-level state, guarded by
// sync.OnceValue: one install serves every test in the process, and a
// failure is reported to each of them alike. Across processes (go test
// runs packages in parallel) a flock on testdata/lb3/.npm-ci.lock makes
// the second process wait and then find the stamp.
var installNodeModules = sync.OnceValue(func() error {
	dir, err := lb3Dir()
	if err != nil {
		return err
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("npm ci lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	want, err := lockDigest(dir)
	if err != nil {
		return err
	}
	if got, err := os.ReadFile(filepath.Join(dir, stampName)); err == nil && string(got) == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	fmt.Fprintf(os.Stderr, "lb3store: npm ci in %s took %v\n", dir, time.Since(start).Round(time.Millisecond))
	return os.WriteFile(filepath.Join(dir, stampName), []byte(want), 0o644)
})

// lockDigest is the SHA-256 of package.json and package-lock.json: what
// npm ci installs from.
func lockDigest(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// appDir returns testdata/lb3, failing t if it cannot be found.
func appDir(t testing.TB) string {
	t.Helper()
	dir, err := lb3Dir()
	if err != nil {
		t.Fatalf("lb3store: %v", err)
	}
	return dir
}

// lb3Dir finds testdata/lb3 from this source file's path, so that tests in
// any package (each runs in its own directory) reach the same app.
func lb3Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the lb3store source file")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "lb3")
	if _, err := os.Stat(filepath.Join(dir, "make-store.js")); err != nil {
		return "", fmt.Errorf("the LB3 app is missing: %w", err)
	}
	return dir, nil
}

// unavailable skips t, or fails it under LATCHKEY_E2E_REQUIRE=1, because
// something the store needs is missing.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("LATCHKEY_E2E_REQUIRE") == "1" {
		t.Fatalf("lb3store: required (LATCHKEY_E2E_REQUIRE=1): %s", msg)
	}
	t.Skipf("lb3store: skipping: %s", msg)
}

// databaseName returns a fresh lb3_test_<16 hex digits>.
func databaseName() string {
	b := make([]byte, 8)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return "lb3_test_" + hex.EncodeToString(b)
}

// redact drops the password from a URL for messages; other strings pass.
func redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if colon := strings.Index(s[i+3:at], ":"); colon >= 0 {
				return s[:i+3+colon] + ":xxx" + s[at:]
			}
		}
	}
	return s
}
