package lb3_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// The fixture apps in testdata/app:
//
//   - stock: the user-management example's shape, "user" based on "User",
//     caseSensitiveEmail false at the top level of its JSON and
//     emailVerificationRequired in model-config.json's options.
//   - renamed: "customer" based on BaseUser (server/models/base-user.json,
//     named from its file, configured nowhere) based on User; tables,
//     collections and columns renamed for mysql, postgresql and memory; a
//     token model "authToken"; settings at the top level and in
//     "options", some inherited.
//   - realms: "member" with realmRequired and realmDelimiter ":".
const (
	stockApp   = "testdata/app/stock"
	renamedApp = "testdata/app/renamed"
	realmsApp  = "testdata/app/realms"
	// lb3App is the LoopBack app internal/lb3store runs: its model JSON
	// is what made the stores the other tests read.
	lb3App = "../../testdata/lb3"
)

func readApp(t *testing.T, dir string) *lb3.App {
	t.Helper()
	a, err := lb3.ReadApp(dir)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReadApp(t *testing.T) {
	t.Parallel()
	t.Run("stock", func(t *testing.T) {
		a := readApp(t, stockApp)
		if a.UserModel != "user" || a.TokenModel != "AccessToken" || a.IdentityModel != "UserIdentity" || a.CredentialModel != "UserCredential" {
			t.Errorf("models %q %q %q %q", a.UserModel, a.TokenModel, a.IdentityModel, a.CredentialModel)
		}
		want := lb3.UserSettings{File: filepath.Join(stockApp, "common", "models", "user.json"), EmailVerificationRequired: true}
		if a.User != want {
			t.Errorf("settings %+v, want %+v (caseSensitiveEmail false at the top level, emailVerificationRequired from model-config)", a.User, want)
		}
		if _, ok := a.Table("mysql", "user"); ok {
			t.Error("a table renamed in an app that renames none")
		}
		// MySQL keeps names; PostgreSQL lower-cased the built-ins.
		if c := a.Columns("mysql", "user"); c["emailVerified"] != "emailVerified" || c["email"] != "email" {
			t.Errorf("mysql columns %v", c)
		}
		if c := a.Columns("postgresql", "user"); c["emailverified"] != "emailVerified" || c["verificationtoken"] != "verificationToken" {
			t.Errorf("postgresql columns %v", c)
		}
		if c := a.Columns("postgresql", "AccessToken"); c["userid"] != "userId" {
			t.Errorf("AccessToken's postgresql columns %v: want userid, the user relation's foreign key", c)
		}
	})
	t.Run("renamed", func(t *testing.T) {
		a := readApp(t, renamedApp)
		if a.UserModel != "customer" || a.TokenModel != "authToken" || !reflect.DeepEqual(a.UserModels, []string{"customer"}) {
			t.Errorf("models %q %q %v", a.UserModel, a.TokenModel, a.UserModels)
		}
		want := lb3.UserSettings{File: filepath.Join(renamedApp, "common", "models", "customer.json"),
			AllowEternalTokens: true, TTL: 3600, MaxTTL: 86400, ResetPasswordTokenTTL: 1800}
		if a.User != want {
			t.Errorf("settings %+v, want %+v (options over the top level, ttl over the base's, allowEternalTokens inherited)", a.User, want)
		}
		for _, c := range []struct{ connector, model, want string }{
			{"mysql", "customer", "customers"}, // top-level "mysql"
			{"postgresql", "customer", "Customers"},
			{"memory", "customer", "customers"},
			{"mysql", "authToken", "auth_tokens"},
			{"memory", "authToken", "auth_tokens"},
		} {
			if got, ok := a.Table(c.connector, c.model); !ok || got != c.want {
				t.Errorf("Table(%s, %s) = %q, %t; want %q", c.connector, c.model, got, ok, c.want)
			}
		}
		if got, ok := a.Table("mongodb", "customer"); ok {
			t.Errorf("Table(mongodb, customer) = %q: the app renames no collection for MongoDB", got)
		}
		pg := a.Columns("postgresql", "customer")
		for col, prop := range map[string]string{"email_address": "email", "firstname": "firstName", "last_name": "lastName",
			"loyaltytier": "loyaltyTier", "emailverified": "emailVerified", "realm": "realm"} {
			if pg[col] != prop {
				t.Errorf("postgresql column %s → %q, want %q (all: %v)", col, pg[col], prop, pg)
			}
		}
		if _, ok := pg["email"]; ok {
			t.Errorf("postgresql column email maps to %q: email is in email_address", pg["email"])
		}
		my := a.Columns("mysql", "customer")
		if my["email_address"] != "email" || my["firstName"] != "firstName" || my["last_name"] != "lastName" {
			t.Errorf("mysql columns %v", my)
		}
		if c := a.Columns("mysql", "authToken"); c["customer_id"] != "userId" || c["ttl"] != "ttl" {
			t.Errorf("authToken's mysql columns %v", c)
		}
		if a.Columns("mysql", "BaseUser")["email_address"] != "email" {
			t.Error("BaseUser (named from base-user.json) is not read")
		}
	})
	t.Run("realms", func(t *testing.T) {
		a := readApp(t, realmsApp) // no _meta: ../common/models and ./models
		if a.UserModel != "member" || !a.User.RealmRequired || a.User.RealmDelimiter != ":" || !a.User.CaseSensitiveEmail {
			t.Errorf("model %q, settings %+v", a.UserModel, a.User)
		}
	})
	t.Run("testdata/lb3", func(t *testing.T) {
		// Its _meta.sources name loopback's and Passport's packages, which
		// are read as built-ins whether or not node_modules is installed.
		a := readApp(t, lb3App)
		if a.UserModel != "user" || a.TokenModel != "AccessToken" || a.IdentityModel != "UserIdentity" || a.CredentialModel != "UserCredential" {
			t.Errorf("models %q %q %q %q", a.UserModel, a.TokenModel, a.IdentityModel, a.CredentialModel)
		}
		if !a.User.AllowEternalTokens || !a.User.CaseSensitiveEmail || a.User.RealmDelimiter != "" {
			t.Errorf("settings %+v", a.User)
		}
		pg := a.Columns("postgresql", "user")
		if pg["fullname"] != "fullName" || pg["membersince"] != "memberSince" || pg["age"] != "age" {
			t.Errorf("postgresql columns %v", pg)
		}
	})
}

// writeApp writes an app's files (path → content) into a new folder.
func writeApp(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestReadAppErrors: what is not an app, or not JSON, is an error naming
// the folder or the file (and the line).
func TestReadAppErrors(t *testing.T) {
	t.Parallel()
	config := `{"user": {"dataSource": "db"}}`
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("{}"), 0o644)
	for _, c := range []struct {
		name  string
		dir   string
		files map[string]string
		want  []string
	}{
		{"no folder", filepath.Join(t.TempDir(), "nowhere"), nil, []string{"nowhere", "does not exist"}},
		{"a file", file, nil, []string{file, "is a file"}},
		{"no model-config", "", map[string]string{"common/models/user.json": `{}`}, []string{"server/model-config.json"}},
		{"bad model-config", "", map[string]string{"server/model-config.json": "{\n  \"user\": {\"dataSource\": \"db\"},\n  oops\n}"},
			[]string{filepath.Join("server", "model-config.json"), "invalid JSON at line 3, column 3"}},
		{"bad model", "", map[string]string{"server/model-config.json": config, "common/models/user.json": `{"name": "user", "base": "User",}`},
			[]string{filepath.Join("common", "models", "user.json"), "invalid JSON at line 1"}},
		{"model not an object", "", map[string]string{"server/model-config.json": config, "common/models/user.json": `[]`},
			[]string{filepath.Join("common", "models", "user.json")}},
		{"bad sources", "", map[string]string{"server/model-config.json": `{"_meta": {"sources": "../common/models"}}`},
			[]string{"_meta.sources"}},
		{"circle", "", map[string]string{"server/model-config.json": config,
			"common/models/user.json": `{"name": "user", "base": "member"}`, "common/models/member.json": `{"name": "member", "base": "user"}`},
			[]string{"circle", "user → member → user"}},
		{"ttl", "", map[string]string{"server/model-config.json": config, "common/models/user.json": `{"name": "user", "base": "User", "ttl": "two weeks"}`},
			[]string{filepath.Join("common", "models", "user.json"), "ttl", "two weeks"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir
			if dir == "" {
				dir = writeApp(t, c.files)
			}
			a, err := lb3.ReadApp(dir)
			if err == nil {
				t.Fatalf("read: %+v", a)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: lacks %q", err, w)
				}
			}
		})
	}
}

