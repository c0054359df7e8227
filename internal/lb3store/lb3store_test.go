package lb3store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"github.com/latchkey/latchkey/models/lb3"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/lb3store"
)

var (
	tokenID     = regexp.MustCompile(`^[A-Za-z0-9]{64}$`)
	placeholder = regexp.MustCompile(`^[0-9]+@loopback\.google\.com$`)
)

// checkDescription checks that the app made every case the importer's
// tests rely on, and that LoopBack's own verdict agrees with each state.
func checkDescription(t *testing.T, f lb3store.Fixture) {
	t.Helper()
	if f.Versions["loopback"] != "3.28.0" {
		t.Errorf("loopback version %q, want 3.28.0", f.Versions["loopback"])
	}
	if !f.Settings.AllowEternalTokens || !f.Settings.CaseSensitiveEmail || !f.Settings.RestrictResetPasswordTokenScope {
		t.Errorf("settings %+v: want allowEternalTokens, caseSensitiveEmail, restrictResetPasswordTokenScope", f.Settings)
	}

	alice := f.User(t, "alice")
	if alice.EmailVerified == nil || !*alice.EmailVerified || alice.Extra["fullName"] != "Alice Liddell" ||
		alice.Extra["age"] != 31.0 || alice.Extra["preferences"] == nil || alice.Extra["tags"] == nil {
		t.Errorf("alice = %+v: want verified, with extra fields", alice)
	}
	bob := f.User(t, "bob")
	if bob.Realm != "acme" || bob.EmailVerified == nil || *bob.EmailVerified || len(bob.VerificationToken) != 128 {
		t.Errorf("bob = %+v: want realm acme, unverified, a 128-hex verificationToken pending", bob)
	}
	if carol := f.User(t, "carol"); carol.EmailVerified != nil {
		t.Errorf("carol.emailVerified = %v, want unset", *carol.EmailVerified)
	}
	for _, u := range f.Users {
		if !strings.HasPrefix(u.PasswordHash, "$2a$10$") || len(u.PasswordHash) != 60 {
			t.Errorf("user %s: hash %q is not bcryptjs's $2a$10$", u.Key, u.PasswordHash)
		}
		if u.Password == "" && u.Key != "gil" {
			t.Errorf("user %s has no plaintext password", u.Key)
		}
	}

	gil := f.User(t, "gil")
	if !gil.PlaceholderEmail || !placeholder.MatchString(gil.Email) || gil.Username != "google-login.109876543210987654321" {
		t.Errorf("gil = %+v: want passport's placeholder email and username", gil)
	}
	if len(f.Identities) != 1 {
		t.Fatalf("%d identities, want 1", len(f.Identities))
	}
	id := f.Identities[0]
	if id.Provider != "google-login" || id.ExternalID != "109876543210987654321" || id.UserID != gil.ID ||
		id.Credentials["accessToken"] == nil || id.Profile["provider"] != "google" {
		t.Errorf("identity = %+v", id)
	}
	if len(f.Credentials) != 1 || f.Credentials[0].UserID != alice.ID || f.Credentials[0].Provider != "github-link" {
		t.Errorf("credentials = %+v: want one github-link on alice", f.Credentials)
	}

	if len(f.Duplicates) != 1 || len(f.Duplicates[0].Users) != 2 {
		t.Fatalf("duplicates = %+v, want one pair", f.Duplicates)
	}
	a, b := f.Duplicates[0].Users[0], f.Duplicates[0].Users[1]
	if a.ID == b.ID || a.Email == b.Email || !strings.EqualFold(a.Email, b.Email) {
		t.Errorf("duplicate pair %+v, %+v: want two ids, emails equal but for case", a, b)
	}

	if len(f.Roles) != 1 || f.Roles[0].User != "alice" || f.Roles[0].PrincipalID != "1" {
		t.Errorf("roles = %+v: want admin mapped to alice (principalId \"1\")", f.Roles)
	}

	var eternal, reset bool
	for _, tok := range f.Tokens {
		if !tokenID.MatchString(tok.ID) {
			t.Errorf("token %s: id %q is not 64 base62 characters", tok.Key, tok.ID)
		}
		if tok.Created.IsZero() || tok.UserID != f.User(t, tok.User).ID {
			t.Errorf("token %s: created %v, userId %d", tok.Key, tok.Created, tok.UserID)
		}
		want := map[string]string{lb3store.StateLive: "valid", lb3store.StateExpired: "invalid", lb3store.StateLoggedOut: ""}[tok.State]
		if tok.LB3 != want || tok.InStore != (tok.State != lb3store.StateLoggedOut) {
			t.Errorf("token %s (%s): LoopBack said %q, inStore %v", tok.Key, tok.State, tok.LB3, tok.InStore)
		}
		eternal = eternal || tok.TTL == -1 && tok.State == lb3store.StateLive
		reset = reset || slices.Equal(tok.Scopes, []string{"reset-password"}) && tok.TTL == 900
	}
	for _, state := range []string{lb3store.StateLive, lb3store.StateExpired, lb3store.StateLoggedOut} {
		if len(f.TokensIn(state)) == 0 {
			t.Errorf("no %s token", state)
		}
	}
	if !eternal || !reset {
		t.Errorf("eternal token made: %v, reset-scoped token made: %v", eternal, reset)
	}

	if f.Counts["user"] != len(f.Users) || f.Counts["AccessToken"] != len(f.Tokens)-len(f.TokensIn(lb3store.StateLoggedOut)) {
		t.Errorf("counts %v for %d users and %d tokens", f.Counts, len(f.Users), len(f.Tokens))
	}
}

