package lb3_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// importInto opens the fixture's store, checks it and writes it into a
// fresh store at dsn in one transaction; it returns the account service
// over the target (eternal tokens on, as the fixture app has them).
func importInto(t *testing.T, f lb3store.Fixture, dsn string, opts lb3.Options) (*models.Users, *models.DB, lb3.Report) {
	t.Helper()
	ctx := context.Background()
	src, err := lb3.Open(ctx, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plan, err := src.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := models.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var rep lb3.Report
	err = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		var err error
		rep, err = plan.Write(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := plan.Report(); rep.Users != want.Users || rep.Sessions != want.Sessions || rep.ResetTokens != want.ResetTokens ||
		rep.Verifications != want.Verifications || !reflect.DeepEqual(rep.Skipped, want.Skipped) {
		t.Errorf("Write's report %+v differs from Check's %+v", rep, want)
	}
	users := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, models.DefaultLimitConfig()),
		models.Config{Password: models.Policy{MinLength: 8}, AllowEternalTokens: true, TokenTTL: 1209600, TokenMaxTTL: 31556926, VerifyTTL: 86400})
	return users, db, rep
}

func TestImportMemory(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Memory)
	t.Run("sqlite-or-suite-store", func(t *testing.T) { checkImport(t, f, testdb.DSN(t)) })
	t.Run("postgres", func(t *testing.T) { checkImport(t, f, testdb.Postgres(t)) })
}

func TestImportMySQL(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.MySQL)
	checkImport(t, f, testdb.DSN(t))
}

func TestImportPostgres(t *testing.T) {
	t.Parallel()
	f := lb3store.Make(t, lb3store.Postgres)
	checkImport(t, f, testdb.DSN(t))
}

