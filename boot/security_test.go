package boot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
)

// newTestApp builds the app as Run does, from variables, without serving
// (no outbox worker: mail stays queued). Requests go straight to Echo.
func newTestApp(t testing.TB, env map[string]string) *boot.App {
	t.Helper()
	vars := map[string]string{
		"LATCHKEY_DB":          testdb.DSN(t),
		"LATCHKEY_BCRYPT_COST": "10",
		"LATCHKEY_SMTP_PORT":   "1",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := boot.LoadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := boot.New(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.DB.Close() })
	return app
}

type answer struct {
	status int
	body   string
}

func serve(app *boot.App, peer, method, path, body string, headers ...string) answer {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = peer + ":5000"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	rec := httptest.NewRecorder()
	app.Echo.ServeHTTP(rec, req)
	return answer{rec.Code, rec.Body.String()}
}

func storedHash(t *testing.T, app *boot.App, email string) string {
	t.Helper()
	var h string
	if err := app.DB.QueryRow(context.Background(), `SELECT password_hash FROM users WHERE email_key = ?`, email).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSecurity_P10_HashUpgrade: with LATCHKEY_PASSWORD_HASH=argon2id, a
// LoopBack 3 user imported with bcryptjs's $2a$10$ hash logs in with the
// old password, the stored value becomes $argon2id$ (m=19 MiB, t=2, p=1),
// and the old password keeps working; two users with one password get
// different hashes. Raising LATCHKEY_BCRYPT_COST upgrades the same way.
func TestSecurity_P10_HashUpgrade(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../models/testdata/bcryptjs.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Hashes []struct{ Password, Hash string }
	}
	if err := json.Unmarshal(raw, &fx); err != nil || len(fx.Hashes) == 0 {
		t.Fatalf("fixture: %v", err)
	}
	lb := fx.Hashes[0]

	for _, tc := range []struct {
		env    map[string]string
		prefix string
	}{
		{map[string]string{"LATCHKEY_PASSWORD_HASH": "argon2id"}, "$argon2id$v=19$m=19456,t=2,p=1$"},
		{map[string]string{"LATCHKEY_BCRYPT_COST": "11"}, "$2a$11$"},
	} {
		app := newTestApp(t, tc.env)
		for _, email := range []string{"a@example.com", "b@example.com"} {
			if r := serve(app, "198.51.100.1", "POST", "/api/users", fmt.Sprintf(`{"email":%q,"password":"same-password-1"}`, email)); r.status != 200 {
				t.Fatalf("signup: %d %s", r.status, r.body)
			}
		}
		if a, b := storedHash(t, app, "a@example.com"), storedHash(t, app, "b@example.com"); a == b || !strings.HasPrefix(a, tc.prefix) {
			t.Fatalf("new hashes %s / %s, want distinct with prefix %s", a, b, tc.prefix)
		}
		// Imported from LoopBack as it stored it: bcryptjs over raw bytes.
		err := app.DB.Write(context.Background(), time.Now(), func(tx *models.Tx) error {
			_, err := tx.Exec(context.Background(), `UPDATE users SET password_hash = ?, password_nfkc = 0 WHERE email_key = ?`, lb.Hash, "a@example.com")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		login := fmt.Sprintf(`{"email":"a@example.com","password":%q}`, lb.Password)
		if r := serve(app, "198.51.100.1", "POST", "/api/users/login", login); r.status != 200 {
			t.Fatalf("login with the LoopBack hash: %d %s", r.status, r.body)
		}
		if h := storedHash(t, app, "a@example.com"); !strings.HasPrefix(h, tc.prefix) {
			t.Fatalf("after login the hash is %.20s…, want %s", h, tc.prefix)
		}
		if r := serve(app, "198.51.100.1", "POST", "/api/users/login", login); r.status != 200 {
			t.Fatalf("old password after the upgrade: %d %s", r.status, r.body)
		}
		if r := serve(app, "198.51.100.1", "POST", "/api/users/login", `{"email":"a@example.com","password":"same-password-1"}`); r.status != 401 {
			t.Fatalf("a wrong password after the upgrade: %d", r.status)
		}
	}
}

func medianOf(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestSecurity_R2_ResetTiming: POST /api/users/reset costs the same for a
// known and an unknown address — both do one small write, and the known
// one only queues its mail (rendered, into the outbox). 200 interleaved
// samples each; SECURITY.md's bound: medians within 5 ms.
func TestSecurity_R2_ResetTiming(t *testing.T) {
	// Not parallel: it measures time, so it runs while no other test of
	// the package does.
	if testing.Short() {
		t.Skip("timing")
	}
	app := newTestApp(t, map[string]string{"LATCHKEY_BCRYPT_COST": "10"})
	const n = 200
	for i := 0; i < n; i++ {
		err := app.DB.Write(context.Background(), time.Now(), func(tx *models.Tx) error {
			_, err := tx.Exec(context.Background(), `INSERT INTO users(email, email_key, password_hash, password_nfkc, created, updated)
				VALUES (?, ?, '$2a$10$GGyX6uZOjAOWnbhAR9y9Guph8l1KM4YluNpGf3XUKLFov1fPQPlU.', 0, 0, 0)`,
				fmt.Sprintf("known%d@example.com", i), fmt.Sprintf("known%d@example.com", i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var known, unknown []time.Duration
	for i := 0; i < n; i++ {
		for _, k := range []string{"known", "unknown"} {
			// A fresh address and client each time: every known request
			// really makes a token and a mail.
			peer := fmt.Sprintf("10.%d.%d.%d", len(k), i/250, i%250)
			start := time.Now()
			r := serve(app, peer, "POST", "/api/users/reset", fmt.Sprintf(`{"email":"%s%d@example.com"}`, k, i))
			d := time.Since(start)
			if r.status != 204 || r.body != "" {
				t.Fatalf("%s %d: %d %q", k, i, r.status, r.body)
			}
			if k == "known" {
				known = append(known, d)
			} else {
				unknown = append(unknown, d)
			}
		}
	}
	var queued int
	app.DB.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&queued)
	if queued != n {
		t.Fatalf("%d mails queued, want %d", queued, n)
	}
	mk, mu := medianOf(known), medianOf(unknown)
	t.Logf("reset median: known %v, unknown %v", mk, mu)
	if diff := mk - mu; diff > 5*time.Millisecond || diff < -5*time.Millisecond {
		t.Fatalf("known %v vs unknown %v: more than 5 ms apart", mk, mu)
	}
}

// TestLimitSettings: the throttling settings have safe defaults (on) and
// are read from LATCHKEY_LOGIN_LIMIT… / LATCHKEY_RESET_LIMIT… like every
// other setting; bad values stop start-up naming the variable.
func TestLimitSettings(t *testing.T) {
	t.Parallel()
	get := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	c, err := boot.LoadConfig(nil, get(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	if !l.Login || !l.Mail || l.FreeFailures != 5 || l.Delay != time.Second || l.MaxDelay != 15*time.Minute ||
		l.IPBurst != 20 || l.IPPerMinute != 10 || l.MailInterval != time.Minute || c.HashQueue != 64 {
		t.Fatalf("defaults: %+v queue %d", l, c.HashQueue)
	}
	c, err = boot.LoadConfig([]string{"-login-limit-ip-burst", "50"}, get(map[string]string{
		"LATCHKEY_LOGIN_LIMIT": "off", "LATCHKEY_LOGIN_LIMIT_FREE_FAILURES": "10", "LATCHKEY_LOGIN_LIMIT_MAX_DELAY": "1h",
		"LATCHKEY_LOGIN_LIMIT_IP_BURST": "30", "LATCHKEY_RESET_LIMIT_INTERVAL": "5m", "LATCHKEY_RESET_LIMIT": "on",
		"LATCHKEY_HASH_QUEUE": "8",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l = c.Limits
	if l.Login || !l.Mail || l.FreeFailures != 10 || l.MaxDelay != time.Hour || l.IPBurst != 50 || l.MailInterval != 5*time.Minute || c.HashQueue != 8 {
		t.Fatalf("from env and flags: %+v queue %d", l, c.HashQueue)
	}
	for k, v := range map[string]string{
		"LATCHKEY_LOGIN_LIMIT": "maybe", "LATCHKEY_LOGIN_LIMIT_FREE_FAILURES": "0", "LATCHKEY_LOGIN_LIMIT_MAX_DELAY": "soon",
		"LATCHKEY_RESET_LIMIT_IP_PER_MINUTE": "-1", "LATCHKEY_HASH_QUEUE": "0",
	} {
		if _, err := boot.LoadConfig(nil, get(map[string]string{k: v}), io.Discard); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	// Switched off, nothing is throttled.
	app := newTestApp(t, map[string]string{"LATCHKEY_LOGIN_LIMIT": "off", "LATCHKEY_BCRYPT_COST": "10"})
	for i := 0; i < 12; i++ {
		if r := serve(app, "198.51.100.9", "POST", "/api/users/login", `{"email":"x@example.com","password":"password-1"}`); r.status != 401 {
			t.Fatalf("attempt %d with the limit off: %d", i, r.status)
		}
	}
}