func TestMakeMemory(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Memory)
	checkDescription(t, f)

	// The juggler's saveToFile: {"ids": {model: next}, "models": {model:
	// {id: "<record as a JSON string>"}}}.
	b, err := os.ReadFile(f.Source)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		IDs    map[string]int               `json:"ids"`
		Models map[string]map[string]string `json:"models"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("memory file: %v", err)
	}
	records := func(model string) map[string]map[string]any {
		out := map[string]map[string]any{}
		for key, s := range file.Models[model] {
			var rec map[string]any
			if err := json.Unmarshal([]byte(s), &rec); err != nil {
				t.Fatalf("%s[%s] is not a JSON string of a record: %v", model, key, err)
			}
			out[key] = rec
		}
		return out
	}
	users := records("user")
	if len(users) != len(f.Users) || len(file.Models["User"]) != 0 {
		t.Errorf("memory file: %d user records, %d User records; want %d and 0", len(users), len(file.Models["User"]), len(f.Users))
	}
	for _, u := range f.Users {
		rec := users[strconv.FormatInt(u.ID, 10)]
		if rec == nil || rec["email"] != u.Email || rec["password"] != u.PasswordHash {
			t.Errorf("user %s: record %v", u.Key, rec)
		}
		if file.IDs["user"] <= int(u.ID) {
			t.Errorf("ids.user = %d, not above id %d", file.IDs["user"], u.ID)
		}
	}
	tokens := records("AccessToken")
	for _, tok := range f.Tokens {
		rec, ok := tokens[tok.ID]
		if ok != tok.InStore {
			t.Errorf("token %s (%s): in file %v", tok.Key, tok.State, ok)
			continue
		}
		if !ok {
			continue
		}
		created, err := time.Parse(time.RFC3339Nano, rec["created"].(string))
		if err != nil || !created.Equal(tok.Created) || rec["ttl"] != float64(tok.TTL) || rec["userId"] != float64(tok.UserID) {
			t.Errorf("token %s: record %v, want %+v", tok.Key, rec, tok)
		}
	}
	if len(tokens) != len(f.Tokens)-len(f.TokensIn(lb3store.StateLoggedOut)) {
		t.Errorf("%d token records", len(tokens))
	}
	if ids := records("UserIdentity"); len(ids) != 1 {
		t.Errorf("%d UserIdentity records, want 1", len(ids))
	}
}

func TestMakeMySQL(t *testing.T) {
	t.Parallel()
	var source string
	t.Run("make", func(t *testing.T) {
		f := lb3store.Make(t, lb3store.MySQL)
		source = f.Source
		checkDescription(t, f)
		db, err := lb3store.OpenMySQL(f.Source)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		checkSQL(t, f, sqlQuerier{db}, sqlNames{user: "`user`", builtin: "`User`", token: "AccessToken", identity: "UserIdentity",
			tokenCols: "id, ttl, created, userId, scopes", emailByID: "SELECT email FROM `user` WHERE id = ?"})
		// MariaDB DATETIME keeps whole seconds, in UTC.
		for _, tok := range f.TokensIn(lb3store.StateLive) {
			if tok.Created.Nanosecond() != 0 {
				t.Errorf("token %s created %v: want whole seconds from DATETIME", tok.Key, tok.Created)
			}
		}
	})
	if source == "" {
		return // skipped
	}
	// The subtest's cleanup dropped its database.
	cfg, err := lb3.MySQLConfig(source)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.DBName
	db, err := lb3store.OpenMySQL(strings.TrimSuffix(source, name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still there after cleanup (count %d, err %v)", name, n, err)
	}
}

func TestMakePostgres(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Postgres)
	checkDescription(t, f)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db := pgxQuerier{conn}
	// "User" and "user" are one table on PostgreSQL (names lower-cased).
	checkSQL(t, f, db, sqlNames{user: `"user"`, token: "accesstoken", identity: "useridentity",
		tokenCols: "id, ttl, created, userid, scopes", emailByID: `SELECT email FROM "user" WHERE id = $1`})
	var col string
	if err := conn.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = 'accesstoken' AND column_name = 'created'`).Scan(&col); err != nil ||
		col != "timestamp with time zone" {
		t.Errorf("accesstoken.created is %q (%v), want timestamp with time zone", col, err)
	}
}

