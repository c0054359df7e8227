package models_test

import (
	"context"
	"testing"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
)

// BenchmarkResetRequest compares a reset request for a known address with
// one for an unknown address (SECURITY R2: they must take the same time),
// on the suite's store (LATCHKEY_TEST_STORE=postgres for PostgreSQL). The
// subscriber queues one mail, as boot's does, without rendering it.
func BenchmarkResetRequest(b *testing.B) {
	ctx := context.Background()
	db, err := models.Open(ctx, testdb.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	u := models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil, models.Config{Password: models.Policy{MinLength: 8}})
	u.OnResetPasswordRequest(func(ctx context.Context, tx *models.Tx, ev models.ResetPasswordRequest) error {
		return tx.EnqueueEmail(ctx, models.Email{Kind: "reset-password", To: ev.Email, Subject: "Reset", HTML: "<a>x</a>", Text: "x"})
	})
	if _, err := u.CreateUser(ctx, models.StringFields("email", "ann@example.com", "password", "correct horse battery"), models.ClientMeta{}); err != nil {
		b.Fatal(err)
	}
	for _, email := range []string{"ann@example.com", "nobody@example.com"} {
		name := map[string]string{"ann@example.com": "known", "nobody@example.com": "unknown"}[email]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := u.RequestPasswordReset(ctx, email, models.ClientMeta{IP: "192.0.2.1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
