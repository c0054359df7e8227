// Package dextest runs a real Dex (github.com/dexidp/dex, v2.45.1) for
// tests: an OpenID Connect provider with a real login page, one static
// client and static users with passwords, in memory, on a free loopback
// port. Tests drive Latchkey's /auth/<id> → Dex → /auth/<id>/callback flow
// against it, either in Chromium or over plain HTTP with Login.
//
//	d := dextest.Start(t, dextest.Config{
//		RedirectURIs: []string{base + "/auth/dex/callback"},
//		Users: []dextest.User{
//			{Email: "alice@example.com", Password: "alice-pw"},
//			{Email: "bob@example.com", Password: "bob-pw", Unverified: true},
//		},
//	})
//	// d.Issuer, d.ClientID, d.ClientSecret configure the app
//	// (LATCHKEY_OIDC_DEX_ISSUER, …); d.Subject("alice@example.com") is
//	// the "sub" Dex will put in alice's ID token.
//
// The Dex binary is LATCHKEY_DEX (a path; .ci/run builds it once and sets
// it). Without it, the first Start in a test process builds Dex from the
// wrapper module tools/dex (go build -modfile=tools/dex/go.mod: about 3
// minutes cold, cgo) into os.UserCacheDir()/latchkey-dex-<digest of
// tools/dex/go.mod and go.sum>/dex, under a file lock there so that test
// processes running in parallel build it once; later runs reuse it. If
// that build cannot run (no go command, no module proxy and no module
// cache, …) the test is skipped, or failed under LATCHKEY_E2E_REQUIRE=1.
//
// Quirks of Dex worth knowing (see also ../shared/third-party-login.md §2):
//   - Redirect URIs match exactly; another one gets Dex's 400 page
//     ("Unregistered redirect_uri.") and never reaches the client.
//   - "sub" is opaque: base64url of a protobuf of (userID, "local"). It is
//     stable across logins and across Down/Up; Subject computes it.
//   - Dex keys static users by email: one user per email address.
//   - Static password hashes must have bcrypt cost 10..16 (Dex checks on
//     every login and answers 500 otherwise); Start hashes at cost 10.
//   - emailVerified defaults to true in Dex; User.Unverified sends false,
//     both in the ID token and from userinfo.
//   - A wrong password gets the login page again with 401 Unauthorized
//     (Rejected tells).
//   - Storage is memory: Down loses everything Dex made (pending logins,
//     codes, refresh tokens), and Up starts with new signing keys.
package dextest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/internal/testkit"
)

// EnvDex names the variable holding the path of a Dex binary to use
// instead of building one.
const EnvDex = "LATCHKEY_DEX"

// EnvRequire set to "1" turns "Dex cannot be built here → skip" into a
// failure (CI).
const EnvRequire = "LATCHKEY_E2E_REQUIRE"

// ConnectorID is the id of Dex's password database connector: the second
// half of every "sub" this Dex issues.
const ConnectorID = "local"

const (
	// readyTimeout bounds a start, from exec to a 200 from discovery
	// (under a second on a quiet machine).
	readyTimeout = 30 * time.Second
	// stopTimeout is how long Dex gets to exit on SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// startAttempts: Start picks a free port, closes it and hands it to
	// Dex; if someone takes it meanwhile, it tries another.
	startAttempts = 3
)

// Config describes the Dex to start: one static client and its users.
type Config struct {
	// ClientID is the static client's id; "latchkey" if empty.
	ClientID string
	// ClientSecret is its secret; a random one if empty.
	ClientSecret string
	// RedirectURIs are the client's redirect URIs (at least one). Dex
	// compares them exactly, so start the app's listener (or pick its
	// port) first.
	RedirectURIs []string
	// Users are the password database's static users.
	Users []User
}

// User is one static user of Dex's password database.
type User struct {
	// Email is what the user types as "login" on Dex's page, and the
	// "email" claim. Dex keys users by it: one user per email.
	Email string
	// Username is Dex's "username", the "name" claim; the part of Email
	// before "@" if empty.
	Username string
	// Password is hashed with bcrypt (cost 10) for Dex's config.
	Password string
	// UserID is Dex's userID, from which "sub" is derived; if empty, a
	// fixed value derived from Email ("user-" + its hex), so the subject
	// is the same in every run.
	UserID string
	// Unverified makes Dex send "email_verified": false (Dex's
	// emailVerified: false). The zero value is Dex's default: verified.
	Unverified bool
}

