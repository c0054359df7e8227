package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/models"
)

// TestSeed: a database seeded through the import API is one the server
// serves: every scenario token authenticates as its user, the seeded
// password logs in without a rehash, the token counts and the expired
// share are as asked, and a sign-up gets the next id.
func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte(models.Normalize(password)), 4)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.db")
	const users, tokens, scenario = 300, 1500, 40
	seeded, err := seed(ctx, path, seedSpec{users: users, tokens: tokens, scenario: scenario, hash: string(hash), expiredPct: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(seeded) != scenario {
		t.Fatalf("%d scenario users, want %d", len(seeded), scenario)
	}

	db, err := models.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, models.Config{Password: models.Policy{MinLength: 8}})
	for _, u := range seeded {
		sess, err := svc.Authenticate(ctx, u.Token, models.ScopeSession)
		if err != nil || sess == nil || sess.User.ID != u.ID || sess.User.Email != u.Email {
			t.Fatalf("scenario user %d: %+v, %v", u.ID, sess, err)
		}
	}
	_, who, err := svc.Login(ctx, models.Credentials{Email: seeded[7].Email, Password: password}, models.ClientMeta{})
	if err != nil || who.ID != seeded[7].ID || !who.PasswordNFKC {
		t.Fatalf("login: %+v, %v", who, err)
	}
	if again, _ := svc.FindUserByID(ctx, who.ID); again.PasswordHash != string(hash) {
		t.Error("the seeded hash was rehashed at login")
	}

	var total, expired int
	now := time.Now().UnixMilli()
	if err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE expires <= ?) FROM access_tokens`, now).Scan(&total, &expired); err != nil {
		t.Fatal(err)
	}
	// One login above added a token.
	if total != tokens+1 || expired < (tokens-scenario)/4 || expired > (tokens-scenario)*3/4 {
		t.Errorf("%d tokens, %d expired; want %d and about half of the %d random ones", total, expired, tokens+1, tokens-scenario)
	}
	u, err := svc.CreateUser(ctx, models.StringFields("email", "new@example.com", "password", "fresh-start-12"), models.ClientMeta{})
	if err != nil || u.ID != users+1 {
		t.Errorf("sign-up after the seed: %+v, %v", u, err)
	}
}
