package lb3_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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
