package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/models"
)

// loginTally counts what Config.OnLogin hears, as "step/result".
type loginTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *loginTally) hear(s models.LoginStep, r models.LoginResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[s.String()+"/"+r.String()]++
}

func (l *loginTally) get() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.n {
		out[k] = v
	}
	return out
}

// TestOnLoginHearsEveryOutcome: each password login and second step is
// heard once with its outcome; a request that tries no credentials (no
// identifier, a bad ttl) is not.
func TestOnLoginHearsEveryOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var tally loginTally
	lc := models.DefaultLimitConfig()
	u, _, _, clk := newLimitedUsers(t, models.Config{OnLogin: tally.hear}, &lc)
	lc.Now = clk.Now
	mustCreate(t, u, "email", "obs@example.com", "password", "observe-pw-1")
	meta := models.ClientMeta{IP: "192.0.2.40"}
	good := models.Credentials{Email: "obs@example.com", Password: "observe-pw-1"}
	for range 2 {
		if _, _, err := u.Login(ctx, good, meta); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "nobody@example.com", Password: "observe-pw-1"}, meta); !errors.Is(err, models.ErrLoginFailed) {
		t.Fatal(err)
	}
	bad := models.Credentials{Email: "obs@example.com", Password: "wrong-password"}
	failures := 1
	for {
		_, _, err := u.Login(ctx, bad, meta)
		if errors.Is(err, models.ErrThrottled) {
			break
		}
		if !errors.Is(err, models.ErrLoginFailed) || failures > 20 {
			t.Fatalf("failure %d: %v", failures, err)
		}
		failures++
	}
	if _, _, err := u.Login(ctx, models.Credentials{Password: "x"}, meta); !errors.Is(err, models.ErrLoginRequired) {
		t.Fatal(err)
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "obs@example.com", Password: "x", TTL: -5}, meta); err == nil {
		t.Fatal("a negative ttl was accepted")
	}
	want := map[string]int{"password/success": 2, "password/failure": failures, "password/throttled": 1}
	if got := tally.get(); !equalCounts(got, want) {
		t.Fatalf("heard %v, want %v", got, want)
	}

	// A second step: the password step is a success of its own, then the
	// code's outcome (a wrong code, an unknown step, a right code).
	secret, _ := enrolTOTP(t, u, clk, "two@example.com", "two-step-pw-1")
	before := tally.get()
	mfa := passwordStep(t, u, "two@example.com", "two-step-pw-1")
	if _, _, err := u.CompleteMFA(ctx, mfa, "000000", models.ClientMeta{}); !errors.Is(err, models.ErrMFACode) {
		t.Fatal(err)
	}
	if _, _, err := u.CompleteMFA(ctx, "no-such-step", "000000", models.ClientMeta{}); !errors.Is(err, models.ErrMFAInvalid) {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(secret, clk.Now())
	if _, _, err := u.CompleteMFA(ctx, mfa, code, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	got := tally.get()
	for k, v := range before {
		got[k] -= v
	}
	// enrolTOTP's own login is in before; this part made one password
	// success and three second steps.
	want = map[string]int{"password/success": 1, "password/failure": 0, "password/throttled": 0,
		"second/failure": 2, "second/success": 1}
	if !equalCounts(got, want) {
		t.Fatalf("second step: heard %v more, want %v", got, want)
	}
}

func equalCounts(got, want map[string]int) bool {
	for k, v := range got {
		if want[k] != v {
			return false
		}
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// TestAuthCacheCounts: a token's first use misses (token, then user), the
// next ones hit; with the cache off nothing is counted.
func TestAuthCacheCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, size := range []int{0, -1} {
		u, _ := newUsers(t, models.Config{CacheSize: size})
		mustCreate(t, u, "email", "cache@example.com", "password", "hidden-pw-123")
		tok, _, err := u.Login(ctx, models.Credentials{Email: "cache@example.com", Password: "hidden-pw-123"}, models.ClientMeta{})
		if err != nil {
			t.Fatal(err)
		}
		h0, m0 := u.AuthCacheCounts()
		for range 4 {
			if s, err := u.Authenticate(ctx, tok.ID, models.ScopeSession); err != nil || s == nil {
				t.Fatal(s, err)
			}
		}
		h, m := u.AuthCacheCounts()
		wantH, wantM := uint64(3), uint64(2)
		if size < 0 {
			wantH, wantM = 0, 0
		}
		if h-h0 != wantH || m-m0 != wantM {
			t.Fatalf("cache size %d: 4 authentications counted %d hits, %d misses; want %d, %d", size, h-h0, m-m0, wantH, wantM)
		}
	}
}

// TestHashQueueDepth: with one worker busy, a second hash waits in the
// queue and QueueDepth counts it until it runs.
func TestHashQueueDepth(t *testing.T) {
	t.Parallel()
	h := models.NewHasher(models.HashConfig{BcryptCost: 12, Workers: 1})
	if d := h.QueueDepth(); d != 0 {
		t.Fatalf("idle depth %d", d)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = h.Hash(context.Background(), "queue-depth-pw") })
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.QueueDepth() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second hash was never seen waiting")
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if d := h.QueueDepth(); d != 0 {
		t.Fatalf("depth after both ran: %d", d)
	}
}
