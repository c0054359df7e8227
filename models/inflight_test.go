package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// TestThrottleManyRealUsersBehindOneIP: more simultaneous correct logins
// from one address than its failure bucket holds all succeed — attempts in
// flight make later ones wait, they do not turn them away.
func TestThrottleManyRealUsersBehindOneIP(t *testing.T) {
	t.Parallel()
	lc := models.DefaultLimitConfig()
	// What is tested is that they wait rather than be refused; how long
	// they wait depends on the machine (-race, a loaded CI), not on us.
	lc.InflightWait = 5 * time.Minute
	u, db, _, _ := newLimitedUsers(t, models.Config{}, &lc)
	const n = 40 // twice the default burst of 20
	// Hashes at cost 8 so the logins overlap: each holds its slot ~15 ms,
	// far longer than the 40 reservations take.
	slow, err := models.NewHasher(models.HashConfig{BcryptCost: 8}).Hash(context.Background(), "nat-password-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		user := mustCreate(t, u, "email", fmt.Sprintf("nat%d@example.com", i), "password", "nat-password-1")
		importHash(t, db, user.ID, slow)
	}
	meta := models.ClientMeta{IP: "203.0.113.9"}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := u.Login(context.Background(), models.Credentials{Email: fmt.Sprintf("nat%d@example.com", i), Password: "nat-password-1"}, meta)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a correct login behind a shared address was refused: %v", err)
		}
	}
}
