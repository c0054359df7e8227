package boot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

func runImport(t *testing.T, target string, args ...string) (string, error) {
	t.Helper()
	var out testkit.SyncBuffer
	env := map[string]string{"LATCHKEY_DB": target}
	err := boot.Run(context.Background(), append([]string{"import", "lb3"}, args...), boot.Environ(env), &out)
	if strings.Contains(out.String(), secret) || err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("the password was printed:\n%s\nerror: %v", out.String(), err)
	}
	return out.String(), err
}

// noRows says whether the target holds no row in any table (opening it
// migrates it).
func noRows(t *testing.T, dsn string) bool {
	t.Helper()
	return tableCounts(t, dsn) == "users 0, access_tokens 0, verification_tokens 0, throttle 0, outbox 0, audit_events 0"
}

// TestImportLB3Command: a dry run reports and writes nothing; the import
// writes, keeps LoopBack's tokens and passwords, and prints no secret;
// duplicates, a cut file and bad command lines are refused with nothing
// written, the last as usage errors.
func TestImportLB3Command(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Memory)
	target := withPassword(t, testdb.Postgres(t))
	if testdb.Store() == "sqlite" {
		target = testdb.DSN(t)
	}

	out, err := runImport(t, target, "--dry-run", "--skip-duplicates", "--allow-eternal-tokens", f.Source)
	if err != nil || !strings.Contains(out, "would import") || !strings.Contains(out, "nothing was written") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if testdb.Store() == "sqlite" {
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the dry run made the target: %v", err)
		}
	}

	out, err = runImport(t, target, f.Source)
	if err == nil || !strings.Contains(err.Error(), "Ann@x.com") || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("duplicates: %v", err)
	}
	if _, ok := errors.AsType[*boot.UsageError](err); ok {
		t.Error("a refusal is not a usage error")
	}
	b, _ := os.ReadFile(f.Source)
	cut := filepath.Join(t.TempDir(), "cut.json")
	os.WriteFile(cut, b[:len(b)*2/3], 0o600)
	if _, err := runImport(t, target, "--skip-duplicates", cut); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a cut file: %v", err)
	}
	if !noRows(t, target) {
		t.Fatalf("refused imports wrote users: %s", tableCounts(t, target))
	}

	for _, args := range [][]string{{}, {"ftp://host/x"}, {f.Source, "--dry-run"}, {"/no/such/file.json"}, {"--no-such-flag", f.Source},
		{"--provider", "google-login", f.Source}} {
		if _, err := runImport(t, target, args...); err == nil {
			t.Errorf("%q accepted", args)
		} else if _, ok := errors.AsType[*boot.UsageError](err); !ok {
			t.Errorf("%q: %v is not a usage error", args, err)
		}
	}

	dupCSV := filepath.Join(t.TempDir(), "dups.csv")
	out, err = runImport(t, target, "--skip-duplicates", "--duplicates-csv", dupCSV, "--allow-eternal-tokens", "--provider", "google-login=google", f.Source)
	if err != nil || !strings.Contains(out, "imported from") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	ann := f.Duplicates[0].Users
	wantCSV := fmt.Sprintf("group,id,email,verified,live_tokens,identities,last_token\nann@x.com,%d,%s,true,1,0,", ann[0].ID, ann[0].Email)
	if b, err := os.ReadFile(dupCSV); err != nil || !strings.HasPrefix(string(b), wantCSV) ||
		!strings.Contains(string(b), fmt.Sprintf("\nann@x.com,%d,%s,false,0,0,\n", ann[1].ID, ann[1].Email)) {
		t.Errorf("the duplicates CSV: %v\n%s", err, b)
	}
	for _, line := range []string{"users                4", "reset tokens         1", "verification links   1",
		"identities           1", "linked identities    1", "placeholder emails   1", "not imported (Latchkey has no roles): Role 1, RoleMapping 1"} {
		if !strings.Contains(out, line) {
			t.Errorf("report lacks %q:\n%s", line, out)
		}
	}
	ctx := context.Background()
	db, err := models.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, models.DefaultLimitConfig()),
		models.Config{AllowEternalTokens: true, TokenTTL: 1209600, TokenMaxTTL: 31556926})
	for _, tok := range f.TokensIn(lb3store.StateLive) {
		if tok.Scopes != nil || tok.User == "ann-upper" {
			continue
		}
		if s, err := u.Authenticate(ctx, tok.ID, models.ScopeSession); err != nil || s == nil || s.User.ID != tok.UserID {
			t.Errorf("token %s after the command: %+v, %v", tok.Key, s, err)
		}
	}
	alice := f.User(t, "alice")
	if _, who, err := u.Login(ctx, models.Credentials{Email: alice.Email, Password: alice.Password}, models.ClientMeta{}); err != nil || who.ID != alice.ID {
		t.Errorf("alice's password: %v", err)
	}
	gil, id := f.User(t, "gil"), f.Identities[0]
	if who, err := u.FindUserByIdentity(ctx, "google", id.ExternalID); err != nil || who.ID != gil.ID || !who.EmailPlaceholder {
		t.Errorf("gil by his Google identity: %+v, %v", who, err)
	}

	// Run again on the same source: a delta with nothing to do.
	before := tableCounts(t, target)
	for _, dry := range []bool{true, false} {
		args := []string{"--skip-duplicates", "--duplicates-csv", dupCSV, "--allow-eternal-tokens", "--provider", "google-login=google", f.Source}
		if dry {
			args = append([]string{"--dry-run"}, args...)
		}
		out, err = runImport(t, target, args...)
		if err != nil || !strings.Contains(out, "this run is a delta") || !strings.Contains(out, "users                0\n") ||
			!strings.Contains(out, "users updated        0") || strings.Contains(out, "removed") {
			t.Errorf("a second run (dry %t): %v\n%s", dry, err, out)
		}
	}
	if after := tableCounts(t, target); after != before {
		t.Errorf("a second run changed the target: %s, was %s", after, before)
	}
	if _, err := runImport(t, target, "--id-map", filepath.Join(t.TempDir(), "ids.csv"), f.Source); err == nil {
		t.Error("--id-map on a memory file accepted")
	} else if _, ok := errors.AsType[*boot.UsageError](err); !ok {
		t.Errorf("--id-map on a memory file: %v is not a usage error", err)
	}
}