// TestReadAppChoice: several models extending User are told apart by
// AccessToken's user relation; without one the import asks for
// --user-model. A flag wins over the app.
func TestReadAppChoice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := map[string]string{
		"server/model-config.json": `{"AccessToken": {"dataSource": "db"}, "customer": {"dataSource": "db"}, "admin": {"dataSource": "db"},
			"draft": {"dataSource": null}}`,
		"common/models/customer.json": `{"name": "customer", "base": "User"}`,
		"common/models/admin.json":    `{"name": "admin", "base": "User"}`,
		"common/models/draft.json":    `{"name": "draft", "base": "User"}`, // not attached: not a candidate
	}
	a := readApp(t, writeApp(t, files))
	if a.UserModel != "" || !reflect.DeepEqual(a.UserModels, []string{"admin", "customer"}) {
		t.Errorf("two user models: %q of %v", a.UserModel, a.UserModels)
	}
	src := openMemory(t, map[string][]string{"customer": {userRecord(1, "ann@example.com", "")}})
	_, err := src.Check(ctx, lb3.Options{App: a})
	if _, ok := errors.AsType[*lb3.UsageError](err); !ok || !strings.Contains(err.Error(), "--user-model") || !strings.Contains(err.Error(), "admin, customer") {
		t.Errorf("Check with two user models: %v", err)
	}
	if plan, err := src.Check(ctx, lb3.Options{App: a, UserModel: "customer"}); err != nil || plan.Report().Users != 1 {
		t.Errorf("--user-model customer: %v", err)
	}

	files["server/model-config.json"] = `{"AccessToken": {"dataSource": "db", "relations": {"user": {"type": "belongsTo", "model": "customer"}}},
		"customer": {"dataSource": "db"}, "admin": {"dataSource": "db"}}`
	a = readApp(t, writeApp(t, files))
	if a.UserModel != "customer" {
		t.Errorf("AccessToken's user relation names customer; picked %q", a.UserModel)
	}
	// A flag wins over the app: admin holds nobody.
	plan, err := src.Check(ctx, lb3.Options{App: a, UserModel: "admin"})
	if err != nil || plan.Report().UserModel != "admin" || plan.Report().Users != 0 {
		t.Errorf("--user-model admin over the app's customer: %v, %+v", err, plan)
	}
}

