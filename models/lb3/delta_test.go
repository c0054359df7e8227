package lb3_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// importRun is one run of the import into db, as the command makes it:
// the target's ledger read first, then Check and Write in one transaction.
func importRun(t *testing.T, src string, db *models.DB, opts lb3.Options) (dry, rep lb3.Report) {
	t.Helper()
	ctx := context.Background()
	store, err := lb3.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if opts.Ledger, err = db.ReadImportLedger(ctx); err != nil {
		t.Fatal(err)
	}
	plan, err := store.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dry, err = plan.DryRun(ctx); err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		rep, err = plan.Write(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dry, rep
}

// dumpAll is every row the import touches, as text: two runs that change
// nothing leave equal dumps.
func dumpAll(t *testing.T, db *models.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, email, COALESCE(username, ''), password_hash, COALESCE(email_verified, -1), COALESCE(realm, ''), profile, updated FROM users ORDER BY id`,
		`SELECT digest, user_id, ttl, created, scopes FROM access_tokens ORDER BY digest`,
		`SELECT digest, user_id, email FROM verification_tokens ORDER BY digest`,
		`SELECT provider, subject, user_id, profile FROM identities ORDER BY provider, subject`,
		`SELECT kind, key, fp FROM import_ledger ORDER BY kind, key`,
		`SELECT alias, user_id FROM user_aliases ORDER BY alias`,
	} {
		rows, err := db.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
		fmt.Fprintln(&b, "--")
	}
	return b.String()
}

// TestImportDelta: the import re-run before cut-over. A second run on the
// same source changes nothing; after LoopBack has moved on (a password
// changed, an address confirmed, a logout, a new user with a session, a
// deleted user) a run brings exactly that over; what was logged out here
// in between stays logged out; and a run after that changes nothing again.
func TestImportDelta(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Memory)
	opts := lb3.Options{SkipDuplicates: true, AllowEternalTokens: true}
	users, db, first := importInto(t, f, testdb.DSN(t), opts)
	if first.Users == 0 || first.Sessions == 0 {
		t.Fatalf("first run: %+v", first)
	}

	// 1. The same source again: nothing to do.
	before := dumpAll(t, db)
	dry, rep := importRun(t, f.Source, db, opts)
	for _, r := range []lb3.Report{dry, rep} {
		if r.Users+r.Sessions+r.ResetTokens+r.Verifications+r.Identities+r.LinkedIdentities+r.Updated != 0 || len(r.Removed) != 0 || r.Unchanged == 0 {
			t.Errorf("a second run on the same source: %+v, want nothing added, updated or removed", r)
		}
	}
	if after := dumpAll(t, db); after != before {
		t.Errorf("a second run changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// 2. Meanwhile a client logged alice's session out here.
	aliceLive := f.Token(t, "alice-live")
	sess, err := users.Authenticate(ctx, aliceLive.ID, models.ScopeSession)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Logout(ctx, sess, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}

	// 3. And LoopBack moved on.
	alice, bob, carol := f.User(t, "alice"), f.User(t, "bob"), f.User(t, "carol")
	bobLive, carolReset := f.Token(t, "bob-live"), f.Token(t, "carol-reset")
	um, tm := f.Models["user"], f.Models["token"]
	daveToken := strings.Repeat("D", 60) + "1234"
	var daveID int64
	lb3store.EditMemoryFile(t, f.Source, func(m *lb3store.MemoryFile) {
		hash, err := bcrypt.GenerateFromPassword([]byte("alice-changed-9"), 4)
		if err != nil {
			t.Fatal(err)
		}
		m.Records[um][strconv.FormatInt(alice.ID, 10)]["password"] = string(hash) // a password change
		bobRec := m.Records[um][strconv.FormatInt(bob.ID, 10)]                    // bob confirmed his address
		delete(bobRec, "verificationToken")
		bobRec["emailVerified"] = true
		delete(m.Records[tm], bobLive.ID)                      // bob logged out
		delete(m.Records[um], strconv.FormatInt(carol.ID, 10)) // carol was deleted,
		delete(m.Records[tm], carolReset.ID)                   // and her tokens with her
		daveID = m.IDs[um]
		m.IDs[um]++
		daveHash, _ := bcrypt.GenerateFromPassword([]byte("dave-secret-6"), 4)
		m.Records[um][strconv.FormatInt(daveID, 10)] = map[string]any{"id": daveID, "email": "dave@example.com",
			"password": string(daveHash), "emailVerified": true, "fullName": "Dave"}
		m.Records[tm][daveToken] = map[string]any{"id": daveToken, "ttl": 1209600, "created": time.Now().UTC().Format(time.RFC3339Nano), "userId": daveID}
	})

	dry, rep = importRun(t, f.Source, db, opts)
	for name, r := range map[string]lb3.Report{"dry run": dry, "run": rep} {
		if r.Users != 1 || r.Sessions != 1 || r.Updated != 2 || r.Removed[lb3.RemovedUsers] != 1 ||
			r.Removed[lb3.RemovedTokens] != 2 || r.Removed[lb3.RemovedLinks] != 1 || r.ResetTokens != 0 {
			t.Errorf("%s after LoopBack moved on: %+v; want dave and his session added, alice and bob updated, "+
				"carol, bob's session, carol's reset token and bob's link removed", name, r)
		}
	}

	// alice: the new password, not the old; her logged-out session stays out.
	if _, _, err := users.Login(ctx, models.Credentials{Email: alice.Email, Password: "alice-changed-9"}, models.ClientMeta{}); err != nil {
		t.Errorf("alice with her new LoopBack password: %v", err)
	}
	if _, _, err := users.Login(ctx, models.Credentials{Email: alice.Email, Password: alice.Password}, models.ClientMeta{}); !errors.Is(err, models.ErrLoginFailed) {
		t.Errorf("alice with her old password: %v, want refused", err)
	}
	if live(t, users, aliceLive.ID, models.ScopeSession) {
		t.Error("the session logged out here came back with the re-run")
	}
	if !live(t, users, f.Token(t, "alice-live-1h").ID, models.ScopeSession) {
		t.Error("alice's other session stopped working")
	}
	// bob: logged out, verified, his old link gone.
	if live(t, users, bobLive.ID, models.ScopeSession) {
		t.Error("bob's session, logged out in LoopBack, still works")
	}
	if u, err := users.FindUserByID(ctx, bob.ID); err != nil || u.EmailVerified == nil || !*u.EmailVerified {
		t.Errorf("bob after confirming in LoopBack: %+v, %v", u, err)
	}
	if _, err := users.ConfirmEmail(ctx, strconv.FormatInt(bob.ID, 10), bob.VerificationToken, models.ClientMeta{}); err == nil {
		t.Error("bob's used verification link still confirms")
	}
	// carol: gone with her reset token.
	if _, err := users.FindUserByID(ctx, carol.ID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("carol, deleted in LoopBack: %v", err)
	}
	if live(t, users, carolReset.ID, models.ScopeReset) {
		t.Error("carol's reset token still works")
	}
	// dave: new, with his session and his password.
	if s, err := users.Authenticate(ctx, daveToken, models.ScopeSession); err != nil || s == nil || s.User.ID != daveID {
		t.Errorf("dave's LoopBack session: %+v, %v", s, err)
	}
	if _, who, err := users.Login(ctx, models.Credentials{Email: "dave@example.com", Password: "dave-secret-6"}, models.ClientMeta{}); err != nil || who.ID != daveID {
		t.Errorf("dave's login: %v", err)
	}

	// 4. Once more: nothing left to do.
	before = dumpAll(t, db)
	_, rep = importRun(t, f.Source, db, opts)
	if rep.Users+rep.Sessions+rep.Updated != 0 || len(rep.Removed) != 0 {
		t.Errorf("a run after the delta: %+v, want nothing", rep)
	}
	if after := dumpAll(t, db); after != before {
		t.Errorf("a run after the delta changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestImportDeltaClash: a user LoopBack created after the first run whose
// address someone has since signed up with here is refused by name, and
// the run writes nothing.
func TestImportDeltaClash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := lb3store.Make(t, lb3store.Memory)
	opts := lb3.Options{SkipDuplicates: true, AllowEternalTokens: true}
	users, db, _ := importInto(t, f, testdb.DSN(t), opts)
	if _, err := users.CreateUser(ctx, models.Fields{{Name: "email", Value: json.RawMessage(`"erin@example.com"`)},
		{Name: "password", Value: json.RawMessage(`"quiet-meadow-77"`)}}, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	um := f.Models["user"]
	var id int64
	hash, _ := bcrypt.GenerateFromPassword([]byte("erin-other-88"), 4)
	lb3store.EditMemoryFile(t, f.Source, func(m *lb3store.MemoryFile) {
		id = m.IDs[um] + 100
		m.Records[um][strconv.FormatInt(id, 10)] = map[string]any{"id": id, "email": "Erin@example.com", "password": string(hash)}
	})

	before := dumpAll(t, db)
	store, err := lb3.Open(ctx, f.Source)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if opts.Ledger, err = db.ReadImportLedger(ctx); err != nil {
		t.Fatal(err)
	}
	plan, err := store.Check(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.DryRun(ctx); err == nil || !strings.Contains(err.Error(), strconv.FormatInt(id, 10)) {
		t.Errorf("dry run: %v, want the clash named", err)
	}
	err = db.Write(ctx, time.Now(), func(tx *models.Tx) error { _, err := plan.Write(ctx, tx); return err })
	if err == nil || !strings.Contains(err.Error(), "signed up here") {
		t.Errorf("run: %v, want the clash named", err)
	}
	if after := dumpAll(t, db); after != before {
		t.Error("a refused run changed the target")
	}
}

// live says whether raw authenticates with scope.
func live(t *testing.T, users *models.Users, raw, scope string) bool {
	t.Helper()
	s, err := users.Authenticate(context.Background(), raw, scope)
	if err != nil {
		t.Fatal(err)
	}
	return s != nil
}

// TestImportDeltaMongo: a MongoDB user keeps the integer id the first run
// gave its ObjectId, even when a later export has a user whose ObjectId
// sorts before it; the new user is numbered past every id, and each
// ObjectId stays an alias of its user.
func TestImportDeltaMongo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"user.json", "AccessToken.json", "UserIdentity.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "mongo", "lines", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := models.Open(ctx, testdb.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts := lb3.Options{Now: mongoNow, AllowEternalTokens: true}
	if _, rep := importRun(t, dir, db, opts); rep.Users != 3 {
		t.Fatalf("first run: %+v", rep)
	}
	first, err := db.ReadImportLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Aliases) != 3 {
		t.Fatalf("aliases after the first run: %v", first.Aliases)
	}

	f, err := os.OpenFile(filepath.Join(dir, "user.json"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const early = "4a0000000000000000000001" // sorts before every other ObjectId
	fmt.Fprintf(f, `{"_id":{"$oid":"%s"},"password":"$2a$10$Y3j73nNGglS1Ld3PbVUoeOPv8UNfZLRpn77aqJzdCjxky9cT2EKfi","email":"dee@example.com"}`+"\n", early)
	f.Close()
	if _, rep := importRun(t, dir, db, opts); rep.Users != 1 || rep.Updated != 0 || len(rep.Removed) != 0 {
		t.Errorf("second run: %+v, want dee added and nothing else", rep)
	}
	second, err := db.ReadImportLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for oid, id := range first.Aliases {
		if second.Aliases[oid] != id {
			t.Errorf("ObjectId %s was user %d, now %d", oid, id, second.Aliases[oid])
		}
	}
	if id := second.Aliases[early]; id != first.MaxUserID+1 {
		t.Errorf("the new ObjectId got id %d, want %d (past every id)", id, first.MaxUserID+1)
	}
}

// TestImportDeltaSQL: the delta from LoopBack's MySQL and PostgreSQL
// layouts. A second run changes nothing (the SQL readers give the same
// records each time), and a logout and a password change made in the
// source's tables come over.
func TestImportDeltaSQL(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{lb3store.MySQL, lb3store.Postgres} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := lb3store.Make(t, kind)
			opts := lb3.Options{SkipDuplicates: true, AllowEternalTokens: true}
			users, db, _ := importInto(t, f, testdb.DSN(t), opts)
			before := dumpAll(t, db)
			if _, rep := importRun(t, f.Source, db, opts); rep.Users+rep.Sessions+rep.Updated != 0 || len(rep.Removed) != 0 {
				t.Errorf("a second run: %+v, want nothing", rep)
			}
			if after := dumpAll(t, db); after != before {
				t.Errorf("a second run changed the target:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			var src *sql.DB
			var err error
			token, user, q := "`"+f.Models["token"]+"`", "`"+f.Models["user"]+"`", func(s string) string { return s }
			if kind == lb3store.MySQL {
				src, err = lb3store.OpenMySQL(f.Source)
			} else {
				src, err = sql.Open("pgx", f.Source)
				token, user = `"`+strings.ToLower(f.Models["token"])+`"`, `"`+strings.ToLower(f.Models["user"])+`"`
				q = func(s string) string { // $n placeholders
					for i := 1; strings.Contains(s, "?"); i++ {
						s = strings.Replace(s, "?", "$"+strconv.Itoa(i), 1)
					}
					return s
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			bobLive, alice := f.Token(t, "bob-live"), f.User(t, "alice")
			hash, _ := bcrypt.GenerateFromPassword([]byte("alice-changed-9"), 4)
			if _, err := src.ExecContext(ctx, q(`DELETE FROM `+token+` WHERE id = ?`), bobLive.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := src.ExecContext(ctx, q(`UPDATE `+user+` SET password = ? WHERE id = ?`), string(hash), alice.ID); err != nil {
				t.Fatal(err)
			}
			if _, rep := importRun(t, f.Source, db, opts); rep.Updated != 1 || rep.Removed[lb3.RemovedTokens] != 1 || rep.Users+rep.Sessions != 0 {
				t.Errorf("after a logout and a password change in %s: %+v", kind, rep)
			}
			if live(t, users, bobLive.ID, models.ScopeSession) {
				t.Error("bob's session, logged out in LoopBack, still works")
			}
			if _, _, err := users.Login(ctx, models.Credentials{Email: alice.Email, Password: "alice-changed-9"}, models.ClientMeta{}); err != nil {
				t.Errorf("alice's new password: %v", err)
			}
		})
	}
}