// TestImportMongoObjectIDRoutes, end to end: after `import lb3` of a
// mongoexport folder (models/lb3's fixture), a user's ObjectId works where
// LoopBack clients and mailed links put it — /api/users/<objectid> with
// the user's token, and confirm?uid=<objectid> — and answers carry the new
// integer id.
func TestImportMongoObjectIDRoutes(t *testing.T) {
	t.Parallel()
	const (
		annOID, annID = "65a0f0c0e1d2c3b4a5968778", 2 // the fixture's users, numbered in ObjectId order
		bobOID        = "5fc1f2ae9b1e8a3d4c5b6a70"
		bobLink       = "8f14e45fceea167a5a36dedd4bea2543" // bob's pending verificationToken
	)
	target := testdb.DSN(t)
	if out, err := runImport(t, target, "--allow-eternal-tokens", filepath.Join("..", "models", "lb3", "testdata", "mongo", "lines")); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	app := newTestApp(t, map[string]string{"LATCHKEY_DB": target})
	l, err := app.DB.ReadImportLedger(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Aliases) != 3 {
		t.Fatalf("aliases after the import: %v, want the three users' ObjectIds", l.Aliases)
	}
	r := serve(app, "192.0.2.1", "POST", "/api/users/login", `{"email":"ann@example.com","password":"alice-pw-1"}`)
	var login struct {
		ID     string `json:"id"`
		UserID int64  `json:"userId"`
	}
	if err := json.Unmarshal([]byte(r.body), &login); r.status != 200 || err != nil || login.UserID != annID {
		t.Fatalf("ann's login: %d %s", r.status, r.body)
	}
	want := serve(app, "192.0.2.1", "GET", fmt.Sprintf("/api/users/%d", annID), "", "Authorization: "+login.ID)
	if want.status != 200 || !strings.Contains(want.body, fmt.Sprintf(`"id":%d`, annID)) {
		t.Fatalf("GET by the integer id: %d %s", want.status, want.body)
	}
	for _, oid := range []string{annOID, strings.ToUpper(annOID)} {
		if got := serve(app, "192.0.2.1", "GET", "/api/users/"+oid, "", "Authorization: "+login.ID); got != want {
			t.Errorf("GET /api/users/%s: %d %s\nwant %d %s", oid, got.status, got.body, want.status, want.body)
		}
	}
	if got := serve(app, "192.0.2.1", "GET", "/api/users/"+bobOID, "", "Authorization: "+login.ID); got.status != 401 {
		t.Errorf("bob's ObjectId with ann's token: %d %s", got.status, got.body)
	}
	if got := serve(app, "192.0.2.1", "GET", "/api/users/confirm?uid="+bobOID+"&token="+bobLink, ""); got.status != 204 {
		t.Errorf("bob's LoopBack link, uid his ObjectId: %d %s", got.status, got.body)
	}
}

// exitCode is main's exit status for Run's error: 0 done, 2 a usage
// error, 1 anything else.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if _, ok := errors.AsType[*boot.UsageError](err); ok {
		return 2
	}
	return 1
}

