package models_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/tcpproxy"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// replica is one process's view of a shared PostgreSQL store.
type replica struct {
	db    *models.DB
	users *models.Users
}

func openReplica(t *testing.T, open func() (*models.DB, error)) replica {
	t.Helper()
	db, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return replica{db: db, users: models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, models.Config{Password: models.Policy{MinLength: 8}})}
}

// openReplicaFeedViaProxy opens a replica whose change feed (alone) goes
// through a TCP proxy the test can cut or stall.
func openReplicaFeedViaProxy(t *testing.T, dsn string) (replica, *tcpproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	px := tcpproxy.New(t, u.Host)
	r := openReplica(t, func() (*models.DB, error) {
		return models.OpenPostgresFeedVia(context.Background(), dsn, px.Addr())
	})
	return r, px
}

func (r replica) authOK(t *testing.T, token string) bool {
	t.Helper()
	s, err := r.users.Authenticate(context.Background(), token, models.ScopeSession)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return s != nil
}

func (r replica) login(t *testing.T, email, password string) *models.Session {
	t.Helper()
	tok, u, err := r.users.Login(context.Background(), models.Credentials{Email: email, Password: password}, models.ClientMeta{})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return &models.Session{Token: *tok, User: *u}
}

// deleteBehindTheBack removes a token the way an admin's SQL shell would:
// no change feed, so only a cache that is not trusted can notice.
func deleteBehindTheBack(t *testing.T, db *models.DB, token string) {
	t.Helper()
	d := models.Digest(token)
	err := db.Write(context.Background(), time.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(context.Background(), `DELETE FROM access_tokens WHERE digest = ?`, d[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFeedEndsSessionsOnEveryReplica (SECURITY X1): two replicas on one
// PostgreSQL database; a session that replica B holds in its cache fails on
// B at the very next call after replica A ends it, 100 times out of 100, for
// logout and for every other way a session ends.
func TestFeedEndsSessionsOnEveryReplica(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	a := openReplica(t, func() (*models.DB, error) { return models.Open(ctx, dsn) })
	b := openReplica(t, func() (*models.DB, error) { return models.Open(ctx, dsn) })
	user := mustCreate(t, a.users, "email", "ann@example.com", "password", "correct horse battery")

	// The control: B really answers from its cache, so the checks below
	// could fail; a change made behind Latchkey's back is not seen.
	s := a.login(t, "ann@example.com", "correct horse battery")
	if !b.authOK(t, s.Token.ID) {
		t.Fatal("B does not know a fresh session")
	}
	deleteBehindTheBack(t, a.db, s.Token.ID)
	if !b.authOK(t, s.Token.ID) {
		t.Fatal("B's cache was not used: this test would prove nothing")
	}

	misses := 0
	for range 100 {
		s := a.login(t, "ann@example.com", "correct horse battery")
		if !b.authOK(t, s.Token.ID) || !b.authOK(t, s.Token.ID) {
			t.Fatal("B refuses a live session")
		}
		if _, err := a.users.Logout(ctx, s, models.ClientMeta{}); err != nil {
			t.Fatal(err)
		}
		if b.authOK(t, s.Token.ID) {
			misses++
		}
	}
	if misses != 0 {
		t.Fatalf("after a logout on A, B still accepted the token %d times in 100", misses)
	}

	// Every other way a session ends.
	keep := a.login(t, "ann@example.com", "correct horse battery")
	other := a.login(t, "ann@example.com", "correct horse battery")
	b.authOK(t, other.Token.ID)
	if ok, err := a.users.RevokeSession(ctx, keep, other.Token.DigestHex(), models.ClientMeta{}); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	if b.authOK(t, other.Token.ID) {
		t.Fatal("a revoked session still works on B")
	}
	other = a.login(t, "ann@example.com", "correct horse battery")
	b.authOK(t, other.Token.ID)
	if err := a.users.ChangePassword(ctx, keep, "correct horse battery", "another long passphrase", models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if b.authOK(t, other.Token.ID) {
		t.Fatal("after a password change on A, another session still works on B")
	}
	if !b.authOK(t, keep.Token.ID) {
		t.Fatal("the session that changed the password ended on B")
	}
	if _, err := a.users.DeleteUser(ctx, user.ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if b.authOK(t, keep.Token.ID) {
		t.Fatal("a deleted user's session still works on B")
	}
}

// TestFeedLostBypassesCache: when a replica loses its change feed it cannot
// hear other replicas' changes, so it drops its cache and reads the store
// for every request until the feed is back; then it caches again.
func TestFeedLostBypassesCache(t *testing.T) {
	r, px := openReplicaFeedViaProxy(t, testdb.Postgres(t))
	mustCreate(t, r.users, "email", "bo@example.com", "password", "correct horse battery")
	waitFeed(t, r.db, true)

	cached := func() bool { // is a fresh session answered from the cache?
		s := r.login(t, "bo@example.com", "correct horse battery")
		r.authOK(t, s.Token.ID)
		deleteBehindTheBack(t, r.db, s.Token.ID)
		return r.authOK(t, s.Token.ID)
	}
	if !cached() {
		t.Fatal("with the feed up the cache is not used: this test would prove nothing")
	}

	live := r.login(t, "bo@example.com", "correct horse battery")
	r.authOK(t, live.Token.ID)
	px.Cut()
	waitFeed(t, r.db, false)
	// Cached before the cut, gone since: the replica must not believe its cache.
	deleteBehindTheBack(t, r.db, live.Token.ID)
	if r.authOK(t, live.Token.ID) {
		t.Fatal("with the feed down, a session ended elsewhere was still accepted")
	}
	if cached() {
		t.Fatal("with the feed down, the cache was still used")
	}

	px.Restore()
	waitFeed(t, r.db, true)
	if !cached() {
		t.Fatal("the cache is not used again once the feed is back")
	}
}

func waitFeed(t *testing.T, db *models.DB, up bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.FeedUp() != up {
		if time.Now().After(deadline) {
			t.Fatalf("feed up = %v after 10s, want %v", !up, up)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPruningRunsOnOneReplicaAtATime: the background pruners take an
// advisory lock, so while one replica prunes another skips its turn instead
// of deleting the same rows beside it.
func TestPruningRunsOnOneReplicaAtATime(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	open := func() (*models.DB, *models.Users) {
		db, err := models.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, models.Config{Password: models.Policy{MinLength: 8}, Now: clk.Now})
	}
	a, _ := open()
	_, ub := open()
	mustCreate(t, ub, "email", "old@example.com", "password", "correct horse battery")
	for range 3 {
		if _, _, err := ub.Login(ctx, models.Credentials{Email: "old@example.com", Password: "correct horse battery", TTL: 60}, models.ClientMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)

	release, err := a.HoldLock(ctx, "prune-tokens")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ub.PruneExpired(ctx, 100); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) while another replica holds the pruning lock", n, err)
	}
	release()
	if n, err := ub.PruneExpired(ctx, 100); err != nil || n != 3 {
		t.Fatalf("pruned %d (%v) once the lock was free, want 3", n, err)
	}
}

// TestFeedStalledReplicaStopsTrustingItsCache: a replica whose LISTEN
// connection stalls without breaking (nothing arrives, nothing is reset)
// cannot acknowledge a logout. The writer gives up waiting after a bound;
// by then the stalled replica has gone long enough without hearing its
// server that it no longer answers from its cache.
func TestFeedStalledReplicaStopsTrustingItsCache(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	a := openReplica(t, func() (*models.DB, error) { return models.Open(ctx, dsn) })
	b, px := openReplicaFeedViaProxy(t, dsn)
	waitFeed(t, b.db, true)
	mustCreate(t, a.users, "email", "ann@example.com", "password", "correct horse battery")
	s := a.login(t, "ann@example.com", "correct horse battery")
	if !b.authOK(t, s.Token.ID) || !b.authOK(t, s.Token.ID) {
		t.Fatal("B refuses a live session")
	}

	px.Stall()
	start := time.Now()
	if _, err := a.users.Logout(ctx, s, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the logout waited %v for the stalled replica", time.Since(start).Round(time.Millisecond))
	if b.authOK(t, s.Token.ID) {
		t.Fatal("A answered 'logged out', yet the stalled replica B still accepts the token")
	}

	// Once its server is heard again, B uses its cache again.
	px.Resume()
	s2 := a.login(t, "ann@example.com", "correct horse battery")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.authOK(t, s2.Token.ID)
		deleteBehindTheBack(t, a.db, s2.Token.ID)
		if b.authOK(t, s2.Token.ID) {
			break // answered from the cache: trusted again
		}
		if time.Now().After(deadline) {
			t.Fatal("B does not trust its cache again after the stall ended")
		}
		s2 = a.login(t, "ann@example.com", "correct horse battery")
	}
}

// TestFeedIgnoresOtherDatabases: the replicas a writer waits for are its
// own store's. A deployment in another database of the same server, with
// the same schema name, is not one of them (NOTIFY does not cross
// databases: waiting for it would delay every logout by the full bound),
// while a second replica of the same store is.
func TestFeedIgnoresOtherDatabases(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.PostgresDatabase(t)
	a := openReplica(t, func() (*models.DB, error) { return models.Open(ctx, dsn) })
	openReplica(t, func() (*models.DB, error) { return models.Open(ctx, testdb.PostgresDatabase(t)) })
	if l, err := a.db.FeedListeners(ctx); err != nil || len(l) != 0 {
		t.Fatalf("with a deployment in another database, a writer waits for %v (%v), want nobody", l, err)
	}
	openReplica(t, func() (*models.DB, error) { return models.Open(ctx, dsn) })
	if l, err := a.db.FeedListeners(ctx); err != nil || len(l) != 1 {
		t.Fatalf("with a second replica of its own store, a writer waits for %v (%v), want it", l, err)
	}
}

// TestFeedForgetsWritesThatDidNotCommit: a write whose commit fails (here a
// deferred unique violation) leaves no writer waiting for acknowledgements.
func TestFeedForgetsWritesThatDidNotCommit(t *testing.T) {
	ctx := context.Background()
	r := openReplica(t, func() (*models.DB, error) { return models.Open(ctx, testdb.Postgres(t)) })
	err := r.db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE once (v INTEGER UNIQUE DEFERRABLE INITIALLY DEFERRED)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	user := mustCreate(t, r.users, "email", "ann@example.com", "password", "correct horse battery")
	for range 5 {
		err := r.db.Write(ctx, time.Now(), func(tx *models.Tx) error {
			models.DropUserForTest(tx, user.ID)
			_, err := tx.Exec(ctx, `INSERT INTO once VALUES (1), (1)`)
			return err
		})
		if err == nil {
			t.Fatal("the commit of a deferred unique violation succeeded")
		}
	}
	if n := r.db.FeedWaiting(); n != 0 {
		t.Fatalf("%d writers still wait after their commits failed", n)
	}
}
