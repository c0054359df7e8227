package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
)

// runLB3Import runs the built binary's `import lb3` into dsn, as an
// operator does, and returns what it printed.
func runLB3Import(t *testing.T, bin, dsn string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"import", "lb3"}, args...)...)
	cmd.Env = append(os.Environ(), "LATCHKEY_DB="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("latchkey import lb3 %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestImportLB3DeltaCluster: the cut-over as the README tells it, on
// PostgreSQL with three replicas. LoopBack's store is imported, the
// clients' LoopBack tokens work on every replica, then LoopBack moves on
// (a logout, a password change) and the delta run brings it over while
// the replicas serve: the logged-out token fails at once on all three
// (their caches held it), the new password logs in and the old one does
// not, and the other sessions carry on.
func TestImportLB3DeltaCluster(t *testing.T) {
	f := lb3store.Make(t, lb3store.Memory)
	dsn := testdb.Postgres(t)
	bin := lkpBinary(t)
	flags := []string{"--skip-duplicates", "--allow-eternal-tokens", "--provider", "google-login=google",
		"--duplicates-csv", t.TempDir() + "/dups.csv"}

	out := runLB3Import(t, bin, dsn, append(flags, f.Source)...)
	if !strings.Contains(out, "imported from") {
		t.Fatalf("first run:\n%s", out)
	}
	c := startCluster(t, 3, dsn, map[string]string{"LATCHKEY_ALLOW_ETERNAL_TOKENS": "true"})

	alice, bob := f.User(t, "alice"), f.User(t, "bob")
	var sessions []lb3store.Token
	for _, tok := range f.TokensIn(lb3store.StateLive) {
		if tok.Scopes == nil && tok.User != "ann-upper" { // ann-upper is a skipped duplicate
			sessions = append(sessions, tok)
		}
	}
	if len(sessions) < 4 {
		t.Fatalf("the fixture has %d live sessions", len(sessions))
	}
	// Every replica serves every LoopBack session (and caches it).
	for _, tok := range sessions {
		for i, p := range c.replicas {
			st, m, _ := c.call(t, p.Base, "GET", fmt.Sprintf("/api/users/%d", tok.UserID), tok.ID, nil)
			if st != 200 || m["id"] != float64(tok.UserID) {
				t.Fatalf("replica %d, LoopBack token %s: %d %v", i, tok.Key, st, m)
			}
		}
	}
	c.login(t, c.proxy, alice.Email, alice.Password)

	// LoopBack moves on: bob logs out, alice changes her password.
	bobLive := f.Token(t, "bob-live")
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-changed-9"), 4)
	if err != nil {
		t.Fatal(err)
	}
	lb3store.EditMemoryFile(t, f.Source, func(m *lb3store.MemoryFile) {
		delete(m.Records[f.Models["token"]], bobLive.ID)
		m.Records[f.Models["user"]][strconv.FormatInt(alice.ID, 10)]["password"] = string(hash)
	})
	out = runLB3Import(t, bin, dsn, append(flags, f.Source)...)
	for _, want := range []string{"this run is a delta", "users updated        1", "1  " + "tokens logged out or expired in the source"} {
		if !strings.Contains(out, want) {
			t.Errorf("the delta run's report lacks %q:\n%s", want, out)
		}
	}

	for i, p := range c.replicas {
		if st, m, _ := c.call(t, p.Base, "GET", fmt.Sprintf("/api/users/%d", bob.ID), bobLive.ID, nil); st != 401 {
			t.Errorf("replica %d: bob's token, logged out in LoopBack, after the delta run: %d %v", i, st, m)
		}
		for _, tok := range sessions {
			if tok.Key == bobLive.Key {
				continue
			}
			if st, m, _ := c.call(t, p.Base, "GET", fmt.Sprintf("/api/users/%d", tok.UserID), tok.ID, nil); st != 200 {
				t.Errorf("replica %d: %s after the delta run: %d %v", i, tok.Key, st, m)
			}
		}
		if st, _, _ := c.call(t, p.Base, "POST", "/api/users/login", "", map[string]string{"email": alice.Email, "password": alice.Password}); st != 401 {
			t.Errorf("replica %d: alice's old password: %d, want 401", i, st)
		}
	}
	c.login(t, c.proxy, alice.Email, "alice-changed-9")

	out = runLB3Import(t, bin, dsn, append(flags, f.Source)...)
	if !strings.Contains(out, "users updated        0") || strings.Contains(out, "removed") {
		t.Errorf("a run after the delta changed something:\n%s", out)
	}
}