// Dex is a running (or, after Down, stopped) Dex.
type Dex struct {
	// Issuer is http://127.0.0.1:PORT/dex; discovery is at
	// Issuer + "/.well-known/openid-configuration". It stays the same
	// across Down/Up.
	Issuer string
	// ClientID and ClientSecret are the static client's credentials.
	ClientID     string
	ClientSecret string
	// RedirectURIs are the client's registered redirect URIs.
	RedirectURIs []string
	// Users are the static users, with UserID and Username filled in.
	Users []User

	bin     string
	cfgPath string
	addr    string // 127.0.0.1:PORT
	log     *testkit.SyncBuffer

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	err   error         // cmd.Wait's result, valid after done
	start int           // how many times Dex was started
}

// Start writes a config for cfg, runs Dex with it on a free loopback port,
// and waits until its discovery document answers 200. Dex is stopped when
// t ends; if t failed, its log is printed.
func Start(t testing.TB, cfg Config) *Dex {
	t.Helper()
	if len(cfg.RedirectURIs) == 0 {
		t.Fatal("dextest: Config.RedirectURIs is empty; Dex needs the client's redirect URIs")
	}
	d := &Dex{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		RedirectURIs: append([]string(nil), cfg.RedirectURIs...),
		log:          &testkit.SyncBuffer{},
	}
	if d.ClientID == "" {
		d.ClientID = "latchkey"
	}
	if d.ClientSecret == "" {
		d.ClientSecret = randomHex(16)
	}
	seen := map[string]bool{}
	for _, u := range cfg.Users {
		if u.Email == "" || u.Password == "" {
			t.Fatalf("dextest: user %+v needs an Email and a Password", u)
		}
		key := strings.ToLower(u.Email)
		if seen[key] {
			t.Fatalf("dextest: two users with the email %q; Dex allows one user per email (start a second Dex)", u.Email)
		}
		seen[key] = true
		if u.Username == "" {
			u.Username, _, _ = strings.Cut(u.Email, "@")
		}
		if u.UserID == "" {
			u.UserID = "user-" + hex.EncodeToString([]byte(key))
		}
		d.Users = append(d.Users, u)
	}
	d.bin = dexBinary(t)
	dir := t.TempDir()
	d.cfgPath = filepath.Join(dir, "dex.json")

	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("dextest: Dex log (%s):\n%s", d.Issuer, d.log.String())
		}
	})

	var lastErr error
	for range startAttempts {
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("dextest: %v", err)
		}
		d.addr = addr
		d.Issuer = "http://" + addr + "/dex"
		if err := d.writeConfig(); err != nil {
			t.Fatalf("dextest: %v", err)
		}
		began := time.Now()
		if lastErr = d.run(); lastErr == nil {
			t.Logf("dextest: Dex up at %s in %v", d.Issuer, time.Since(began).Round(time.Millisecond))
			return d
		}
		d.stop()
		if !strings.Contains(d.log.String(), "address already in use") {
			break
		}
	}
	t.Fatalf("dextest: starting Dex: %v\nlog:\n%s", lastErr, d.log.String())
	return nil
}

// Down stops Dex (SIGTERM, then SIGKILL after 5 s) and returns once the
// process has exited and its port is closed: the provider is down.
// Requests to the issuer then fail with "connection refused". t is the
// calling test (it may be a subtest of the one that called Start).
func (d *Dex) Down(t testing.TB) {
	t.Helper()
	d.stop()
	t.Logf("dextest: Dex at %s is down", d.Issuer)
}

// Up starts Dex again after Down, with the same config, port and issuer,
// and waits for discovery. Dex's storage is memory, so the new process
// has new signing keys (a new "kid" in its JWKS; a verifier that cached
// the old keys must refetch them, which go-oidc's RemoteKeySet does on an
// unknown kid), and knows nothing of logins, codes or refresh tokens from
// before Down. Users, the client and every user's "sub" are unchanged.
// Up while Dex is running, or a failed start, fails t.
func (d *Dex) Up(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	running := d.cmd != nil
	d.mu.Unlock()
	if running {
		t.Fatal("dextest: Up while Dex is running; call Down first")
	}
	began := time.Now()
	if err := d.run(); err != nil {
		d.stop()
		t.Fatalf("dextest: restarting Dex at %s: %v\nlog:\n%s", d.Issuer, err, d.log.String())
	}
	t.Logf("dextest: Dex up again at %s in %v (new signing keys)", d.Issuer, time.Since(began).Round(time.Millisecond))
}

