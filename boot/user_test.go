package boot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

const cliPassword = "cli-chosen-pw-7"

// secretRE finds what the CLI must never print: a bcrypt or argon2 hash,
// a 64-character token, a reset link.
var secretRE = regexp.MustCompile(`\$2[aby]\$|\$argon2|[A-Za-z0-9]{64}|access_token=|reset-password\?`)

// latchkeyUser runs latchkey user ARGS… on db as main does (stdin given)
// and returns its output and exit status: 0, 1 for an error, 2 for a
// usage error.
func latchkeyUser(t *testing.T, db, stdin string, args ...string) (string, int) {
	t.Helper()
	var out testkit.SyncBuffer
	env := map[string]string{"LATCHKEY_DB": db, "LATCHKEY_BCRYPT_COST": "10", "LATCHKEY_BASE_URL": "https://id.example"}
	err := boot.RunInput(context.Background(), append([]string{"user"}, args...), boot.Environ(env), strings.NewReader(stdin), &out)
	text := out.String()
	if err != nil {
		text += "latchkey: " + err.Error() + "\n"
	}
	if secretRE.MatchString(text) || strings.Contains(text, cliPassword) {
		t.Errorf("latchkey user %s printed a secret:\n%s", strings.Join(args, " "), text)
	}
	switch {
	case err == nil:
		return text, 0
	case errors.As(err, new(*boot.UsageError)):
		return text, 2
	}
	return text, 1
}

