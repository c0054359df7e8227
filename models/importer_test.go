package models_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// newImportStore is a fresh store of the suite's kind and the account
// service over it.
func newImportStore(t *testing.T) (*models.DB, *models.Users, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	db := mustOpenDB(t)
	return db, accountService(db, clk), clk
}

// accountService is the account service over db as boot wires it, with a
// cheap hash: the limiter keeps its counters in the throttle table.
func accountService(db *models.DB, clk *testkit.Clock) *models.Users {
	lc := models.DefaultLimitConfig()
	lc.Now = clk.Now
	return models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, lc),
		models.Config{Password: models.Policy{MinLength: 8}, Now: clk.Now})
}

// loopbackHashes are the hashes LoopBack's bcryptjs wrote (testdata,
// made with the command recorded there), by password.
func loopbackHashes(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("testdata/bcryptjs.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Hashes []struct{ Password, Hash string }
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, h := range fx.Hashes {
		out[h.Password] = h.Hash
	}
	return out
}

// TestImportUsersAndTokens: accounts and tokens from LoopBack go in with
// their ids, hashes and times; the people log in with their old
// passwords (a unicode one compared as raw bytes, as bcryptjs hashed it),
// their old tokens authenticate, expired ones do not, and the next
// sign-up gets the id after the largest imported one.
func TestImportUsersAndTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, u, clk := newImportStore(t)
	hashes := loopbackHashes(t)
	const uniPW = "Ünïcödé 🔐 pass phrase"
	now := clk.Now()
	created := time.Date(2019, 3, 4, 5, 6, 7, 8e6, time.UTC)
	yes, realm := true, "staff"
	profile, err := models.ParseObject([]byte(`{"plan":"pro","seats":3}`))
	if err != nil {
		t.Fatal(err)
	}
	aliceTok, uniTok, oldTok, resetTok := models.NewTokenID(), models.NewTokenID(), models.NewTokenID(), models.NewTokenID()
	err = db.Write(ctx, now, func(tx *models.Tx) error {
		if err := tx.ImportUsers(ctx, []models.ImportUser{
			{ID: 7, Email: "Alice@Example.com", PasswordHash: hashes["alice-pw-1"], Created: created},
			{ID: 42, Email: "uni@example.com", Username: "Uni", PasswordHash: hashes[uniPW], EmailVerified: &yes,
				Realm: &realm, Profile: profile, Created: created, Updated: created.Add(time.Hour)},
		}); err != nil {
			return err
		}
		return tx.ImportTokens(ctx, []models.ImportToken{
			{ID: aliceTok, UserID: 7, TTL: 1209600, Created: now.Add(-time.Hour), IP: "192.0.2.1", UA: "LoopBack client"},
			{Digest: models.Digest(uniTok), UserID: 42, TTL: 1209600, Created: now.Add(-time.Hour)},
			{ID: oldTok, UserID: 7, TTL: 1209600, Created: now.Add(-15 * 24 * time.Hour)}, // expired a day ago
			{ID: resetTok, UserID: 42, TTL: 900, Created: now.Add(-time.Minute), Scopes: models.ScopeReset},
		})
	})
	if err != nil {
		t.Fatal(err)
	}

	alice, err := u.FindUserByEmail(ctx, "alice@example.com")
	if err != nil || alice.ID != 7 || alice.Email != "Alice@Example.com" || alice.PasswordNFKC || !alice.Created.Equal(created.Truncate(time.Millisecond)) {
		t.Fatalf("alice: %+v, %v", alice, err)
	}
	uni, err := u.FindUserByUsername(ctx, "uni")
	if err != nil || uni.ID != 42 || uni.EmailVerified == nil || !*uni.EmailVerified || uni.Realm == nil || *uni.Realm != "staff" ||
		!reflect.DeepEqual(uni.Profile, profile) || !uni.Updated.Equal(created.Add(time.Hour).Truncate(time.Millisecond)) {
		t.Fatalf("uni: %+v, %v", uni, err)
	}

	for _, c := range []struct {
		token, scope string
		want         int64 // 0: refused
	}{
		{aliceTok, models.ScopeSession, 7},
		{uniTok, models.ScopeSession, 42},
		{oldTok, models.ScopeSession, 0},
		{resetTok, models.ScopeReset, 42},
		{resetTok, models.ScopeSession, 0},
	} {
		sess, err := u.Authenticate(ctx, c.token, c.scope)
		switch {
		case err != nil:
			t.Errorf("authenticate %.8s…: %v", c.token, err)
		case c.want == 0 && sess != nil:
			t.Errorf("token %.8s… (%q) authenticated as %d, want refused", c.token, c.scope, sess.User.ID)
		case c.want != 0 && (sess == nil || sess.User.ID != c.want):
			t.Errorf("token %.8s… (%q): %+v, want user %d", c.token, c.scope, sess, c.want)
		}
	}
	if _, who, err := u.Login(ctx, models.Credentials{Email: "ALICE@example.com", Password: "alice-pw-1"}, models.ClientMeta{}); err != nil || who.ID != 7 {
		t.Errorf("alice's LoopBack password: %v", err)
	}
	if _, who, err := u.Login(ctx, models.Credentials{Username: "Uni", Password: uniPW}, models.ClientMeta{}); err != nil || who.ID != 42 {
		t.Errorf("uni's LoopBack password: %v", err)
	}
	if next := mustCreate(t, u, "email", "new@example.com", "password", "fresh-start-12"); next.ID != 43 {
		t.Errorf("the first sign-up after the import got id %d, want 43", next.ID)
	}
}

