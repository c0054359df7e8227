package models_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/pquerna/otp/totp"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// openStore opens dsn for the rest of the test.
func openStore(t *testing.T, dsn string) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// copySource is a SQLite database the app made through its normal API.
type copySource struct {
	path     string
	clk      *testkit.Clock
	sessions map[string]int64 // live session token → its user
	reset    string           // bob's pending reset token, whose mail is queued
}

// makeCopySource fills a SQLite file the way the app does: alice, bob and
// carol sign up (carol, the last, then deletes her account, so the id
// sequence is past the largest id); alice logs in twice and bob once;
// bob asks for a reset (a token and a pending mail), alice for an email
// confirmation and a change of address (pending); a wrong password for
// alice leaves throttle counters; every step leaves audit rows. extra more
// users are imported, so that the users table spans several batches.
func makeCopySource(t *testing.T, extra int) copySource {
	t.Helper()
	ctx := context.Background()
	fx := copySource{path: filepath.Join(t.TempDir(), "source.db"), sessions: map[string]int64{},
		clk: testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))}
	db, err := models.Open(ctx, fx.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u := accountService(db, fx.clk)
	u.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		fx.reset = ev.AccessToken.ID
		return tx.EnqueueEmail(ctx, models.Email{Kind: "reset-password", To: ev.Email, Subject: "Reset your password", Text: "a link"})
	})
	meta := models.ClientMeta{IP: "192.0.2.7", UserAgent: "copy test"}
	alice := mustCreate(t, u, "email", "Alice@example.com", "username", "alice", "password", "quiet-harbor-12", "plan", "pro")
	bob := mustCreate(t, u, "email", "bob@example.com", "password", "stolen-lantern-12")
	carol := mustCreate(t, u, "email", "carol@example.com", "password", "amber-meadow-12")
	for _, c := range []struct {
		email, pw string
		id        int64
	}{{"alice@example.com", "quiet-harbor-12", alice.ID}, {"alice@example.com", "quiet-harbor-12", alice.ID}, {"bob@example.com", "stolen-lantern-12", bob.ID}} {
		tok, _, err := u.Login(ctx, models.Credentials{Email: c.email, Password: c.pw}, meta)
		if err != nil {
			t.Fatal(err)
		}
		fx.sessions[tok.ID] = c.id
		fx.clk.Advance(time.Second)
	}
	if err := u.RequestPasswordReset(ctx, "bob@example.com", meta); err != nil || fx.reset == "" {
		t.Fatalf("reset: %v", err)
	}
	if err := u.RequestVerification(ctx, alice.ID, "", meta); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "wrong-password-1"}, meta); !errors.Is(err, models.ErrLoginFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// Alice signed in with Google once (an identity, as an import or a
	// third-party sign-in leaves it).
	err = db.Write(ctx, fx.clk.Now(), func(tx *models.Tx) error {
		return tx.ImportIdentities(ctx, []models.Identity{{Provider: "google", Subject: "109876543210987654321", UserID: alice.ID,
			Profile: models.Fields{{Name: "displayName", Value: []byte(`"Alice"`)}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Bob came from a LoopBack MongoDB store: an alias, and the ledger an
	// import leaves.
	err = db.Write(ctx, fx.clk.Now(), func(tx *models.Tx) error {
		if err := tx.ImportUsers(ctx, []models.ImportUser{{ID: 500, Email: "mongo@example.com", PasswordHash: "$2a$04$x",
			Alias: "5f1d7c2e9b1e8a0012345678"}}); err != nil {
			return err
		}
		return tx.RecordImported(ctx, []models.LedgerEntry{{Kind: models.LedgerUser, User: 500, FP: 1 << 63},
			{Kind: models.LedgerToken, Hash: models.Digest("gone")}, {Kind: models.LedgerIdentity, ID: models.IdentityKey{Provider: "google", Subject: "1"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Dora has two-step verification: an authenticator, recovery codes, a
	// passkey, and a login waiting for its second step.
	dora := mustCreate(t, u, "email", "dora@example.com", "password", "violet-harbor-12")
	doraTok, _, err := u.Login(ctx, models.Credentials{Email: "dora@example.com", Password: "violet-harbor-12"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	doraSess, err := u.Authenticate(ctx, doraTok.ID, models.ScopeSession)
	if err != nil || doraSess == nil {
		t.Fatalf("dora's session: %v", err)
	}
	enrol, err := u.BeginTOTP(ctx, doraSess, "Latchkey")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(enrol.Secret, fx.clk.Now())
	if _, err := u.ConfirmTOTP(ctx, doraSess, code, meta); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "dora@example.com", Password: "violet-harbor-12"}, meta); !errors.As(err, new(*models.MFARequiredError)) {
		t.Fatalf("dora's login: %v, want the second step", err)
	}
	err = db.Write(ctx, fx.clk.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO webauthn_credentials(id, user_id, name, public_key, sign_count, backup_eligible, created)
			VALUES (?,?,?,?,?,?,?)`, []byte{1, 2, 3}, dora.ID, "Dora's laptop", []byte{4, 5, 6}, 7, 1, fx.clk.Now().UnixMilli())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Dora is adding a second passkey: her user handle, and the ceremony
	// waiting for the browser's answer.
	withPasskeys := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil,
		models.Config{Password: models.Policy{MinLength: 8}, Now: fx.clk.Now, BaseURL: "https://id.example.com"})
	if _, err := withPasskeys.BeginPasskeyRegistration(ctx, doraSess, "Dora's phone", "browser-1"); err != nil {
		t.Fatal(err)
	}
	// A browser signed in to Alice has a device cookie: the server's key
	// was made (server_secrets).
	if _, err := u.DeviceCookie(ctx, alice.ID, ""); err != nil {
		t.Fatal(err)
	}
	// A sign-in through a provider is under way.
	if err := u.SaveFlow(ctx, "state-1", "browser-1", models.Flow{Purpose: models.FlowLogin, Provider: "dex", Nonce: "n", Verifier: "v",
		ReturnTo: "/sessions", Expires: fx.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Alice asked to move to a new address and has not confirmed it yet.
	for tok, id := range fx.sessions {
		if id != alice.ID {
			continue
		}
		sess, err := u.Authenticate(ctx, tok, models.ScopeSession)
		if err != nil || sess == nil {
			t.Fatalf("alice's session: %v", err)
		}
		if _, err := u.RequestEmailChange(ctx, sess, "quiet-harbor-12", "alice.new@example.com", meta); err != nil {
			t.Fatalf("email change: %v", err)
		}
		break
	}
	if n, err := u.DeleteUser(ctx, carol.ID, meta); err != nil || n != 1 {
		t.Fatalf("delete carol: %d, %v", n, err)
	}
	if extra > 0 {
		users := make([]models.ImportUser, extra)
		for i := range users {
			users[i] = models.ImportUser{ID: int64(1000 + i), Email: fmt.Sprintf("extra%d@example.com", i), PasswordHash: "$2a$04$x"}
		}
		if err := db.Write(ctx, fx.clk.Now(), func(tx *models.Tx) error { return tx.ImportUsers(ctx, users) }); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// copiedTables are the tables a copy must carry, with their keys.
var copiedTables = [][2]string{{"users", "id"}, {"access_tokens", "digest"}, {"verification_tokens", "digest"},
	{"identities", "id"}, {"user_aliases", "alias"}, {"import_ledger", "kind, key"}, {"email_changes", "user_id"}, {"oauth_flows", "handle"},
	{"mfa_totp", "user_id"}, {"recovery_codes", "user_id, digest"}, {"mfa_challenges", "digest"}, {"webauthn_credentials", "id"},
	{"webauthn_handles", "user_id"}, {"webauthn_ceremonies", "challenge"}, {"server_secrets", "name"}, {"throttle", "key"}, {"outbox", "id"}, {"audit_events", "id"}}

// dumpTables is every row of every table, as text, in key order, each
// table led by its column names: two stores hold the same data when their
// dumps are equal.
func dumpTables(t *testing.T, db *models.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, tb := range copiedTables {
		rows, err := db.Query(ctx, `SELECT * FROM `+tb[0]+` ORDER BY `+tb[1])
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		lines := []string{strings.Join(cols, "|")}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			cells := make([]string, len(vals))
			for i, v := range vals {
				switch x := v.(type) {
				case nil:
					cells[i] = "NULL"
				case []byte:
					cells[i] = fmt.Sprintf("x'%x'", x)
				case string:
					cells[i] = strconv.Quote(x)
				default:
					cells[i] = fmt.Sprintf("%T(%v)", x, x)
				}
			}
			lines = append(lines, strings.Join(cells, "|"))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		out[tb[0]] = lines
	}
	return out
}

func sameDump(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for _, tb := range copiedTables {
		if !reflect.DeepEqual(got[tb[0]], want[tb[0]]) {
			t.Errorf("%s: %s differs\ngot:\n%s\nwant:\n%s", what, tb[0], strings.Join(got[tb[0]], "\n"), strings.Join(want[tb[0]], "\n"))
		}
	}
}

// indexDefs are the definitions of every index of db: a copy drops the
// secondary ones while it fills a table and must leave them as they were.
func indexDefs(t *testing.T, db *models.DB) string {
	t.Helper()
	q := `SELECT name || ': ' || COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' ORDER BY name`
	if db.Dialect() == "postgres" {
		q = `SELECT indexname || ': ' || regexp_replace(indexdef, ' ON \S+\.', ' ON ') FROM pg_indexes
			WHERE schemaname = current_schema() ORDER BY indexname`
	}
	rows, err := db.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var defs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	if err := rows.Err(); err != nil || len(defs) < 5 {
		t.Fatalf("indexes %v, %v", defs, err)
	}
	return strings.Join(defs, "\n")
}

func assertEmpty(t *testing.T, db *models.DB) {
	t.Helper()
	for _, tb := range copiedTables {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM `+tb[0]).Scan(&n); err != nil || n != 0 {
			t.Errorf("the target's %s holds %d rows (%v), want none", tb[0], n, err)
		}
	}
}

// TestCopySQLiteToPostgres: a SQLite database made by the app, copied into
// a fresh PostgreSQL schema, is the same data row for row; a server on the
// target logs nobody out (every session token authenticates, the reset
// link works, the old password logs in), the pending mail is still
// pending, and a new sign-up gets an id past every id the source ever
// handed out. A second copy is refused and changes nothing; with Force it
// replaces the target's rows.
func TestCopySQLiteToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := makeCopySource(t, 0)
	dsn := testdb.Postgres(t)
	src, dst := openStore(t, fx.path), openStore(t, dsn)

	indexes := indexDefs(t, dst)
	var seen []models.CopyProgress
	st, err := models.Copy(ctx, src, dst, models.CopyOptions{Progress: func(p models.CopyProgress) { seen = append(seen, p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := dumpTables(t, src)
	sameDump(t, "after the copy", dumpTables(t, dst), want)
	if got := indexDefs(t, dst); got != indexes {
		t.Errorf("indexes after the copy:\n%s\nbefore:\n%s", got, indexes)
	}
	for _, c := range st.Copied {
		if n := int64(len(want[c.Table]) - 1); c.Rows != n || n == 0 {
			t.Errorf("stats: %s %d rows, the source has %d (want some in every table)", c.Table, c.Rows, n)
		}
	}
	if len(st.Copied) != len(copiedTables) || st.Version < 3 || len(st.Deleted) != 0 {
		t.Errorf("stats %+v", st)
	}
	if last := seen[len(seen)-1]; last.AllDone != st.Rows() || last.AllTotal != st.Rows() || last.Table != "audit_events" || last.Done != last.Total {
		t.Errorf("last progress %+v, copied %d rows", last, st.Rows())
	}

	u := accountService(dst, fx.clk)
	for tok, id := range fx.sessions {
		if sess, err := u.Authenticate(ctx, tok, models.ScopeSession); err != nil || sess == nil || sess.User.ID != id {
			t.Errorf("session %.8s… of user %d on the target: %+v, %v", tok, id, sess, err)
		}
	}
	if who, err := u.CheckResetToken(ctx, fx.reset); err != nil || who.Email != "bob@example.com" {
		t.Errorf("bob's reset link on the target: %+v, %v", who, err)
	}
	if _, who, err := u.Login(ctx, models.Credentials{Username: "ALICE", Password: "quiet-harbor-12"}, models.ClientMeta{}); err != nil || who.Email != "Alice@example.com" {
		t.Errorf("alice's login on the target: %v", err)
	}
	if ms, err := models.NewOutbox(dst, models.OutboxConfig{}).Stats(ctx); err != nil || ms.Pending != 1 {
		t.Errorf("outbox on the target %+v, %v; want the reset mail pending", ms, err)
	}
	dave := mustCreate(t, u, "email", "dave@example.com", "password", "golden-valley-12")
	if dave.ID != 502 { // the imported user has 500, dora 501
		t.Errorf("a new sign-up on the target got id %d, want 502", dave.ID)
	}

	before := dumpTables(t, dst)
	if _, err := models.Copy(ctx, src, dst, models.CopyOptions{}); !errors.Is(err, models.ErrTargetNotEmpty) || !strings.Contains(err.Error(), "users 5") {
		t.Fatalf("a second copy: %v, want ErrTargetNotEmpty naming users 5", err)
	}
	sameDump(t, "after a refused copy", dumpTables(t, dst), before)

	st, err = models.Copy(ctx, src, dst, models.CopyOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Deleted) == 0 || st.Deleted[0] != (models.TableCount{Table: "users", Rows: 5}) {
		t.Errorf("forced copy deleted %+v, want users 5 first", st.Deleted)
	}
	sameDump(t, "after a forced copy", dumpTables(t, dst), want)
	if erin := mustCreate(t, accountService(dst, fx.clk), "email", "erin@example.com", "password", "silver-harbor-12"); erin.ID != 503 {
		t.Errorf("after the forced copy a sign-up got id %d, want 503 (the sequence never moves back)", erin.ID)
	}
}

// TestCopyFailureLeavesTargetEmpty: a copy that fails midway, cancelled
// in the middle of a table or refused a row by the target in its last
// table, leaves no copied row in the target, which then takes a copy
// without Force.
func TestCopyFailureLeavesTargetEmpty(t *testing.T) {
	t.Parallel()
	fx := makeCopySource(t, 1500)
	for _, target := range []struct {
		name string
		dsn  func(testing.TB) string
		// refuse makes the target refuse the failed login's audit row.
		refuse, allow string
	}{
		{"postgres", testdb.Postgres,
			`ALTER TABLE audit_events ADD CONSTRAINT refuse CHECK (kind <> 'login.failed')`,
			`ALTER TABLE audit_events DROP CONSTRAINT refuse`},
		{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "target.db") },
			`CREATE TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.kind = 'login.failed' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
			`DROP TRIGGER refuse`},
	} {
		t.Run(target.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := target.dsn(t)
			src, dst := openStore(t, fx.path), openStore(t, dsn)
			exec := func(q string) {
				if err := dst.Write(ctx, time.Now(), func(tx *models.Tx) error { _, err := tx.Exec(ctx, q); return err }); err != nil {
					t.Fatal(err)
				}
			}

			indexes := indexDefs(t, dst)
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var stopped models.CopyProgress
			_, err := models.Copy(cctx, src, dst, models.CopyOptions{Progress: func(p models.CopyProgress) {
				if p.Table == "users" && p.Done > 0 && p.Done < p.Total && cctx.Err() == nil {
					stopped = p
					cancel()
				}
			}})
			if err == nil || stopped.Done == 0 {
				t.Fatalf("cancelled in the middle of users (at %+v): %v", stopped, err)
			}
			assertEmpty(t, dst)

			exec(target.refuse)
			if st, err := models.Copy(ctx, src, dst, models.CopyOptions{}); err == nil || !strings.Contains(err.Error(), "audit_events") || st.Copied != nil {
				t.Fatalf("a row the target refuses: %v, stats %+v (want none: nothing was copied)", err, st)
			}
			assertEmpty(t, dst)
			if got := indexDefs(t, dst); got != indexes {
				t.Errorf("indexes after the failures:\n%s\nbefore:\n%s", got, indexes)
			}

			exec(target.allow)
			if _, err := models.Copy(ctx, src, dst, models.CopyOptions{}); err != nil {
				t.Fatalf("the target left empty takes a copy: %v", err)
			}
			sameDump(t, "after the failures", dumpTables(t, dst), dumpTables(t, src))
		})
	}
}

// TestCopyRoundTrip: SQLite → PostgreSQL → SQLite gives back the same rows
// (latchkey copy from PostgreSQL is a backup), and the id sequences.
func TestCopyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := makeCopySource(t, 0)
	pg := testdb.Postgres(t)
	src, mid, back := openStore(t, fx.path), openStore(t, pg), openStore(t, filepath.Join(t.TempDir(), "back.db"))
	if _, err := models.Copy(ctx, src, mid, models.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := models.Copy(ctx, mid, back, models.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "after the round trip", dumpTables(t, back), dumpTables(t, src))
	if got, want := indexDefs(t, back), indexDefs(t, src); got != want {
		t.Errorf("indexes after the round trip:\n%s\nwant:\n%s", got, want)
	}
	if dave := mustCreate(t, accountService(back, fx.clk), "email", "dave@example.com", "password", "golden-valley-12"); dave.ID != 502 {
		t.Errorf("a sign-up after the round trip got id %d, want 502", dave.ID)
	}
}

// TestCopyRefuses: a copy into itself, and from a database a newer
// latchkey has migrated, are refused before anything is written.
func TestCopyRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := makeCopySource(t, 0)
	src, dst := openStore(t, fx.path), openStore(t, filepath.Join(t.TempDir(), "target.db"))
	if _, err := models.Copy(ctx, src, src, models.CopyOptions{Force: true}); err == nil || !strings.Contains(err.Error(), "same database") {
		t.Errorf("a copy into itself: %v", err)
	}
	err := src.Write(ctx, time.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO goose_db_version(version_id, is_applied) VALUES (99, 1)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Copy(ctx, src, dst, models.CopyOptions{}); err == nil || !strings.Contains(err.Error(), "at migration 99, newer than this latchkey knows") {
		t.Errorf("a source from a newer latchkey: %v", err)
	}
	assertEmpty(t, dst)
}