// mustUser is latchkeyUser that wants exit status want and every wanted
// piece of text in the output.
func mustUser(t *testing.T, db string, want int, contains []string, args ...string) string {
	t.Helper()
	out, code := latchkeyUser(t, db, "", args...)
	if code != want {
		t.Fatalf("latchkey user %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	for _, c := range contains {
		if !strings.Contains(out, c) {
			t.Errorf("latchkey user %s: no %q in\n%s", strings.Join(args, " "), c, out)
		}
	}
	return out
}

// TestUserCommands runs every latchkey user command on the suite's store:
// its output, its exit status, --json parsed, and what it changed.
func TestUserCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.DSN(t)

	out, code := latchkeyUser(t, db, cliPassword+"\n", "create", "--password-stdin", "--admin", "ann@example.com")
	if code != 0 || out != "user create: created 1 (ann@example.com), an admin, with the password from stdin\n" {
		t.Fatalf("create ann: %d\n%s", code, out)
	}
	mustUser(t, db, 0, []string{"user create: created 2 (bob@example.com) without a password\n",
		"a link to set one was queued in the outbox to bob@example.com (valid 15 minutes); the running server sends it"},
		"create", "bob@example.com")
	mustUser(t, db, 1, []string{`user create: an account with the email "BOB@example.com" exists already: 2 (bob@example.com)`},
		"create", "BOB@example.com")
	mustUser(t, db, 2, []string{`user create: "bob" is not an email address`}, "create", "bob")
	if out, code := latchkeyUser(t, db, "", "create", "--password-stdin", "cy@example.com"); code != 2 || !strings.Contains(out, "held no password") {
		t.Errorf("an empty stdin: %d %s", code, out)
	}
	if out, code := latchkeyUser(t, db, "short\n", "create", "--password-stdin", "cy@example.com"); code != 1 || !strings.Contains(out, "the password is refused") {
		t.Errorf("a short password: %d %s", code, out)
	}

	// What the commands act on: a user with two sessions and an
	// authenticator, through the models as the server would make them.
	store, err := models.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	users := models.NewUsers(store, models.NewHasher(models.HashConfig{BcryptCost: 10}), nil, models.Config{CacheSize: -1})
	var toks []string
	for range 2 {
		tok, _, err := users.Login(ctx, models.Credentials{Email: "ann@example.com", Password: cliPassword},
			models.ClientMeta{IP: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok.ID)
	}
	sess, _ := users.Authenticate(ctx, toks[0], models.ScopeSession)
	enrol, err := users.BeginTOTP(ctx, sess, "Latchkey")
	if err != nil {
		t.Fatal(err)
	}
	code6, _ := totp.GenerateCode(enrol.Secret, time.Now())
	if _, err := users.ConfirmTOTP(ctx, sess, code6, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}

	out = mustUser(t, db, 0, []string{"ID  EMAIL            USERNAME  CREATED", "user list: 2 users\n"}, "list")
	if !regexp.MustCompile(`(?m)^1 +ann@example\.com +- +\S+ \S+ +\S+ \S+ +2 +active, admin$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^2 +bob@example\.com +- +\S+ \S+ +never +0 +active, no password$`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	var list struct {
		Total, Offset, Limit int
		Users                []map[string]any
	}
	out = mustUser(t, db, 0, nil, "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if list.Total != 2 || list.Limit != 50 || len(list.Users) != 2 {
		t.Fatalf("list --json: %+v", list)
	}
	ann := list.Users[0]
	for k, want := range map[string]any{"id": 1.0, "email": "ann@example.com", "username": nil, "emailVerified": nil,
		"disabled": false, "admin": true, "hasPassword": true, "sessions": 2.0} {
		if ann[k] != want {
			t.Errorf("list --json: %s is %v, want %v", k, ann[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339, ann["lastLogin"].(string)); err != nil || list.Users[1]["lastLogin"] != nil {
		t.Errorf("lastLogin: %v %v", ann["lastLogin"], list.Users[1]["lastLogin"])
	}
	mustUser(t, db, 0, []string{`"total": 1`, `"email": "bob@example.com"`}, "list", "--query", "BOB", "--json")
	mustUser(t, db, 0, []string{"user list: users 2–2 of 2\n"}, "list", "--offset", "1")
	mustUser(t, db, 0, []string{"user list: users 1–1 of 2\nuser list: the next page: --offset 1\n"}, "list", "--limit", "1")
	mustUser(t, db, 0, []string{`user list: no users match "nobody"`}, "list", "--query", "nobody")
	mustUser(t, db, 2, []string{"--limit is at least 1"}, "list", "--limit", "0")

	mustUser(t, db, 0, []string{"user 1: ann@example.com\n", "  status          active, admin\n",
		"  second factors  authenticator app, 10 recovery codes left\n", "sessions (2):\n", "192.0.2.7", "password",
		"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "sign-in providers (0):", "recent audit (", "mfa.totp.enabled"}, "show", "ann@example.com")
	if out := mustUser(t, db, 0, nil, "show", "1"); !regexp.MustCompile(`(?m)^  \S+ \S+  user\.created +cli +- +by an operator, as an admin$`).MatchString(out) {
		t.Errorf("the audit row of the creation:\n%s", out)
	}
	var detail struct {
		ID       int64
		Email    string
		Admin    bool
		Factors  map[string]any
		Sessions []map[string]any
		Audit    []map[string]any
	}
	out = mustUser(t, db, 0, nil, "show", "--json", "1")
	if err := json.Unmarshal([]byte(out), &detail); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if detail.ID != 1 || !detail.Admin || detail.Factors["totp"] != true || detail.Factors["recoveryCodesLeft"] != 10.0 ||
		len(detail.Sessions) != 2 || detail.Sessions[0]["ip"] != "192.0.2.7" || len(detail.Audit) == 0 {
		t.Errorf("show --json: %+v", detail)
	}
	created := detail.Audit[len(detail.Audit)-1]
	if created["kind"] != "user.created" || created["actor"] != "cli" || created["detail"] != "by an operator, as an admin" {
		t.Errorf("the oldest audit row: %v", created)
	}
	for _, args := range [][]string{{"show"}, {"show", "1", "2"}, {"show", "1", "--json"}, {"show", "ann"}, {"disable"}, {"show", "--nope", "1"}} {
		mustUser(t, db, 2, nil, args...)
	}
	for _, cmd := range []string{"show", "disable", "enable", "delete", "revoke-sessions", "reset-link", "reset-factors", "grant-admin", "revoke-admin"} {
		mustUser(t, db, 1, []string{"user " + cmd + `: no user with the email "nobody@example.com"`}, cmd, "nobody@example.com")
		mustUser(t, db, 1, []string{"user " + cmd + ": no user with id 99"}, cmd, "99")
	}

	mustUser(t, db, 0, []string{"user reset-factors: removed the second factors of 1 (ann@example.com) (authenticator app, 10 recovery codes left) and ended its sessions"},
		"reset-factors", "1")
	mustUser(t, db, 0, []string{"user reset-factors: 1 (ann@example.com) has no second factor: nothing changed"}, "reset-factors", "1")
	if s, _ := users.Authenticate(ctx, toks[1], models.ScopeSession); s != nil {
		t.Error("a session outlived reset-factors")
	}
	login := func() string {
		tok, _, err := users.Login(ctx, models.Credentials{Email: "ann@example.com", Password: cliPassword}, models.ClientMeta{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.ID
	}
	login()
	login()
	mustUser(t, db, 0, []string{"user revoke-sessions: ended 2 sessions of 1 (ann@example.com)\n"}, "revoke-sessions", "ann@example.com")
	tok := login()
	mustUser(t, db, 0, []string{"user disable: disabled 1 (ann@example.com); 1 session ended at once, and its logins now fail as a wrong password does\n"},
		"disable", "1")
	if s, _ := users.Authenticate(ctx, tok, models.ScopeSession); s != nil {
		t.Error("a session outlived the disable")
	}
	if _, _, err := users.Login(ctx, models.Credentials{Email: "ann@example.com", Password: cliPassword}, models.ClientMeta{}); !errors.Is(err, models.ErrLoginFailed) {
		t.Errorf("a disabled account's login: %v", err)
	}
	mustUser(t, db, 0, []string{"user disable: 1 (ann@example.com) was disabled already (since "}, "disable", "1")
	mustUser(t, db, 0, []string{"  status          disabled since "}, "show", "1")
	mustUser(t, db, 1, []string{"user reset-link: 1 (ann@example.com) is disabled: enable it first (latchkey user enable 1)"}, "reset-link", "1")
	mustUser(t, db, 0, []string{"user enable: enabled 1 (ann@example.com): it can sign in again"}, "enable", "1")
	mustUser(t, db, 0, []string{"user enable: 1 (ann@example.com) was not disabled: nothing changed"}, "enable", "1")
	login()
	mustUser(t, db, 0, []string{"user reset-link: a reset link for 1 was queued in the outbox to ann@example.com (valid 15 minutes); the running server sends it\n"},
		"reset-link", "ann@example.com")

	mustUser(t, db, 0, []string{"user revoke-admin: 1 (ann@example.com) is no longer an admin\n"}, "revoke-admin", "1")
	mustUser(t, db, 0, []string{"user revoke-admin: 1 (ann@example.com) was not an admin: nothing changed\n"}, "revoke-admin", "1")
	mustUser(t, db, 0, []string{"user grant-admin: 2 (bob@example.com) is an admin now\n"}, "grant-admin", "bob@example.com")
	mustUser(t, db, 0, []string{"user grant-admin: 2 (bob@example.com) was an admin already: nothing changed\n"}, "grant-admin", "2")

	mustUser(t, db, 0, []string{"user delete: deleted 2 (bob@example.com) with its sessions"}, "delete", "2")
	mustUser(t, db, 1, []string{"user delete: no user with id 2"}, "delete", "2")

	// Mail queued for the server: the set-password link for bob and the
	// reset link for ann, with nothing sent (the CLI has no SMTP).
	st, err := models.NewOutbox(store, models.OutboxConfig{}).Stats(ctx)
	if err != nil || st.Pending < 2 || st.Sent != 0 {
		t.Errorf("outbox after the CLI: %+v %v", st, err)
	}
	// Every change is audited with the actor.
	rows, _ := users.ListAudit(ctx, 1, 50)
	byCLI := map[string]bool{}
	for _, r := range rows {
		if r.Actor == "cli" {
			byCLI[r.Kind] = true
		}
	}
	for _, kind := range []string{"user.created", "mfa.reset", "session.revoked-all", "user.disabled", "user.enabled", "reset.requested", "admin.revoked"} {
		if !byCLI[kind] {
			t.Errorf("no %s row by the cli in %v", kind, byCLI)
		}
	}
}

// TestUserCommandsMissingDatabase: a SQLite LATCHKEY_DB that does not
// exist is not created by a command that reads or changes accounts.
func TestUserCommandsMissingDatabase(t *testing.T) {
	t.Parallel()
	db := t.TempDir() + "/none.db"
	mustUser(t, db, 1, []string{"user list: LATCHKEY_DB " + db, "no such file"}, "list")
	mustUser(t, db, 0, []string{"user create: created 1 (first@example.com), an admin, without a password"}, "create", "--admin", "first@example.com")
}

// TestUserCommandsOnRunningServer (S8, A2, L1): while a real server holds
// sessions, latchkey user disable, revoke-sessions and delete — another
// process on SQLite (another store handle on the same file), another
// replica on PostgreSQL — fail them within a second; the disabled
// account's login answers exactly as a wrong password; and the reset link
// the CLI queues is sent by the server.
func TestUserCommandsOnRunningServer(t *testing.T) {
	t.Parallel()
	db := testdb.DSN(t)
	sink := smtptest.Start(t)
	base, _, _ := startApp(t, map[string]string{"LATCHKEY_DB": db, "LATCHKEY_SMTP_HOST": "127.0.0.1",
		"LATCHKEY_SMTP_PORT": strconv.Itoa(sink.Port())})
	session := func(email string) (int, string) {
		t.Helper()
		st, u, body := call(t, "POST", base+"/api/users", fmt.Sprintf(`{"email":%q,"password":"serve-pw-123"}`, email))
		if st != 200 {
			t.Fatalf("sign-up %s: %d %s", email, st, body)
		}
		st, tok, body := call(t, "POST", base+"/api/users/login", fmt.Sprintf(`{"email":%q,"password":"serve-pw-123"}`, email))
		if st != 200 {
			t.Fatalf("login %s: %d %s", email, st, body)
		}
		return int(u["id"].(float64)), tok["id"].(string)
	}
	for _, c := range []struct{ email, cmd string }{
		{"dis@example.com", "disable"}, {"rev@example.com", "revoke-sessions"}, {"del@example.com", "delete"}} {
		id, tok := session(c.email)
		path := fmt.Sprintf("%s/api/users/%d", base, id)
		for range 3 { // served from the server's cache from the second on
			if st, _, body := call(t, "GET", path, "", "Authorization", tok); st != 200 {
				t.Fatalf("%s before: %d %s", c.email, st, body)
			}
		}
		mustUser(t, db, 0, nil, c.cmd, c.email)
		done := time.Now()
		for {
			st, _, _ := call(t, "GET", path, "", "Authorization", tok)
			if st == 401 {
				t.Logf("%s: the session failed %v after the CLI returned", c.cmd, time.Since(done).Round(time.Millisecond))
				break
			}
			if time.Since(done) > time.Second {
				t.Fatalf("%s: the session still answers %d a second after latchkey user %s", c.email, st, c.cmd)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// L1: the disabled account's right password, a wrong one and an
	// unknown address get the same answer.
	var bodies []string
	for _, creds := range []string{`{"email":"dis@example.com","password":"serve-pw-123"}`,
		`{"email":"dis@example.com","password":"wrong-pw-123"}`, `{"email":"nobody@example.com","password":"serve-pw-123"}`} {
		st, _, body := call(t, "POST", base+"/api/users/login", creds)
		if st != 401 {
			t.Fatalf("login %s: %d %s", creds, st, body)
		}
		bodies = append(bodies, body)
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Errorf("the answers differ:\n%s\n%s\n%s", bodies[0], bodies[1], bodies[2])
	}

	// The CLI queues; the running server sends.
	mustUser(t, db, 0, []string{"queued in the outbox to rev@example.com"}, "reset-link", "rev@example.com")
	m := sink.WaitFor(t, "rev@example.com", "Reset your password", 10*time.Second)
	if !strings.Contains(m.Text, "https://id.example/reset-password?access_token=") && !strings.Contains(m.Text, "/reset-password?access_token=") {
		t.Errorf("the mail has no reset link:\n%s", m.Text)
	}
}
