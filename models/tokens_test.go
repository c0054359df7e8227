package models_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// TestNewTokenID: S1 — 64 base62 characters, unique over 10k, no shared
// prefix, every character of the alphabet used about equally.
func TestNewTokenID(t *testing.T) {
	const n = 10000
	seen := make(map[string]bool, n)
	prefixes := make(map[string]int)
	counts := make(map[rune]int)
	for i := 0; i < n; i++ {
		id := models.NewTokenID()
		if !models.ValidTokenShape(id) {
			t.Fatalf("token %q is not 64 base62 characters", id)
		}
		if seen[id] {
			t.Fatalf("duplicate token after %d", i)
		}
		seen[id] = true
		prefixes[id[:4]]++
		for _, r := range id {
			counts[r]++
		}
	}
	if len(counts) != 62 {
		t.Fatalf("alphabet of %d characters, want 62", len(counts))
	}
	want := float64(n*64) / 62
	for r, c := range counts {
		if float64(c) < want*0.9 || float64(c) > want*1.1 {
			t.Errorf("character %q appears %d times, want about %.0f", r, c, want)
		}
	}
	for p, c := range prefixes {
		if c > 5 {
			t.Errorf("prefix %q shared by %d tokens", p, c)
		}
	}
}

func TestValidTokenShape(t *testing.T) {
	ok := strings.Repeat("aZ9", 21) + "x"
	for s, want := range map[string]bool{
		ok:                      true,
		ok[:63]:                 false,
		ok + "a":                false,
		strings.Repeat("-", 64): false,
		strings.Repeat("é", 32): false,
		"":                      false,
		ok[:63] + " ":           false,
	} {
		if got := models.ValidTokenShape(s); got != want {
			t.Errorf("ValidTokenShape(%q) = %v", s, got)
		}
	}
}

