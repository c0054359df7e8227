package lb3_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// mongoNow is the time the fixtures in testdata/mongo are read at: their
// live tokens are live then, whatever the date the tests run on.
var mongoNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The fixtures' users, in the order their ObjectIds sort (so their new
// ids), with the passwords behind their bcryptjs hashes
// (models/testdata/bcryptjs.json).
var mongoUsers = []struct {
	oid, email, username, realm, password string
	verified                              *bool
	id                                    int64
}{
	{"5fc1f2ae9b1e8a3d4c5b6a70", "Bob@Example.com", "", "", "x", ptr(false), 1},
	{"65a0f0c0e1d2c3b4a5968778", "ann@example.com", "ann", "acme", "alice-pw-1", ptr(true), 2},
	{"6704a1b2c3d4e5f601234567", "cid@example.com", "cid", "", "Ünïcödé 🔐 pass phrase", nil, 3},
}

func ptr[T any](v T) *T { return &v }

// The fixtures' tokens: live ones authenticate as user (scope), the others
// not at all.
var mongoTokens = []struct {
	id    string
	user  int64 // 0: must not authenticate
	scope string
	why   string
}{
	{"Dhi5Qp0aZr8Yx2Wm4Nv6Lk1Jh3Gf7Ds9Ap0Ob2Ic4Ud6Ye8Tr1Ew3Qa5Zs7Xd9Cf", 2, models.ScopeSession, "live session"},
	{"adEE7rT1yU2iO3pA4sD5fG6hJ7kL8zX9cV0bN1mQ2wE3rT4yU5iO6pA7sD8fG9hJ", 0, "", "expired"},
	{"Rz4Kq8Wm2Xn6Vb0Lc3Jd7Hf1Gs5Ta9Py2Ue6Io0Om4Nl8Bk3Mj7Hh1Gg5Ff9Ee3D", 1, models.ScopeReset, "live reset token, userId a hex string"},
	{"Et3rNaL0k3nX9mQ2wE7rT4yU5iO6pA7sD8fG9hJ1kL2zX3cV4bN5mQ6wE7rT8yU9", 3, models.ScopeSession, "eternal"},
	{"G0n3u5eRt0k3nA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z", 0, "", "expired, of a deleted user"},
	{"0ld5e5510nT0k3nQwErTyUiOpAsDfGhJkLzXcVbNm1234567890qWeRtYuIoPaSd", 0, "", "expired a millisecond ago, scopes [DEFAULT]"},
}

