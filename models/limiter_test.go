package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
	"github.com/latchkey/latchkey/models"
)

// TestThrottleSurvivesRestart: the counters are in SQLite, so closing and
// reopening the database does not hand out a fresh allowance.
func TestThrottleSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := testdb.DSN(t)
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	open := func() (*models.DB, *models.Users) {
		db, err := models.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		lc := models.DefaultLimitConfig()
		lc.Now = clk.Now
		u := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), models.NewLimiter(db, lc),
			models.Config{Now: clk.Now, Password: models.Policy{MinLength: 8}})
		return db, u
	}
	db, u := open()
	mustCreate(t, u, "email", "restart@example.com", "password", "tratser-pw-1")
	meta := models.ClientMeta{IP: "198.51.100.1"}
	bad := models.Credentials{Email: "restart@example.com", Password: "wrong-password"}
	for i := 0; i < 6; i++ {
		if _, _, err := u.Login(ctx, bad, meta); !errors.Is(err, models.ErrLoginFailed) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, _, err := u.Login(ctx, bad, meta); !errors.Is(err, models.ErrThrottled) {
		t.Fatalf("before the restart: %v", err)
	}
	db.Close()
	db, u = open()
	defer db.Close()
	_, _, err := u.Login(ctx, bad, meta)
	if !errors.Is(err, models.ErrThrottled) {
		t.Fatalf("after the restart: %v", err)
	}
	if me, _ := models.AsError(err); me.RetryAfter != 1 {
		t.Fatalf("Retry-After %d, want 1 (the first delay)", me.RetryAfter)
	}
	// Nothing in the table names the account or the address tried.
	var n int
	if err := db.QueryRow(context.Background(), `SELECT count(*) FROM throttle WHERE CAST(key AS TEXT) LIKE '%restart%' OR CAST(key AS TEXT) LIKE '%198.51%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("identifiers stored in clear: %d %v", n, err)
	}
}

// TestThrottleOneCounterPerAccount: failures by email and by username count
// against the same account, so switching identifiers gains no guesses.
func TestThrottleOneCounterPerAccount(t *testing.T) {
	t.Parallel()
	lc := models.DefaultLimitConfig()
	u, _, _, _ := newLimitedUsers(t, models.Config{}, &lc)
	mustCreate(t, u, "email", "bob@example.com", "username", "bobby", "password", "quiet-harbor-12")
	ctx := context.Background()
	meta := models.ClientMeta{IP: "203.0.113.10"}
	free := models.DefaultLimitConfig().FreeFailures
	for i := 0; i < free; i++ {
		c := models.Credentials{Email: "bob@example.com", Password: "wrong-guess"}
		if i%2 == 1 {
			c = models.Credentials{Username: "BOBBY", Password: "wrong-guess"}
		}
		if _, _, err := u.Login(ctx, c, meta); !errors.Is(err, models.ErrLoginFailed) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// The next failure starts the delay; after it, both identifiers wait.
	u.Login(ctx, models.Credentials{Email: "bob@example.com", Password: "wrong-guess"}, meta)
	for _, c := range []models.Credentials{{Email: "bob@example.com", Password: "wrong-guess"}, {Username: "bobby", Password: "wrong-guess"}} {
		if _, _, err := u.Login(ctx, c, meta); !errors.Is(err, models.ErrThrottled) {
			t.Fatalf("%+v after %d failures on the account: %v", c, free+1, err)
		}
	}
}

// TestThrottlePrune: spent counters (full buckets, forgotten accounts) are
// deleted by Prune; live ones stay.
func TestThrottlePrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := testkit.NewClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	lc := models.DefaultLimitConfig()
	lc.Now = clk.Now
	u, db, l, _ := newLimitedUsers(t, models.Config{Now: clk.Now}, &lc)
	meta := models.ClientMeta{IP: "2001:db8:1:2::5"}
	for i := 0; i < 3; i++ {
		u.Login(ctx, models.Credentials{Email: "ghost@example.com", Password: "whatever-1"}, meta)
	}
	count := func() int {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM throttle`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 2 {
		t.Fatalf("%d counters, want 2 (the account, the IP)", n)
	}
	if n, err := l.Prune(ctx, 100); err != nil || n != 0 {
		t.Fatalf("pruned %d live counters: %v", n, err)
	}
	clk.Advance(time.Hour) // the IP bucket is full again
	if n, _ := l.Prune(ctx, 100); n != 1 || count() != 1 {
		t.Fatalf("after an hour: pruned %d, %d left", n, count())
	}
	clk.Advance(24 * time.Hour) // the account's failures are forgotten
	if n, _ := l.Prune(ctx, 100); n != 1 || count() != 0 {
		t.Fatalf("after a day: pruned %d, %d left", n, count())
	}
}

// TestIPKey: IPv6 clients are limited by their /64; IPv4-mapped
// addresses are plain IPv4.
func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":          "198.51.100.7",
		"::ffff:198.51.100.7":   "198.51.100.7",
		"2001:db8:1:2::5":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::99": "2001:db8:1:2::/64",
		"not an ip":             "not an ip",
	} {
		if got := models.IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}