// TestTokensStoredAsDigests: S2 — the database holds none of the issued tokens.
func TestTokensStoredAsDigests(t *testing.T) {
	t.Parallel()
	u, db, _ := newUsersDB(t, models.Config{})
	mustCreate(t, u, "email", "alice@example.com", "password", "ecila-pw-1")
	ctx := context.Background()
	var issued []string
	for i := 0; i < 20; i++ {
		tok, _, err := u.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "ecila-pw-1"}, models.ClientMeta{})
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, tok.ID)
	}
	if err := u.RequestPasswordReset(ctx, "alice@example.com", models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(context.Background(), `SELECT digest FROM access_tokens`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var d []byte
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		hex := fmt.Sprintf("%x", d)
		n++
		if len(d) != 32 {
			t.Errorf("digest of %d bytes", len(d))
		}
		for _, id := range issued {
			if strings.Contains(string(d), id) || strings.Contains(strings.ToLower(hex), strings.ToLower(id)) {
				t.Fatal("a token is stored in plain text")
			}
		}
	}
	if n != 21 {
		t.Fatalf("%d token rows, want 21", n)
	}
	// And the whole store never contains a token: on SQLite the file, WAL
	// included; on PostgreSQL every row of the tables that name tokens.
	var places []string
	if db.Dialect() == "sqlite" {
		for _, suffix := range []string{"", "-wal"} {
			b, err := readFile(db.Path() + suffix)
			if err != nil || len(b) == 0 {
				t.Fatalf("read %s: %d bytes, %v", db.Path()+suffix, len(b), err)
			}
			places = append(places, string(b))
		}
	} else {
		for _, table := range []string{"users", "access_tokens", "audit_events", "throttle"} {
			var rows string
			if err := db.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, ' '), '') FROM `+table+` t`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			places = append(places, rows)
		}
	}
	for _, p := range places {
		for _, id := range issued {
			if strings.Contains(p, id) {
				t.Fatal("a token is stored in plain text")
			}
		}
	}
}

// TestTTLRules: LoopBack's ttl semantics with our refusal of broken values.
func TestTTLRules(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	for _, tt := range []struct {
		in      int64
		want    int64
		wantErr bool
	}{
		{0, 1209600, false}, {60, 60, false}, {31556926, 31556926, false}, {31556927, 31556926, false},
		{-1, 0, true}, {-2, 0, true},
	} {
		got, err := u.ResolveTTL(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ResolveTTL(%d) = %d, %v", tt.in, got, err)
		}
	}
	eternal, _ := newUsers(t, models.Config{AllowEternalTokens: true})
	if got, err := eternal.ResolveTTL(-1); err != nil || got != -1 {
		t.Errorf("eternal: %d %v", got, err)
	}
}

// TestTokenExpiry: a token works until created+ttl, then never again.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	u, clk := newUsers(t, models.Config{})
	mustCreate(t, u, "email", "alice@example.com", "password", "ecila-pw-1")
	ctx := context.Background()
	tok, _, err := u.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "ecila-pw-1", TTL: 60}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Second)
	if s, err := u.Authenticate(ctx, tok.ID, models.ScopeSession); err != nil || s == nil {
		t.Fatalf("before expiry: %v %v", s, err)
	}
	clk.Advance(time.Second)
	if s, _ := u.Authenticate(ctx, tok.ID, models.ScopeSession); s != nil {
		t.Fatal("token valid at created+ttl")
	}
	n, err := u.PruneExpired(ctx, 100)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}

// TestRevocationIsImmediate: the in-memory cache never outlives a logout or
// a password change made by this process.
func TestRevocationIsImmediate(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	mustCreate(t, u, "email", "alice@example.com", "password", "ecila-pw-1")
	ctx := context.Background()
	login := func() string {
		tok, _, err := u.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "ecila-pw-1"}, models.ClientMeta{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.ID
	}
	a, b := login(), login()
	sa, _ := u.Authenticate(ctx, a, models.ScopeSession)
	sb, _ := u.Authenticate(ctx, b, models.ScopeSession) // both now cached
	if sa == nil || sb == nil {
		t.Fatal("fresh tokens refused")
	}
	if ok, err := u.Logout(ctx, sa, models.ClientMeta{}); !ok || err != nil {
		t.Fatalf("logout: %v %v", ok, err)
	}
	if s, _ := u.Authenticate(ctx, a, models.ScopeSession); s != nil {
		t.Fatal("logged-out token still accepted")
	}
	if err := u.ChangePassword(ctx, sb, "ecila-pw-1", "ecila-pw-2", models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	c := login2(t, u, "ecila-pw-2")
	if s, _ := u.Authenticate(ctx, b, models.ScopeSession); s == nil {
		t.Fatal("the session that changed the password was ended")
	}
	sc, _ := u.Authenticate(ctx, c, models.ScopeSession)
	if _, err := u.DeleteUser(ctx, sc.User.ID, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{b, c} {
		if s, _ := u.Authenticate(ctx, tok, models.ScopeSession); s != nil {
			t.Fatal("token of a deleted user accepted")
		}
	}
}

func login2(t *testing.T, u *models.Users, pw string) string {
	tok, _, err := u.Login(context.Background(), models.Credentials{Email: "alice@example.com", Password: pw}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID
}

// TestLastUsedThrottled: authenticated reads write last_used at most once
// per TouchEvery per token.
func TestLastUsedThrottled(t *testing.T) {
	t.Parallel()
	u, db, clk := newUsersDB(t, models.Config{})
	mustCreate(t, u, "email", "alice@example.com", "password", "ecila-pw-1")
	ctx := context.Background()
	tok, _, _ := u.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "ecila-pw-1"}, models.ClientMeta{})
	lastUsed := func() int64 {
		var v int64
		if err := db.QueryRow(context.Background(), `SELECT last_used FROM access_tokens`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := lastUsed()
	clk.Advance(30 * time.Second)
	for i := 0; i < 100; i++ {
		u.Authenticate(ctx, tok.ID, models.ScopeSession)
	}
	if lastUsed() != first {
		t.Fatal("last_used written within the minute")
	}
	clk.Advance(31 * time.Second)
	u.Authenticate(ctx, tok.ID, models.ScopeSession)
	if got := lastUsed(); got != clk.Now().UnixMilli() {
		t.Fatalf("last_used %d, want %d", got, clk.Now().UnixMilli())
	}
}

// TestRevokedSessionCannotWrite: a session checked before a reset revoked
// it cannot then change the email or the password (the token is checked
// again inside the write).
func TestRevokedSessionCannotWrite(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	ctx := context.Background()
	user := mustCreate(t, u, "email", "race@example.com", "password", "quiet-harbor-12")
	tok, _, err := u.Login(ctx, models.Credentials{Email: "race@example.com", Password: "quiet-harbor-12"}, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := u.Authenticate(ctx, tok.ID, models.ScopeSession)
	if _, err := u.Logout(ctx, &models.Session{Token: sess.Token, User: sess.User}, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.UpdateUser(ctx, user.ID, models.StringFields("email", "thief@example.com"), sess.Token.Digest, models.ClientMeta{}); !errors.Is(err, models.ErrAuthRequired) {
		t.Fatalf("email change with a revoked session: %v", err)
	}
	if err := u.ChangePassword(ctx, sess, "quiet-harbor-12", "stolen-lantern-12", models.ClientMeta{}); !errors.Is(err, models.ErrAuthRequired) {
		t.Fatalf("password change with a revoked session: %v", err)
	}
	if _, _, err := u.Login(ctx, models.Credentials{Email: "race@example.com", Password: "quiet-harbor-12"}, models.ClientMeta{}); err != nil {
		t.Fatalf("the account changed: %v", err)
	}
}