// TestImportMongo imports both fixture folders (line-delimited relaxed
// Extended JSON with the custom "user" model; --jsonArray canonical with
// the built-in "User") and checks the result through the account service.
func TestImportMongo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dir, model string }{{"lines", "user"}, {"array", "User"}} {
		t.Run(c.dir, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := filepath.Join("testdata", "mongo", c.dir)
			users, rep := importMongo(t, src, testdb.DSN(t))
			if rep.UserModel != c.model || rep.Users != 3 || rep.Sessions != 2 || rep.ResetTokens != 1 || rep.Verifications != 1 ||
				rep.Skipped[lb3.SkipExpired] != 3 || rep.Identities != 1 || len(rep.NeedsReset) != 0 {
				t.Errorf("report %+v", rep)
			}
			for _, mu := range mongoUsers {
				u, err := users.FindUserByID(ctx, mu.id)
				if err != nil {
					t.Fatalf("user %d (%s): %v", mu.id, mu.oid, err)
				}
				realm := ""
				if u.Realm != nil {
					realm = *u.Realm
				}
				if u.Email != mu.email || u.Username != mu.username || realm != mu.realm || !reflect.DeepEqual(u.EmailVerified, mu.verified) {
					t.Errorf("user %d: %q %q %q %v", mu.id, u.Email, u.Username, realm, u.EmailVerified)
				}
				if lb3ID, _, _ := u.Profile.String("lb3Id"); lb3ID != mu.oid {
					t.Errorf("user %d: lb3Id %q, want %s", mu.id, lb3ID, mu.oid)
				}
				if _, who, err := users.Login(ctx, models.Credentials{Email: mu.email, Password: mu.password}, models.ClientMeta{}); err != nil || who.ID != mu.id {
					t.Errorf("user %d: login with the LoopBack password: %v", mu.id, err)
				}
			}
			ann, _ := users.FindUserByID(ctx, 2)
			want := `{"lb3Id":"65a0f0c0e1d2c3b4a5968778","fullName":"Ann Lee","age":41,"score":2.5,"signedUpAt":"2024-01-12T08:30:00.250Z",` +
				`"tags":["admin","beta"],"address":{"city":"Oslo","zip":"0150"},"referrer":"5fc1f2ae9b1e8a3d4c5b6a70"}`
			if got, _ := json.Marshal(ann.Profile); !jsonEqual(got, want) {
				t.Errorf("ann's profile\n got %s\nwant %s", got, want)
			}
			cid, _ := users.FindUserByID(ctx, 3)
			if v, _ := cid.Profile.Get("visits"); string(v) != "9007199254740993" {
				t.Errorf("a 64-bit integer lost digits: %s", v)
			}
			if v, err := users.ConfirmEmail(ctx, "1", "8f14e45fceea167a5a36dedd4bea2543", models.ClientMeta{}); err != nil || !*v.EmailVerified {
				t.Errorf("bob's pending verification link: %v", err)
			}
			for _, tok := range mongoTokens {
				for _, scope := range []string{models.ScopeSession, models.ScopeReset} {
					sess, err := users.Authenticate(ctx, tok.id, scope)
					if err != nil {
						t.Fatal(err)
					}
					live := tok.user != 0 && scope == tok.scope
					switch {
					case live && (sess == nil || sess.User.ID != tok.user):
						t.Errorf("token %s… (%s) as %q: %+v, want user %d", tok.id[:6], tok.why, scope, sess, tok.user)
					case !live && sess != nil:
						t.Errorf("token %s… (%s) as %q: authenticates as %d", tok.id[:6], tok.why, scope, sess.User.ID)
					}
				}
			}
			nu, err := users.CreateUser(ctx, models.Fields{{Name: "email", Value: json.RawMessage(`"dee@example.com"`)},
				{Name: "password", Value: json.RawMessage(`"a fresh passphrase"`)}}, models.ClientMeta{})
			if err != nil || nu.ID <= 3 {
				t.Errorf("the next sign-up: %+v, %v", nu, err)
			}
		})
	}
}

