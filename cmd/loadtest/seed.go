package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/latchkey/latchkey/models"
)

// loadUser is a seeded account the scenarios log in as and read.
type loadUser struct {
	ID    int64
	Email string
	Token string // a live session token
}

func loadEmail(i int) string { return fmt.Sprintf("load%07d@example.com", i) }

// seedSpec is what goes into a database before the server starts.
type seedSpec struct {
	users      int    // accounts, all with the same password hash
	tokens     int    // access tokens in all (at least one per scenario user)
	scenario   int    // the first scenario accounts get a known token each
	hash       string // bcrypt of the known password, computed once
	expiredPct int    // share of the extra tokens that are already expired
	spare      int    // more known tokens, of the scenario users in turn, returned after theirs (for logouts)
}

// seedChunk is how many users or tokens are handed to the import API at a
// time: it bounds the memory of the rows in flight, not the transaction.
const seedChunk = 10000

// seed creates the schema (on a SQLite file or a postgres:// URL) with the app's own migrations and fills it
// through the models import API in one transaction, on a file opened with
// models.ImportOptions.Unsafe (no journal, no fsync: nothing else has the
// file open, and a crash just means run again), refreshes the planner's
// statistics, and opens the file once as the server does, which puts it
// back in WAL mode.
func seed(ctx context.Context, path string, spec seedSpec) ([]loadUser, error) {
	db, err := models.OpenImport(ctx, path, models.ImportOptions{Unsafe: true})
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	const ttl = 1209600
	out := make([]loadUser, spec.scenario, spec.scenario+spec.spare)
	err = db.Write(ctx, now, func(tx *models.Tx) error {
		// Users: ids 1..users, emails load0000000@example.com, ...; the
		// hash is ours, over the NFKC form, so logins do not rehash.
		users := make([]models.ImportUser, 0, seedChunk)
		for i := range spec.users {
			users = append(users, models.ImportUser{ID: int64(i + 1), Email: loadEmail(i), PasswordHash: spec.hash, PasswordNFKC: true, Created: now})
			if len(users) == seedChunk || i == spec.users-1 {
				if err := tx.ImportUsers(ctx, users); err != nil {
					return fmt.Errorf("seed users: %w", err)
				}
				users = users[:0]
			}
		}

		// Tokens: the scenario users' known tokens, then random ones, as
		// digests (56 bytes each in memory, where an ImportToken is 200).
		type tokRow struct {
			digest  [32]byte
			userID  int64
			created time.Time
		}
		all := make([]tokRow, 0, max(spec.tokens, spec.scenario))
		for i := range spec.scenario {
			raw := models.NewTokenID()
			out[i] = loadUser{ID: int64(i + 1), Email: loadEmail(i), Token: raw}
			all = append(all, tokRow{digest: models.Digest(raw), userID: int64(i + 1), created: now})
		}
		for i := range spec.spare {
			raw, uid := models.NewTokenID(), int64(i%spec.scenario+1)
			out = append(out, loadUser{ID: uid, Email: loadEmail(int(uid - 1)), Token: raw})
			all = append(all, tokRow{digest: models.Digest(raw), userID: uid, created: now})
		}
		for len(all) < spec.tokens {
			// math/rand is enough for who owns a token and how old it is.
			uid := mrand.IntN(spec.users)
			created := now.Add(-time.Duration(mrand.IntN(ttl)) * time.Second) // somewhere in the last two weeks: still valid
			if mrand.IntN(100) < spec.expiredPct {
				created = created.Add(-ttl * time.Second) // two weeks older: expired
			}
			all = append(all, tokRow{digest: models.Digest(models.NewTokenID()), userID: int64(uid + 1), created: created})
		}
		// In digest order the primary-key B-tree is appended to, not split at random.
		slices.SortFunc(all, func(a, b tokRow) int { return bytes.Compare(a.digest[:], b.digest[:]) })
		// The secondary indexes (by user, by expiry) are built once at the
		// end rather than grown by random inserts.
		return tx.WithoutIndexes(ctx, "access_tokens", func() error {
			tokens := make([]models.ImportToken, 0, seedChunk)
			for i, t := range all {
				tokens = append(tokens, models.ImportToken{Digest: t.digest, UserID: t.userID, TTL: ttl, Created: t.created,
					IP: "127.0.0.1", UA: "loadtest"})
				if len(tokens) == seedChunk || i == len(all)-1 {
					if err := tx.ImportTokens(ctx, tokens); err != nil {
						return fmt.Errorf("seed tokens: %w", err)
					}
					tokens = tokens[:0]
				}
			}
			return nil
		})
	})
	if err == nil {
		err = db.Analyze(ctx)
	}
	if err := errors.Join(err, db.Close()); err != nil {
		return nil, err
	}
	// Open as the server does: WAL mode again (on PostgreSQL: nothing to do).
	db, err = models.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return out, db.Close()
}