// userRecord is a memory-connector user record with the bcryptjs hash of
// "alice-pw-1" (models/testdata/bcryptjs.json); extra is more JSON members.
func userRecord(id int64, email, extra string) string {
	rec := fmt.Sprintf(`{"id":%d,"email":%q,"password":"$2a$10$GGyX6uZOjAOWnbhAR9y9Guph8l1KM4YluNpGf3XUKLFov1fPQPlU."`, id, email)
	if extra != "" {
		rec += "," + extra
	}
	return rec + "}"
}

const appPassword = "alice-pw-1"

// writeMemory writes a memory-connector file holding the records under
// their keys ("models"), and returns its path.
func writeMemory(t *testing.T, records map[string][]string) string {
	t.Helper()
	ms := map[string]map[string]string{}
	for key, recs := range records {
		ms[key] = map[string]string{}
		for _, r := range recs {
			var id struct{ ID any }
			if err := json.Unmarshal([]byte(r), &id); err != nil {
				t.Fatalf("record %s: %v", r, err)
			}
			ms[key][fmt.Sprint(id.ID)] = r
		}
	}
	b, _ := json.Marshal(map[string]any{"ids": map[string]int{}, "models": ms})
	p := filepath.Join(t.TempDir(), "db.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openMemory opens a memory-connector file written by writeMemory.
func openMemory(t *testing.T, records map[string][]string) *lb3.Store {
	t.Helper()
	src, err := lb3.Open(context.Background(), writeMemory(t, records))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// renamedToken is a token of the renamed stores.
type renamedToken struct {
	id      string
	user    int64
	ttl     int64
	created time.Time
	live    bool
}

// renamedTokens are the tokens of the renamed stores: a live session of
// ann, an eternal one of bob (the app's allowEternalTokens, inherited
// from BaseUser, lets it in), an expired one.
func renamedTokens(now time.Time) []renamedToken {
	return []renamedToken{
		{strings.Repeat("Ab1", 21) + "x", 1, 36000, now.Add(-time.Hour), true},
		{strings.Repeat("Et2", 21) + "y", 2, -1, now.Add(-1000 * time.Hour), true},
		{strings.Repeat("Ex3", 21) + "z", 1, 60, now.Add(-time.Hour), false},
	}
}

// checkRenamed imports a renamed store through the renamed app and checks
// what came over: the users from the renamed table with their renamed and
// camel-cased properties under the declared names, the tokens from the
// renamed token table, and the report's notes on the app's settings.
// Without the app the store has no user model.
func checkRenamed(t *testing.T, source string, wantNotes ...string) {
	t.Helper()
	ctx := context.Background()
	src, err := lb3.Open(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Without the app there is no user model (SQL), or an empty one
	// (memory: any model may be in the file).
	if plan, err := src.Check(ctx, lb3.Options{}); err == nil && plan.Report().Users != 0 ||
		err != nil && !strings.Contains(err.Error(), "no user model") {
		t.Errorf("without the app: %v", err)
	}
	a := readApp(t, renamedApp)
	plan, err := src.Check(ctx, lb3.Options{App: a})
	if err != nil {
		t.Fatal(err)
	}
	users, _, rep := importInto(t, lb3store.Fixture{Source: source}, testdb.DSN(t), lb3.Options{App: a})
	if rep.UserModel != "customer" || rep.TokenModel != "authToken" || rep.Users != 2 || rep.Sessions != 2 || rep.Skipped[lb3.SkipExpired] != 1 {
		t.Errorf("report %+v", rep)
	}
	ann, err := users.FindUserByID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	profile := map[string]any{}
	for _, f := range ann.Profile {
		var v any
		json.Unmarshal(f.Value, &v)
		profile[f.Name] = v
	}
	if want := map[string]any{"firstName": "Ann", "lastName": "Lee", "loyaltyTier": 3.0}; ann.Email != "ann@example.com" || !reflect.DeepEqual(profile, want) {
		t.Errorf("ann: %q, profile %v; want %v", ann.Email, profile, want)
	}
	if _, who, err := users.Login(ctx, models.Credentials{Email: "bob@example.com", Password: appPassword}, models.ClientMeta{}); err != nil || who.ID != 2 {
		t.Errorf("Bob@Example.com logs in as bob@example.com: %v", err)
	}
	for _, tok := range renamedTokens(time.Now()) {
		s, err := users.Authenticate(ctx, tok.id, models.ScopeSession)
		switch {
		case err != nil:
			t.Fatal(err)
		case tok.live && (s == nil || s.User.ID != tok.user):
			t.Errorf("token of user %d (ttl %d) does not authenticate", tok.user, tok.ttl)
		case !tok.live && s != nil:
			t.Errorf("the expired token authenticates")
		}
	}
	notes := strings.Join(plan.Report().Settings, "\n")
	for _, want := range append([]string{"LATCHKEY_TOKEN_TTL=3600", "LATCHKEY_TOKEN_MAX_TTL=86400", "LATCHKEY_RESET_TTL=1800",
		"LATCHKEY_ALLOW_ETERNAL_TOKENS=true", "caseSensitiveEmail false"}, wantNotes...) {
		if !strings.Contains(notes, want) {
			t.Errorf("the report's settings lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "realm") {
		t.Errorf("a realm note for an app without realms:\n%s", notes)
	}
}

// TestImportAppMemory: the memory connector keys records by
// memory.collection; a "customer" key with a bad record proves the
// model's name is not read.
func TestImportAppMemory(t *testing.T) {
	t.Parallel()
	iso := func(at time.Time) string { return at.UTC().Format("2006-01-02T15:04:05.000Z") }
	var tokens []string
	for _, tok := range renamedTokens(time.Now()) {
		tokens = append(tokens, fmt.Sprintf(`{"id":%q,"ttl":%d,"created":%q,"userId":%d}`, tok.id, tok.ttl, iso(tok.created), tok.user))
	}
	checkRenamed(t, writeMemory(t, map[string][]string{
		"customers": {userRecord(1, "ann@example.com", `"emailVerified":true,"firstName":"Ann","lastName":"Lee","loyaltyTier":3`),
			userRecord(2, "Bob@Example.com", "")},
		"customer":    {`{"id":"not a number"}`},
		"auth_tokens": tokens,
		"AccessToken": {`{"id":"bad"}`},
	}), `customer read from collection "customers"`, `authToken read from collection "auth_tokens"`)
}

// TestImportAppSQL: tables and columns laid out as loopback-connector-mysql
// and -postgresql make them for the renamed app (§2: MySQL keeps names,
// PostgreSQL lower-cases what it was not told; a renamed table keeps its
// case on both), read back under the app's names.
func TestImportAppSQL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind string
		ddl  []string
	}{
		{lb3store.MySQL, []string{
			"CREATE TABLE customers (id INT(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, realm VARCHAR(512), username VARCHAR(512), " +
				"password VARCHAR(512) NOT NULL, email_address VARCHAR(512) NOT NULL, emailVerified TINYINT(1), verificationToken VARCHAR(512), " +
				"firstName VARCHAR(512), last_name VARCHAR(512), loyaltyTier INT(11))",
			"CREATE TABLE auth_tokens (id VARCHAR(255) NOT NULL PRIMARY KEY, ttl INT(11), scopes TEXT, created DATETIME, customer_id INT(11))",
			// What the same app would have left in the default tables.
			"CREATE TABLE `customer` (id INT(11) PRIMARY KEY, bogus TEXT)",
			"INSERT INTO `customer` VALUES (7, 'not a user')",
		}},
		{lb3store.Postgres, []string{
			`CREATE TABLE "Customers" (realm TEXT, username TEXT, password TEXT NOT NULL, email_address TEXT NOT NULL, emailverified BOOLEAN, ` +
				`verificationtoken TEXT, firstname TEXT, last_name TEXT, loyaltytier INTEGER, id SERIAL PRIMARY KEY)`,
			`CREATE TABLE auth_tokens (id TEXT NOT NULL PRIMARY KEY, ttl INTEGER DEFAULT 1209600, scopes TEXT, created TIMESTAMPTZ, customer_id INTEGER)`,
			`CREATE TABLE customer (id INTEGER PRIMARY KEY, bogus TEXT)`,
			`INSERT INTO customer VALUES (7, 'not a user')`,
		}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			t.Parallel()
			url := lb3store.Database(t, c.kind)
			db := openSQL(t, c.kind, url)
			table, ph := `"Customers"`, func(i int) string { return fmt.Sprintf("$%d", i) }
			if c.kind == lb3store.MySQL {
				table, ph = "customers", func(int) string { return "?" }
			}
			stmts := append(c.ddl, fmt.Sprintf("INSERT INTO %s (id, password, email_address, emailVerified, firstName, last_name, loyaltyTier) "+
				"VALUES (1, %s, 'ann@example.com', true, 'Ann', 'Lee', 3), (2, %s, 'Bob@Example.com', NULL, NULL, NULL, NULL)", table, ph(1), ph(2)))
			hash := "$2a$10$GGyX6uZOjAOWnbhAR9y9Guph8l1KM4YluNpGf3XUKLFov1fPQPlU."
			for i, s := range stmts {
				var args []any
				if i == len(stmts)-1 {
					args = []any{hash, hash}
				}
				if _, err := db.Exec(s, args...); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			for _, tok := range renamedTokens(time.Now()) {
				created := tok.created.UTC()
				if c.kind == lb3store.MySQL {
					created = created.Truncate(time.Second) // DATETIME, UTC wall-clock (§2)
				}
				if _, err := db.Exec(fmt.Sprintf("INSERT INTO auth_tokens (id, ttl, created, customer_id) VALUES (%s, %s, %s, %s)", ph(1), ph(2), ph(3), ph(4)),
					tok.id, tok.ttl, created, tok.user); err != nil {
					t.Fatal(err)
				}
			}
			notes := []string{`customer read from table "customers"`, `authToken read from table "auth_tokens"`,
				"email → email_address", "lastName → last_name", "userId → customer_id"}
			if c.kind == lb3store.Postgres {
				notes[0] = `customer read from table "Customers"`
				notes = append(notes, "PostgreSQL lower-cased come back as the app declares them: firstName, loyaltyTier")
			}
			checkRenamed(t, url, notes...)
		})
	}
}

func openSQL(t *testing.T, kind, url string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if kind == lb3store.MySQL {
		db, err = lb3store.OpenMySQL(url)
	} else {
		db, err = sql.Open("pgx", url)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestImportAppPostgresLB3: the real PostgreSQL store of testdata/lb3,
// imported with that app's model JSON: the custom properties come back
// under the case the app declares (fullName, memberSince), where without
// it they are lower-cased, and the app's allowEternalTokens brings the
// eternal token in without the option.
func TestImportAppPostgresLB3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Postgres)
	opts := lb3.Options{App: readApp(t, lb3App), SkipDuplicates: true}
	users, _, rep := importInto(t, f, testdb.DSN(t), opts)
	if rep.UserModel != "user" || rep.Skipped[lb3.SkipEternal] != 0 {
		t.Errorf("report %+v", rep)
	}
	src, err := lb3.Open(ctx, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plan, err := src.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(plan.Report().Settings, "\n")
	if !strings.Contains(notes, "LATCHKEY_ALLOW_ETERNAL_TOKENS=true") || !strings.Contains(notes, "fullName, memberSince") {
		t.Errorf("settings notes:\n%s", notes)
	}
	sawCased := false
	for _, fu := range f.Users {
		if len(f.Duplicates) > 0 && (fu.Key == "ann-upper" || fu.Key == "ann-lower") {
			continue
		}
		u, err := users.FindUserByID(ctx, fu.ID)
		if err != nil {
			t.Fatalf("user %s: %v", fu.Key, err)
		}
		have := map[string]any{}
		for _, fl := range u.Profile {
			var v any
			json.Unmarshal(fl.Value, &v)
			have[fl.Name] = v
		}
		want := map[string]any{}
		for k, v := range fu.Extra {
			if v != nil {
				want[k] = v
				sawCased = sawCased || k != strings.ToLower(k)
			}
		}
		if !reflect.DeepEqual(have, want) {
			t.Errorf("user %s: profile %v, want %v", fu.Key, have, want)
		}
	}
	if !sawCased {
		t.Error("the fixture has no camel-cased property: the test proves nothing")
	}
	for _, tok := range f.TokensIn(lb3store.StateLive) {
		if tok.TTL != -1 {
			continue
		}
		if s, err := users.Authenticate(ctx, tok.ID, models.ScopeSession); err != nil || s == nil || s.User.ID != tok.UserID {
			t.Errorf("the eternal token %s: %+v, %v", tok.Key, s, err)
		}
	}
}

// TestImportAppRealms: a realmDelimiter refuses the import unless
// --ignore-realms; realmRequired alone imports, with a note. The same
// address in two realms is a duplicate (models.EmailKey), as LoopBack's
// per-realm uniqueness allowed it.
func TestImportAppRealms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openMemory(t, map[string][]string{"member": {
		userRecord(1, "ann@x.com", `"realm":"acme"`),
		userRecord(2, "ann@x.com", `"realm":"beta"`),
		userRecord(3, "bob@x.com", `"realm":"acme"`),
	}})
	a := readApp(t, realmsApp)
	_, err := src.Check(ctx, lb3.Options{App: a, SkipDuplicates: true})
	if _, ok := errors.AsType[*lb3.UsageError](err); !ok {
		t.Fatalf("realmDelimiter without IgnoreRealms: %v", err)
	}
	for _, want := range []string{"realmDelimiter", "acme:ann@example.com", "--ignore-realms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q: %v", want, err)
		}
	}

	_, err = src.Check(ctx, lb3.Options{App: a, IgnoreRealms: true})
	de, ok := errors.AsType[*lb3.DuplicatesError](err)
	if !ok || len(de.Groups) != 1 || de.Groups[0].Key != "ann@x.com" || len(de.Groups[0].Members) != 2 ||
		de.Groups[0].Members[0].ID != 1 || de.Groups[0].Members[1].ID != 2 {
		t.Fatalf("ann@x.com in realms acme and beta: %v", err)
	}

	plan, err := src.Check(ctx, lb3.Options{App: a, IgnoreRealms: true, SkipDuplicates: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := plan.Report()
	notes := strings.Join(rep.Settings, "\n")
	if rep.Users != 1 || !strings.Contains(notes, "--ignore-realms") || !strings.Contains(notes, "unique per realm") {
		t.Errorf("users %d, notes:\n%s", rep.Users, notes)
	}

	only := readApp(t, writeApp(t, map[string]string{
		"server/model-config.json":  `{"member": {"dataSource": "db"}}`,
		"common/models/member.json": `{"name": "member", "base": "User", "realmRequired": true}`,
	}))
	plan, err = src.Check(ctx, lb3.Options{App: only, SkipDuplicates: true})
	if err != nil {
		t.Fatalf("realmRequired alone: %v", err)
	}
	if notes := strings.Join(plan.Report().Settings, "\n"); !strings.Contains(notes, "realmRequired") || !strings.Contains(notes, "does not") {
		t.Errorf("realmRequired notes:\n%s", notes)
	}
}