// TestImportLB3AppFlags: --lb3-app reads the app's model JSON (the
// fixture's own, testdata/lb3, whose allowEternalTokens brings the eternal
// token in without --allow-eternal-tokens, and whose settings the report
// notes); an app that cannot be read is a usage error (2), and so is a
// realmDelimiter without --ignore-realms; a refusal of the data stays 1.
func TestImportLB3AppFlags(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Memory)
	target := testdb.DSN(t)
	const app = "../testdata/lb3"

	out, err := runImport(t, target, "--dry-run", "--skip-duplicates", f.Source)
	if exitCode(err) != 0 || !strings.Contains(out, "eternal tokens (ttl -1) without --allow-eternal-tokens") {
		t.Fatalf("without the app: exit %d (%v), the eternal token is not skipped:\n%s", exitCode(err), err, out)
	}
	out, err = runImport(t, target, "--dry-run", "--skip-duplicates", "--lb3-app", app, f.Source)
	if exitCode(err) != 0 {
		t.Fatalf("with the app: exit %d: %v\n%s", exitCode(err), err, out)
	}
	for _, want := range []string{"with the model JSON of the LoopBack app " + app, `user model "user"`, "from the LoopBack app's model JSON:",
		"LATCHKEY_ALLOW_ETERNAL_TOKENS=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run's report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "without --allow-eternal-tokens") {
		t.Errorf("the app's allowEternalTokens did not bring the eternal token in:\n%s", out)
	}

	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "server"), 0o755)
	os.WriteFile(filepath.Join(bad, "server", "model-config.json"), []byte(`{"user": {"dataSource": "db"},}`), 0o644)
	// A realmDelimiter app whose user model holds the fixture's users.
	realms := t.TempDir()
	os.MkdirAll(filepath.Join(realms, "server"), 0o755)
	os.MkdirAll(filepath.Join(realms, "common", "models"), 0o755)
	os.WriteFile(filepath.Join(realms, "server", "model-config.json"), []byte(`{"user": {"dataSource": "db"}}`), 0o644)
	os.WriteFile(filepath.Join(realms, "common", "models", "user.json"), []byte(`{"name": "user", "base": "User", "realmDelimiter": ":"}`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--lb3-app", filepath.Join(t.TempDir(), "nowhere"), f.Source}, 2, "does not exist"},
		{[]string{"--lb3-app", bad, f.Source}, 2, filepath.Join(bad, "server", "model-config.json")},
		{[]string{"--dry-run", "--skip-duplicates", "--lb3-app", realms, f.Source}, 2, "--ignore-realms"},
		{[]string{"--lb3-app", app, f.Source}, 1, "Ann@x.com"}, // the case duplicate: a refusal, not a usage error
	} {
		_, err := runImport(t, target, c.args...)
		if exitCode(err) != c.code || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("%q: exit %d, want %d with %q: %v", c.args, exitCode(err), c.code, c.want, err)
		}
	}
	out, err = runImport(t, target, "--dry-run", "--skip-duplicates", "--ignore-realms", "--lb3-app", realms, f.Source)
	if exitCode(err) != 0 || !strings.Contains(out, `realmDelimiter ":" ignored (--ignore-realms)`) {
		t.Errorf("--ignore-realms: exit %d (%v):\n%s", exitCode(err), err, out)
	}
	if !noRows(t, target) {
		t.Fatalf("dry runs and refusals wrote: %s", tableCounts(t, target))
	}

	// The import itself, eternal token and all, with no --allow-eternal-tokens.
	out, err = runImport(t, target, "--skip-duplicates", "--duplicates-csv", filepath.Join(t.TempDir(), "dups.csv"), "--lb3-app", app, f.Source)
	if exitCode(err) != 0 || !strings.Contains(out, "LATCHKEY_ALLOW_ETERNAL_TOKENS=true") {
		t.Fatalf("import: exit %d (%v):\n%s", exitCode(err), err, out)
	}
	ctx := context.Background()
	db, err := models.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, models.DefaultLimitConfig()),
		models.Config{AllowEternalTokens: true, TokenTTL: 1209600, TokenMaxTTL: 31556926})
	eternal := 0
	for _, tok := range f.TokensIn(lb3store.StateLive) {
		if tok.TTL != -1 {
			continue
		}
		eternal++
		if s, err := u.Authenticate(ctx, tok.ID, models.ScopeSession); err != nil || s == nil || s.User.ID != tok.UserID {
			t.Errorf("the eternal token %s: %+v, %v", tok.Key, s, err)
		}
	}
	if eternal == 0 {
		t.Error("the fixture has no eternal token: the test proves nothing")
	}
}