// importMongo checks and writes the folder src into a fresh store at dsn
// at mongoNow, eternal tokens allowed.
func importMongo(t *testing.T, src, dsn string) (*models.Users, lb3.Report) {
	t.Helper()
	ctx := context.Background()
	store, err := lb3.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.Kind() != "mongo" {
		t.Fatalf("%s opened as %q", src, store.Kind())
	}
	plan, err := store.Check(ctx, lb3.Options{Now: mongoNow, AllowEternalTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var rep lb3.Report
	if err := db.Write(ctx, mongoNow, func(tx *models.Tx) error {
		var err error
		rep, err = plan.Write(ctx, tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	clk := testkit.NewClock(mongoNow)
	lc := models.DefaultLimitConfig()
	lc.Now = clk.Now
	users := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, lc),
		models.Config{Password: models.Policy{MinLength: 8}, AllowEternalTokens: true, TokenTTL: 1209600, TokenMaxTTL: 31556926,
			VerifyTTL: 86400, Now: clk.Now})
	return users, rep
}

func jsonEqual(a []byte, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// TestMongoIDs: the ObjectId → id mapping, in id order, as CSV.
func TestMongoIDs(t *testing.T) {
	t.Parallel()
	store, err := lb3.Open(context.Background(), filepath.Join("testdata", "mongo", "lines"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := store.MongoIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := lb3.WriteMongoIDs(&b, ids); err != nil {
		t.Fatal(err)
	}
	want := "model,objectId,id\nuser,5fc1f2ae9b1e8a3d4c5b6a70,1\nuser,65a0f0c0e1d2c3b4a5968778,2\nuser,6704a1b2c3d4e5f601234567,3\n"
	if b.String() != want {
		t.Errorf("CSV\n%s\nwant\n%s", b.String(), want)
	}
}

// TestImportMongoBad: broken input is refused by Check, before anything
// is written, with the file and the line.
func TestImportMongoBad(t *testing.T) {
	t.Parallel()
	const missingUser = `{"_id":"Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6Ll5Kk4Jj3Ii2Hh1Gg0Ff9E","ttl":1209600,` +
		`"created":{"$date":"2026-11-24T00:00:00Z"},"userId":{"$oid":"6001020304050607080900bb"}}`
	for _, c := range []struct {
		name, file string
		edit       func(lines []string) []string
		want       []string
	}{
		{"broken line", "AccessToken.json", func(l []string) []string { l[2] = l[2][:strings.Index(l[2], `,"scopes"`)]; return l },
			[]string{"AccessToken.json line 3", "does not end on its line"}},
		{"broken string", "user.json", func(l []string) []string { l[1] = l[1][:60]; return l },
			[]string{"user.json line 2", "line break inside a string"}},
		{"invalid JSON", "user.json", func(l []string) []string { l[2] = strings.Replace(l[2], `,"password"`, `"password"`, 1); return l },
			[]string{"user.json line 3", "invalid character"}},
		{"live token of a missing user", "AccessToken.json", func(l []string) []string { return append(l[:4], append([]string{missingUser}, l[4:]...)...) },
			[]string{"AccessToken.json line 5", "6001020304050607080900bb", "no user in"}},
		{"unknown $ type", "user.json", func(l []string) []string {
			l[2] = strings.Replace(l[2], `"username":"cid"`, `"avatar":{"$binary":{"base64":"AAEC","subType":"00"}}`, 1)
			return l
		}, []string{"user.json line 3", "avatar", "$binary", "not supported"}},
		{"bad date", "AccessToken.json", func(l []string) []string {
			l[0] = strings.Replace(l[0], `"2026-11-20T10:00:00.000Z"`, `"yesterday"`, 1)
			return l
		}, []string{"AccessToken.json line 1", "created", "$date", "ISO-8601"}},
		{"user without email", "user.json", func(l []string) []string {
			l[1] = strings.Replace(l[1], `"email":"Bob@Example.com",`, ``, 1)
			return l
		}, []string{"user.json line 2", "no email"}},
		{"string id", "user.json", func(l []string) []string {
			l[1] = strings.Replace(l[1], `{"$oid":"5fc1f2ae9b1e8a3d4c5b6a70"}`, `"bob"`, 1)
			return l
		}, []string{"user.json line 2", "neither an ObjectId nor"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := copyFixture(t, "lines")
			p := filepath.Join(dir, c.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			lines := c.edit(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
			os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
			store, err := lb3.Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = store.Check(context.Background(), lb3.Options{Now: mongoNow, AllowEternalTokens: true})
			var ee *lb3.ExportError
			if !errors.As(err, &ee) {
				t.Fatalf("want an *lb3.ExportError, got %v", err)
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// TestImportMongoForms: the same collection as one pretty-printed array,
// as pretty documents one after another, and empty, reads the same; a
// truncated array names where it ends.
func TestImportMongoForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join("testdata", "mongo", "lines", "user.json"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d any
		json.Unmarshal([]byte(l), &d)
		docs = append(docs, d)
	}
	pretty, _ := json.MarshalIndent(docs, "", "  ")
	var concat []byte
	for _, d := range docs {
		x, _ := json.MarshalIndent(d, "", "\t")
		concat = append(append(concat, x...), '\n')
	}
	for name, data := range map[string][]byte{"pretty array": pretty, "pretty documents": concat, "with CRLF": bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "user.json"), data, 0o600)
		store, err := lb3.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := store.Check(ctx, lb3.Options{Now: mongoNow})
		if err != nil || plan.Report().Users != 3 || plan.Report().UserModel != "user" {
			t.Errorf("%s: %+v, %v", name, plan, err)
		}
	}
	for at, want := range map[int]string{len(pretty) - 2: "ends inside the array", len(pretty) / 2: "line", 1: "ends inside the array"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "user.json"), pretty[:at], 0o600)
		store, _ := lb3.Open(ctx, dir)
		if _, err := store.Check(ctx, lb3.Options{Now: mongoNow}); err == nil || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "user.json line ") {
			t.Errorf("cut at %d: %v", at, err)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "User.json"), nil, 0o600)
	store, _ := lb3.Open(ctx, dir)
	if plan, err := store.Check(ctx, lb3.Options{Now: mongoNow}); err != nil || plan.Report().Users != 0 {
		t.Errorf("an empty export: %v", err)
	}
	if _, err := lb3.Open(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "User.json") {
		t.Errorf("a folder without a user file: %v", err)
	}
}

// copyFixture copies testdata/mongo/<name> into a temporary folder.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "mongo", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600)
	}
	return dir
}