// Log returns everything Dex has written so far, across restarts.
func (d *Dex) Log() string { return d.log.String() }

// Subject returns the "sub" claim Dex issues for the static user with
// email (case-insensitive); it panics if there is no such user (a mistake
// in the test). It is what Dex computes: base64url (no padding) of the
// protobuf message IDTokenSubject{user_id: UserID, conn_id: "local"}.
func (d *Dex) Subject(email string) string {
	for _, u := range d.Users {
		if strings.EqualFold(u.Email, email) {
			return SubjectOf(u.UserID)
		}
	}
	panic(fmt.Sprintf("dextest: Subject: no user with the email %q", email))
}

// SubjectOf returns the "sub" Dex issues for a password-database user
// whose userID is userID.
func SubjectOf(userID string) string {
	var b []byte
	for _, f := range []struct {
		tag byte
		s   string
	}{{0x0a, userID}, {0x12, ConnectorID}} { // fields 1 and 2, wire type 2
		b = append(b, f.tag)
		b = binary.AppendUvarint(b, uint64(len(f.s)))
		b = append(b, f.s...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// dexConfig is Dex's config file. Dex reads YAML, and JSON is YAML.
type dexConfig struct {
	Issuer  string `json:"issuer"`
	Storage struct {
		Type string `json:"type"`
	} `json:"storage"`
	Web struct {
		HTTP string `json:"http"`
	} `json:"web"`
	Logger struct {
		Level  string `json:"level"`
		Format string `json:"format"`
	} `json:"logger"`
	OAuth2 struct {
		SkipApprovalScreen bool `json:"skipApprovalScreen"`
	} `json:"oauth2"`
	StaticClients    []staticClient   `json:"staticClients"`
	EnablePasswordDB bool             `json:"enablePasswordDB"`
	StaticPasswords  []staticPassword `json:"staticPasswords"`
}

type staticClient struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirectURIs"`
}

type staticPassword struct {
	Email         string `json:"email"`
	Username      string `json:"username"`
	UserID        string `json:"userID"`
	Hash          string `json:"hash"`
	EmailVerified bool   `json:"emailVerified"`
}

func (d *Dex) writeConfig() error {
	var c dexConfig
	c.Issuer = d.Issuer
	c.Storage.Type = "memory"
	c.Web.HTTP = d.addr
	c.Logger.Level = "debug"
	c.Logger.Format = "text"
	c.OAuth2.SkipApprovalScreen = true
	c.StaticClients = []staticClient{{ID: d.ClientID, Secret: d.ClientSecret, Name: "Latchkey", RedirectURIs: d.RedirectURIs}}
	c.EnablePasswordDB = true
	c.StaticPasswords = []staticPassword{}
	for _, u := range d.Users {
		// Dex refuses (500 at login) hashes cheaper than bcrypt.DefaultCost.
		h, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("bcrypt: %w", err)
		}
		c.StaticPasswords = append(c.StaticPasswords, staticPassword{
			Email: u.Email, Username: u.Username, UserID: u.UserID, Hash: string(h), EmailVerified: !u.Unverified,
		})
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(d.cfgPath, b, 0o600)
}

// run starts the process and waits for discovery to answer 200.
func (d *Dex) run() error {
	d.mu.Lock()
	d.start++
	fmt.Fprintf(d.log, "--- dextest: start #%d at %s\n", d.start, d.addr)
	cmd := exec.Command(d.bin, "serve", d.cfgPath)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("exec %s: %w", d.bin, err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	d.mu.Unlock()

	url := d.Issuer + "/.well-known/openid-configuration"
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			d.mu.Lock()
			werr := d.err
			d.mu.Unlock()
			return fmt.Errorf("dex exited during start-up: %v", werr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			return fmt.Errorf("%s not ready after %v: %v", url, readyTimeout, err)
		}
	}
}

// stop ends the process if it runs, and waits for it.
func (d *Dex) stop() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd, d.done = nil, nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-done
	}
}

// freeAddr returns a loopback address with a port nobody listened on a
// moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// unavailable skips t, or fails it under LATCHKEY_E2E_REQUIRE=1, because
// Dex cannot be had here.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("dextest: required (%s=1): %s", EnvRequire, msg)
	}
	t.Skipf("dextest: skipping: %s (set %s to a Dex binary, or build it: go build -modfile=tools/dex/go.mod -o dex github.com/dexidp/dex/cmd/dex)", msg, EnvDex)
}