// TestImportRefusesBadRows: what an import cannot keep fails the call and
// the transaction leaves nothing behind.
func TestImportRefusesBadRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, u, clk := newImportStore(t)
	hash := loopbackHashes(t)["alice-pw-1"]
	if err := db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
		return tx.ImportUsers(ctx, []models.ImportUser{{ID: 1, Email: "one@example.com", PasswordHash: hash}})
	}); err != nil {
		t.Fatal(err)
	}
	tok := models.NewTokenID()
	for _, c := range []struct {
		name   string
		users  []models.ImportUser
		tokens []models.ImportToken
		want   string
	}{
		{"no id", []models.ImportUser{{Email: "x@example.com"}}, nil, "has no id"},
		{"no email", []models.ImportUser{{ID: 5}}, nil, "has no email"},
		{"id taken", []models.ImportUser{{ID: 1, Email: "other@example.com"}}, nil, ""},
		{"email taken", []models.ImportUser{{ID: 9, Email: "ONE@example.com"}}, nil, ""},
		{"token shape", nil, []models.ImportToken{{ID: "short", UserID: 1}}, "could never be presented"},
		{"no token", nil, []models.ImportToken{{UserID: 1}}, "neither ID nor Digest"},
		{"digest mismatch", nil, []models.ImportToken{{ID: tok, Digest: models.Digest("other"), UserID: 1}}, "not the SHA-256"},
		{"unknown user", nil, []models.ImportToken{{ID: tok, UserID: 999, TTL: 60}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
				// A good row first: it must not survive the bad one.
				if err := tx.ImportUsers(ctx, []models.ImportUser{{ID: 100, Email: "good@example.com", PasswordHash: hash}}); err != nil {
					return err
				}
				if err := tx.ImportUsers(ctx, c.users); err != nil {
					return err
				}
				return tx.ImportTokens(ctx, c.tokens)
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if _, err := u.FindUserByID(ctx, 100); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("the good row of a failed import is there: %v", err)
			}
		})
	}
}

