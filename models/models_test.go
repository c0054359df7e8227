package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// mustOpenDB opens a fresh database file in t.TempDir().
func mustOpenDB(t testing.TB) *models.DB {
	t.Helper()
	db, err := models.Open(context.Background(), testdb.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newUsers returns the service over a fresh database with a test clock and
// a cheap bcrypt cost.
func newUsers(t testing.TB, cfg models.Config) (*models.Users, *testkit.Clock) {
	t.Helper()
	u, _, clk := newUsersDB(t, cfg)
	return u, clk
}

// newUsersDB is newUsers with the database, for tests that read or write
// rows beside the service.
func newUsersDB(t testing.TB, cfg models.Config) (*models.Users, *models.DB, *testkit.Clock) {
	t.Helper()
	u, db, _, clk := newLimitedUsers(t, cfg, nil)
	return u, db, clk
}

// newLimitedUsers is newUsersDB throttled by a Limiter of *lc (nil: none);
// the limiter keeps lc.Now, so it runs on the wall clock unless the caller
// gives it the test's.
func newLimitedUsers(t testing.TB, cfg models.Config, lc *models.LimitConfig) (*models.Users, *models.DB, *models.Limiter, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	if cfg.Password.MinLength == 0 {
		cfg.Password.MinLength = 8
	}
	h := models.NewHasher(models.HashConfig{BcryptCost: 4})
	db := mustOpenDB(t)
	var l *models.Limiter
	if lc != nil {
		l = models.NewLimiter(db, *lc)
	}
	return models.NewUsers(db, h, l, cfg), db, l, clk
}

func mustCreate(t testing.TB, u *models.Users, kv ...string) *models.User {
	t.Helper()
	user, err := u.CreateUser(context.Background(), models.StringFields(kv...), models.ClientMeta{})
	if err != nil {
		t.Fatalf("create %v: %v", kv, err)
	}
	return user
}