// checkImport imports f (duplicates skipped, eternal tokens allowed, as
// the fixture app allows them) and checks every user and token through
// the account service.
func checkImport(t *testing.T, f lb3store.Fixture, dsn string) {
	ctx := context.Background()
	users, db, rep := importInto(t, f, dsn, lb3.Options{SkipDuplicates: true, AllowEternalTokens: true})
	dup := map[int64]bool{}
	for _, g := range f.Duplicates {
		for _, m := range g.Users {
			dup[m.ID] = true
		}
	}
	if rep.UserModel != f.Models["user"] || rep.Users != int64(len(f.Users)-len(dup)) {
		t.Errorf("report: model %q, %d users; want %q, %d", rep.UserModel, rep.Users, f.Models["user"], len(f.Users)-len(dup))
	}
	if len(rep.Duplicates) != len(f.Duplicates) || rep.Skipped[lb3.SkipDuplicateUser] != int64(len(dup)) {
		t.Errorf("report: duplicates %+v, skipped %v", rep.Duplicates, rep.Skipped)
	}
	if rep.NotImported["UserIdentity"] != 0 || rep.NotImported["UserCredential"] != 0 || rep.NotImported["RoleMapping"] != int64(len(f.Roles)) {
		t.Errorf("report: not imported %v, want only roles", rep.NotImported)
	}
	var maxID int64
	for _, fu := range f.Users {
		maxID = max(maxID, fu.ID)
		u, err := users.FindUserByID(ctx, fu.ID)
		if dup[fu.ID] {
			if !errors.Is(err, models.ErrNotFound) {
				t.Errorf("duplicate %s imported: %+v, %v", fu.Key, u, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("user %s: %v", fu.Key, err)
			continue
		}
		realm := ""
		if u.Realm != nil {
			realm = *u.Realm
		}
		if u.Email != fu.Email || u.Username != fu.Username || realm != fu.Realm || !reflect.DeepEqual(u.EmailVerified, fu.EmailVerified) {
			t.Errorf("user %s: %q %q %q %v; want %+v", fu.Key, u.Email, u.Username, realm, u.EmailVerified, fu)
		}
		checkProfile(t, f, fu, u.Profile)
		if fu.Password != "" {
			if _, who, err := users.Login(ctx, models.Credentials{Email: fu.Email, Password: fu.Password}, models.ClientMeta{}); err != nil || who.ID != fu.ID {
				t.Errorf("user %s: login with the LoopBack password: %v", fu.Key, err)
			}
		}
		if fu.VerificationToken != "" {
			if v, err := users.ConfirmEmail(ctx, strconv.FormatInt(fu.ID, 10), fu.VerificationToken, models.ClientMeta{}); err != nil || !*v.EmailVerified {
				t.Errorf("user %s: the pending verification link: %v", fu.Key, err)
			}
		}
	}
	for _, tok := range f.Tokens {
		scope := models.ScopeSession
		if slices.Contains(tok.Scopes, "reset-password") {
			scope = models.ScopeReset
		}
		sess, err := users.Authenticate(ctx, tok.ID, scope)
		if err != nil {
			t.Fatal(err)
		}
		live := tok.State == lb3store.StateLive && !dup[tok.UserID]
		switch {
		case live && (sess == nil || sess.User.ID != tok.UserID):
			t.Errorf("token %s (%s): does not authenticate: %+v", tok.Key, tok.State, sess)
		case !live && sess != nil:
			t.Errorf("token %s (%s): authenticates as %d", tok.Key, tok.State, sess.User.ID)
		}
		if scope == models.ScopeReset {
			if s, _ := users.Authenticate(ctx, tok.ID, models.ScopeSession); s != nil {
				t.Errorf("reset token %s works as a session", tok.Key)
			}
		}
	}
	if got := rep.Skipped[lb3.SkipExpired]; got != int64(len(f.TokensIn(lb3store.StateExpired))) {
		t.Errorf("skipped %d expired tokens, want %d", got, len(f.TokensIn(lb3store.StateExpired)))
	}
	checkPassport(t, f, users, db, rep) // after the tokens: it asks for a reset for carol
	fields, _ := models.ParseObject([]byte(`{"email":"newcomer@example.com","password":"a fresh passphrase"}`))
	nu, err := users.CreateUser(ctx, fields, models.ClientMeta{})
	if err != nil || nu.ID <= maxID {
		t.Errorf("the next sign-up: %+v, %v; want an id above %d", nu, err, maxID)
	}
}

// checkProfile compares the extra fields with what LoopBack read back. On
// PostgreSQL the column names are lower-cased (§2): only the app's model
// JSON knows fullName from fullname.
func checkProfile(t *testing.T, f lb3store.Fixture, fu lb3store.User, got models.Fields) {
	t.Helper()
	have := map[string]any{}
	for _, fl := range got {
		var v any
		if err := json.Unmarshal(fl.Value, &v); err != nil {
			t.Fatalf("user %s: profile %s: %v", fu.Key, fl.Name, err)
		}
		have[fl.Name] = v
	}
	want := map[string]any{}
	for k, v := range fu.Extra {
		if v == nil {
			continue
		}
		if f.Kind == lb3store.Postgres {
			k = strings.ToLower(k)
		}
		want[k] = v
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("user %s: profile %v, want %v", fu.Key, have, want)
	}
}

// TestImportRefusals: duplicates stop the import and name each member;
// eternal tokens need the option; both user models holding rows is a
// usage error naming --user-model.
func TestImportRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Memory)
	src, err := lb3.Open(ctx, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = src.Check(ctx, lb3.Options{AllowEternalTokens: true})
	var de *lb3.DuplicatesError
	if !errors.As(err, &de) || len(de.Groups) != 1 || len(de.Groups[0].Members) != 2 {
		t.Fatalf("duplicates: %v", err)
	}
	upper, lower := f.User(t, "ann-upper"), f.User(t, "ann-lower")
	m := de.Groups[0].Members
	if m[0].ID != upper.ID || !m[0].Verified || m[0].LiveTokens != 1 || m[0].LastToken.IsZero() ||
		m[1].ID != lower.ID || m[1].Verified || m[1].LiveTokens != 0 {
		t.Errorf("group %+v", de.Groups[0])
	}
	for _, want := range []string{"Ann@x.com", "ann@x.com", "--skip-duplicates"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}

	plan, err := src.Check(ctx, lb3.Options{SkipDuplicates: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := plan.Report().Skipped[lb3.SkipEternal]; n != 1 {
		t.Errorf("eternal tokens skipped without the option: %d, want 1", n)
	}

	// Rows in both "user" and "User".
	b, err := os.ReadFile(f.Source)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	json.Unmarshal(b, &file)
	var ms map[string]map[string]string
	json.Unmarshal(file["models"], &ms)
	ms["User"] = map[string]string{"99": `{"email":"x@y.z","password":"$2a$10$abcdefghijklmnopqrstuu5Jd5hbmH9qBMNuWL3fAvbiqUbD0hXcK","id":99}`}
	file["models"], _ = json.Marshal(ms)
	both := filepath.Join(t.TempDir(), "both.json")
	b, _ = json.Marshal(file)
	os.WriteFile(both, b, 0o600)
	src2, err := lb3.Open(ctx, both)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src2.Check(ctx, lb3.Options{SkipDuplicates: true})
	var ue *lb3.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--user-model") {
		t.Errorf("both models: %v", err)
	}
	// The file's Passport identities belong to "user"'s users: with
	// --user-model User they have no user, and the import names one.
	var re *lb3.RecordError
	if _, err := src2.Check(ctx, lb3.Options{UserModel: "User", TokenModel: "UserTokens"}); !errors.As(err, &re) ||
		re.Model != "UserIdentity" && re.Model != "UserCredential" {
		t.Errorf("--user-model User, identities of the other model's users: %v", err)
	}
	delete(ms, "UserIdentity")
	delete(ms, "UserCredential")
	file["models"], _ = json.Marshal(ms)
	b, _ = json.Marshal(file)
	os.WriteFile(both, b, 0o600)
	if plan, err := src2.Check(ctx, lb3.Options{UserModel: "User", TokenModel: "UserTokens"}); err != nil || plan.Report().Users != 1 {
		t.Errorf("--user-model User: %v", err)
	}
}

// TestImportTruncated: a memory file cut anywhere is refused by Check
// with a message saying so; nothing reaches Write.
func TestImportTruncated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Memory)
	b, err := os.ReadFile(f.Source)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, 1, 20, len(b) / 4, len(b) / 2, len(b) * 3 / 4, len(b) - 3, len(b) - 1} {
		p := filepath.Join(t.TempDir(), "cut.json")
		os.WriteFile(p, b[:at], 0o600)
		src, err := lb3.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Check(ctx, lb3.Options{SkipDuplicates: true, AllowEternalTokens: true})
		if err == nil || !strings.Contains(err.Error(), "memory file") && !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut at %d of %d: %v", at, len(b), err)
		}
	}
}