// TestImportBatches: imports larger than one statement, in several calls
// inside one transaction, with a partial last batch, keep every row.
func TestImportBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, u, clk := newImportStore(t)
	const n = 1234
	hash := loopbackHashes(t)["x"]
	raw := make([]string, 0, 2*n)
	err := db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
		for start := 1; start <= n; start += 1000 { // chunks of 1000 and 234
			users := make([]models.ImportUser, 0, 1000)
			tokens := make([]models.ImportToken, 0, 2000)
			for id := start; id < start+1000 && id <= n; id++ {
				users = append(users, models.ImportUser{ID: int64(id), Email: fmt.Sprintf("u%d@example.com", id), PasswordHash: hash})
				for range 2 {
					raw = append(raw, models.NewTokenID())
					tokens = append(tokens, models.ImportToken{ID: raw[len(raw)-1], UserID: int64(id), TTL: 3600})
				}
			}
			if err := tx.ImportUsers(ctx, users); err != nil {
				return err
			}
			if err := tx.ImportTokens(ctx, tokens); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var users, tokens int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM access_tokens)`).Scan(&users, &tokens); err != nil {
		t.Fatal(err)
	}
	if users != n || tokens != 2*n {
		t.Fatalf("%d users and %d tokens, want %d and %d", users, tokens, n, 2*n)
	}
	for _, i := range []int{0, 999, 1000, 2*n - 1} {
		if sess, err := u.Authenticate(ctx, raw[i], models.ScopeSession); err != nil || sess == nil || sess.User.ID != int64(i/2+1) {
			t.Errorf("token %d: %+v, %v", i, sess, err)
		}
	}
	if next := mustCreate(t, u, "email", "next@example.com", "password", "fresh-start-12"); next.ID != n+1 {
		t.Errorf("next sign-up id %d, want %d", next.ID, n+1)
	}
}

// TestWithoutIndexes: the secondary indexes are gone while fn runs and
// back, the same, afterwards; the primary key and UNIQUE indexes stay.
func TestWithoutIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, u, clk := newImportStore(t)
	q := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name`
	if db.Dialect() == "postgres" {
		q = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ? ORDER BY indexname`
	}
	type querier interface {
		Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	indexes := func(from querier, table string) string {
		rows, err := from.Query(ctx, q, table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return strings.Join(names, ",")
	}
	before := indexes(db, "access_tokens")
	if !strings.Contains(before, "access_tokens_user") || !strings.Contains(before, "access_tokens_expires") {
		t.Fatalf("access_tokens indexes: %s", before)
	}
	raw := models.NewTokenID()
	err := db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
		return tx.WithoutIndexes(ctx, "access_tokens", func() error {
			if during := indexes(tx, "access_tokens"); strings.Contains(during, "access_tokens_user") || strings.Contains(during, "access_tokens_expires") {
				t.Errorf("inside WithoutIndexes: %s", during)
			}
			if err := tx.ImportUsers(ctx, []models.ImportUser{{ID: 1, Email: "a@example.com", PasswordHash: "x"}}); err != nil {
				return err
			}
			return tx.ImportTokens(ctx, []models.ImportToken{{ID: raw, UserID: 1, TTL: 60}})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := indexes(db, "access_tokens"); after != before {
		t.Errorf("indexes after: %s, before: %s", after, before)
	}
	if sess, err := u.Authenticate(ctx, raw, models.ScopeSession); err != nil || sess == nil {
		t.Errorf("the token imported without indexes: %+v, %v", sess, err)
	}

	boom := errors.New("boom")
	err = db.Write(ctx, clk.Now(), func(tx *models.Tx) error {
		return tx.WithoutIndexes(ctx, "access_tokens", func() error { return boom })
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if after := indexes(db, "access_tokens"); after != before {
		t.Errorf("indexes after a failed import: %s, before: %s", after, before)
	}
}

// TestImportVerifications: a pending LoopBack verification link (its
// 128-hex verificationToken) confirms the address once imported, until the
// expiry the import gives it, and only for the address it was sent to.
func TestImportVerifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, u, clk := newImportStore(t)
	now := clk.Now()
	no := false
	tok := strings.Repeat("ab", 64)
	err := db.Write(ctx, now, func(tx *models.Tx) error {
		if err := tx.ImportUsers(ctx, []models.ImportUser{
			{ID: 3, Email: "Bob@acme.test", PasswordHash: "", EmailVerified: &no},
			{ID: 4, Email: "eve@acme.test", PasswordHash: "", EmailVerified: &no},
		}); err != nil {
			return err
		}
		return tx.ImportVerifications(ctx, []models.ImportVerification{
			{Token: tok, UserID: 3, Email: "Bob@acme.test", Expires: now.Add(time.Hour)},
			{Token: strings.Repeat("cd", 64), UserID: 4, Email: "old@acme.test", Expires: now.Add(time.Hour)},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.ConfirmEmail(ctx, "4", strings.Repeat("cd", 64), models.ClientMeta{}); !errors.Is(err, models.ErrInvalidToken) {
		t.Errorf("a link for an address the user no longer has: %v, want ErrInvalidToken", err)
	}
	bob, err := u.ConfirmEmail(ctx, "3", tok, models.ClientMeta{})
	if err != nil || bob.EmailVerified == nil || !*bob.EmailVerified {
		t.Fatalf("confirm: %+v, %v", bob, err)
	}
	if _, err := u.ConfirmEmail(ctx, "3", tok, models.ClientMeta{}); !errors.Is(err, models.ErrInvalidToken) {
		t.Errorf("a second use: %v, want ErrInvalidToken", err)
	}
	err = db.Write(ctx, now, func(tx *models.Tx) error {
		return tx.ImportVerifications(ctx, []models.ImportVerification{{Token: tok, UserID: 3}})
	})
	if err == nil {
		t.Error("a link without an expiry was imported")
	}
}