// querier is what checkSQL needs from *sql.DB and from a pgx connection.
type querier interface {
	count(t *testing.T, query string) int
	rows(t *testing.T, query string) [][]any
	email(t *testing.T, query string, id int64) string
}

type sqlNames struct {
	user, builtin, token, identity string
	tokenCols                      string
	emailByID                      string
}

// checkSQL counts users, tokens and identities in the tables the connector
// made and matches each token row with the description.
func checkSQL(t *testing.T, f lb3store.Fixture, db querier, n sqlNames) {
	t.Helper()
	if got := db.count(t, "SELECT COUNT(*) FROM "+n.user); got != len(f.Users) {
		t.Errorf("%s holds %d rows, want %d", n.user, got, len(f.Users))
	}
	if n.builtin != "" {
		if got := db.count(t, "SELECT COUNT(*) FROM "+n.builtin); got != 0 {
			t.Errorf("%s holds %d rows, want 0", n.builtin, got)
		}
	}
	for _, u := range f.Users {
		if got := db.email(t, n.emailByID, u.ID); got != u.Email {
			t.Errorf("user %s (id %d): email %q, want %q", u.Key, u.ID, got, u.Email)
		}
	}
	if got := db.count(t, "SELECT COUNT(*) FROM "+n.identity); got != len(f.Identities) {
		t.Errorf("%s holds %d rows, want %d", n.identity, got, len(f.Identities))
	}
	stored := map[string][]any{}
	for _, r := range db.rows(t, "SELECT "+n.tokenCols+" FROM "+n.token) {
		stored[r[0].(string)] = r
	}
	for _, tok := range f.Tokens {
		r, ok := stored[tok.ID]
		if ok != tok.InStore {
			t.Errorf("token %s (%s): in %s %v", tok.Key, tok.State, n.token, ok)
			continue
		}
		if !ok {
			continue
		}
		ttl, created, userID := asInt(r[1]), r[2].(time.Time), asInt(r[3])
		if ttl != tok.TTL || !created.Equal(tok.Created) || userID != tok.UserID {
			t.Errorf("token %s: row ttl %d created %v userId %d, want %+v", tok.Key, ttl, created, userID, tok)
		}
		wantScopes := ""
		if tok.Scopes != nil {
			b, _ := json.Marshal(tok.Scopes)
			wantScopes = string(b)
		}
		if got := asString(r[4]); got != wantScopes {
			t.Errorf("token %s: scopes column %q, want %q", tok.Key, got, wantScopes)
		}
	}
	if len(stored) != len(f.Tokens)-len(f.TokensIn(lb3store.StateLoggedOut)) {
		t.Errorf("%s holds %d rows", n.token, len(stored))
	}
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	}
	return -999
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// sqlQuerier adapts *sql.DB.
type sqlQuerier struct{ *sql.DB }

func (q sqlQuerier) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := q.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (q sqlQuerier) email(t *testing.T, query string, id int64) string {
	t.Helper()
	var s string
	if err := q.QueryRow(query, id).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

func (q sqlQuerier) rows(t *testing.T, query string) [][]any {
	t.Helper()
	rs, err := q.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	cols, _ := rs.Columns()
	var out [][]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if b, ok := vals[0].([]byte); ok {
			vals[0] = string(b)
		}
		out = append(out, vals)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pgxQuerier adapts a pgx connection.
type pgxQuerier struct{ conn *pgx.Conn }

func (q pgxQuerier) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := q.conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (q pgxQuerier) email(t *testing.T, query string, id int64) string {
	t.Helper()
	var s string
	if err := q.conn.QueryRow(context.Background(), query, id).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

func (q pgxQuerier) rows(t *testing.T, query string) [][]any {
	t.Helper()
	rs, err := q.conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	var out [][]any
	for rs.Next() {
		vals, err := rs.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
