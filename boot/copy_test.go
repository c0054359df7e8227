package boot_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// secret is the password put in the target's URL. The local PostgreSQL
// trusts its clients, so it is never asked for; what matters is that it is
// never printed.
const secret = "s3cret-Pa55word"

// withPassword is dsn with secret as its password.
func withPassword(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), secret)
	return u.String()
}

func runCopy(t *testing.T, src string, args ...string) (string, error) {
	t.Helper()
	var out testkit.SyncBuffer
	env := map[string]string{"LATCHKEY_DB": src}
	err := boot.Run(context.Background(), append([]string{"copy"}, args...), boot.Environ(env), &out)
	if strings.Contains(out.String(), secret) || err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("the password was printed:\n%s\nerror: %v", out.String(), err)
	}
	return out.String(), err
}

// tableCounts are the rows of every copied table, for "unchanged" checks.
func tableCounts(t *testing.T, dsn string) string {
	t.Helper()
	db, err := models.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var parts []string
	for _, tb := range []string{"users", "access_tokens", "verification_tokens", "throttle", "outbox", "audit_events"} {
		var n int
		if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s %d", tb, n))
	}
	return strings.Join(parts, ", ")
}

// TestCopyCommand: latchkey copy --to postgres://… moves a SQLite database
// the app made into PostgreSQL, printing a plain line per table and a
// summary, never the URL's password; a server started on the target
// serves the old session, the old password and a new sign-up. A second
// copy is refused, saying how to force it, and leaves the target as it
// was; --force replaces the target's rows.
func TestCopyCommand(t *testing.T) {
	t.Parallel()
	target := withPassword(t, testdb.Postgres(t))
	src := filepath.Join(t.TempDir(), "data", "latchkey.db")

	base, _, stop := startApp(t, map[string]string{"LATCHKEY_DB": src})
	call(t, "POST", base+"/api/users", `{"email":"alice@example.com","password":"quiet-harbor-12"}`)
	call(t, "POST", base+"/api/users", `{"email":"bob@example.com","password":"stolen-lantern-12"}`)
	_, tok, _ := call(t, "POST", base+"/api/users/login", `{"email":"alice@example.com","password":"quiet-harbor-12"}`)
	session, _ := tok["id"].(string)
	if st, _, body := call(t, "POST", base+"/api/users/reset", `{"email":"bob@example.com"}`); st != 204 {
		t.Fatalf("reset: %d %s", st, body)
	}
	if st, _, _ := call(t, "POST", base+"/api/users/login", `{"email":"alice@example.com","password":"wrong-password-1"}`); st != 401 {
		t.Fatalf("a wrong password: %d", st)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	out, err := runCopy(t, src, "--to", target)
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	for _, want := range []string{
		"copy: from " + src + " to postgres://postgres:xxxxx@",
		"\ncopy: users 2/2\n", "\ncopy: access_tokens 2/2\n", "\ncopy: verification_tokens 0/0\n",
		"\ncopy: outbox 1/1\n", "\ncopy: copied ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	for _, re := range []string{`\ncopy: throttle ([1-9]\d*)/\d+\n`, `\ncopy: audit_events ([1-9]\d*)/\d+\n`,
		`copy: copied \d+ rows in \S+ into postgres://postgres:xxxxx@\S+ \(schema at migration \d+\):\n`,
		`\n  users +2\n  access_tokens +2\n  verification_tokens +0\n  identities +0\n  user_aliases +0\n  import_ledger +0\n  email_changes +0\n  oauth_flows +0\n  mfa_totp +0\n  recovery_codes +0\n  mfa_challenges +0\n  webauthn_credentials +0\n  webauthn_handles +0\n  webauthn_ceremonies +0\n  server_secrets +0\n  throttle +\d+\n  outbox +1\n  audit_events +\d+\n$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the output does not match %s:\n%s", re, out)
		}
	}

	// A server on the target: nobody was logged out.
	base, _, stop = startApp(t, map[string]string{"LATCHKEY_DB": target})
	if st, _, body := call(t, "GET", base+"/api/users/1", "", "Authorization", session); st != 200 || !strings.Contains(body, "alice@example.com") {
		t.Errorf("alice's old session on the target: %d %s", st, body)
	}
	if st, _, body := call(t, "POST", base+"/api/users/login", `{"email":"bob@example.com","password":"stolen-lantern-12"}`); st != 200 {
		t.Errorf("bob's old password on the target: %d %s", st, body)
	}
	if st, m, body := call(t, "POST", base+"/api/users", `{"email":"carol@example.com","password":"amber-meadow-12"}`); st != 200 || m["id"] != float64(3) {
		t.Errorf("a sign-up on the target: %d %s, want id 3", st, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if db, err := models.Open(context.Background(), target); err != nil {
		t.Fatal(err)
	} else {
		ms, err := models.NewOutbox(db, models.OutboxConfig{}).Stats(context.Background())
		db.Close()
		if err != nil || ms.Pending != 1 {
			t.Errorf("outbox on the target %+v, %v; want bob's reset mail pending", ms, err)
		}
	}

	before := tableCounts(t, target)
	out, err = runCopy(t, src, "--to", target)
	if err == nil || !strings.Contains(err.Error(), "refused, nothing was copied") || !strings.Contains(err.Error(), "--force") ||
		!errors.Is(err, models.ErrTargetNotEmpty) {
		t.Fatalf("a second copy: %v\n%s", err, out)
	}
	if after := tableCounts(t, target); after != before {
		t.Errorf("a refused copy changed the target: %s, was %s", after, before)
	}

	out, err = runCopy(t, src, "--to", target, "--force")
	if err != nil {
		t.Fatalf("copy --force: %v\n%s", err, out)
	}
	if !strings.Contains(out, "copy: --force: deleted the ") || !strings.Contains(out, "(users 3, access_tokens ") {
		t.Errorf("--force does not say what it deleted:\n%s", out)
	}
	if got, want := tableCounts(t, target), tableCounts(t, src); got != want {
		t.Errorf("after --force the target holds %s, the source %s", got, want)
	}
}

// TestCopyCommandRefuses: what latchkey copy refuses before it copies, and
// that a password in a URL it cannot reach is not printed either.
func TestCopyCommandRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "latchkey.db")
	db, err := models.Open(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, c := range []struct {
		name, src string
		args      []string
		want      string
	}{
		{"no --to", src, nil, "--to is required"},
		{"the same store", src, []string{"--to", src}, "names LATCHKEY_DB itself"},
		{"an unknown scheme", src, []string{"--to", "mysql://root@localhost/db"}, `unsupported database scheme "mysql://"`},
		{"no source", filepath.Join(dir, "missing.db"), []string{"--to", filepath.Join(dir, "t.db")}, "copy: the source (LATCHKEY_DB):"},
		{"an unreachable target", src, []string{"--to", "postgres://postgres:" + secret + "@127.0.0.1:1/test?connect_timeout=2"}, "copy --to postgres://postgres:xxxxx@127.0.0.1:1/test"},
		{"a password parameter", src, []string{"--to", "postgres://postgres@127.0.0.1:1/test?password=" + secret}, "password=xxxxx"},
		{"a URL that does not parse", src, []string{"--to", "postgres://postgres:" + secret + "%zz@127.0.0.1:1/test"}, "PostgreSQL URL is not valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runCopy(t, c.src, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q\n%s", err, c.want, out)
			}
			// A command line that cannot run is a usage error (exit 2); a
			// store that cannot be read or reached is not.
			_, isUsage := errors.AsType[*boot.UsageError](err)
			if wantUsage := c.name == "no --to" || c.name == "the same store" || c.name == "an unknown scheme"; isUsage != wantUsage {
				t.Errorf("usage error = %v, want %v", isUsage, wantUsage)
			}
		})
	}

	out, err := runCopy(t, src, "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "Usage of latchkey copy:") || !strings.Contains(out, "-to") || !strings.Contains(out, "-force") {
		t.Errorf("copy -h: %v\n%s", err, out)
	}
}
