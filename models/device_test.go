package models_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestDeviceKeySharedByReplicas: without LATCHKEY_SECRET_KEY the first
// replica to need the key makes it in the database and every other one
// (started at the same moment) reads the same, so a device cookie one
// signs lets a login through on another from a drained address; a server
// with its own LATCHKEY_SECRET_KEY does not trust it.
func TestDeviceKeySharedByReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lc := models.DefaultLimitConfig()
	lc.IPBurst, lc.IPPerMinute = 1, 0.001
	first, db, _, clk := newLimitedUsers(t, models.Config{}, &lc)
	lc.Now = clk.Now
	alice := mustCreate(t, first, "email", "alice@example.com", "password", "silver-harbor-77")
	h := models.NewHasher(models.HashConfig{BcryptCost: 4})
	replicas := make([]*models.Users, 4)
	cookies := make([]string, len(replicas))
	var wg sync.WaitGroup
	for i := range replicas {
		replicas[i] = models.NewUsers(db, h, models.NewLimiter(db, lc), models.Config{Now: clk.Now, Password: models.Policy{MinLength: 8}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := replicas[i].DeviceCookie(ctx, alice.ID, "")
			if err != nil {
				t.Error(err)
			}
			cookies[i] = v
		}()
	}
	wg.Wait()
	meta := models.ClientMeta{IP: "192.0.2.7"}
	if _, _, err := replicas[0].Login(ctx, models.Credentials{Email: "nobody@example.com", Password: "wrong-guess-1"}, meta); !errors.Is(err, models.ErrLoginFailed) {
		t.Fatalf("first guess: %v", err)
	}
	if _, _, err := replicas[1].Login(ctx, models.Credentials{Email: "alice@example.com", Password: "silver-harbor-77"}, meta); !errors.Is(err, models.ErrThrottled) {
		t.Fatalf("the address is not drained: %v", err)
	}
	for i, c := range cookies {
		m := meta
		m.Device = c
		r := replicas[(i+1)%len(replicas)]
		if _, _, err := r.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "silver-harbor-77"}, m); err != nil {
			t.Errorf("cookie of replica %d on replica %d: %v", i, (i+1)%len(replicas), err)
		}
	}
	own := models.NewUsers(db, h, models.NewLimiter(db, lc), models.Config{Now: clk.Now, Password: models.Policy{MinLength: 8},
		SecretKey: []byte(strings.Repeat("k", models.SecretKeyMinLength))})
	m := meta
	m.Device = cookies[0]
	if _, _, err := own.Login(ctx, models.Credentials{Email: "alice@example.com", Password: "silver-harbor-77"}, m); !errors.Is(err, models.ErrThrottled) {
		t.Errorf("a server with another key trusted the cookie: %v", err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM server_secrets`).Scan(&n); err != nil || n != 1 {
		t.Errorf("server_secrets rows: %d, %v", n, err)
	}
}
