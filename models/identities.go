package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Identities: an account at a third-party provider (Google, GitHub, an
// OpenID Connect issuer, or LoopBack Passport's UserIdentity rows brought
// over by an import) that signs in to one user. An identity is keyed by
// (provider, subject), never by email: an address a provider reports is
// not proof of owning the local account that has it (SECURITY O4).

// Identity is one (provider, subject) pair and the user it signs in to.
type Identity struct {
	ID       int64  // given by the store; ignored by ImportIdentities
	Provider string // Latchkey's provider id: "google", "github", an OIDC <ID> lower-cased
	Subject  string // the provider's stable id of the account (OIDC "sub", Passport's externalId)
	UserID   int64
	// Profile is the provider's non-secret profile fields (id,
	// displayName, emails, name, provider). Provider tokens are never
	// stored anywhere.
	Profile Fields
	Created time.Time
	Updated time.Time // zero on import: Created
}

// ImportIdentities inserts identities inside t, in multi-row INSERTs.
// Each identity's user must exist (imported first); a (provider, subject)
// pair already taken fails the call, and Write then rolls everything back.
func (t *Tx) ImportIdentities(ctx context.Context, ids []Identity) error {
	if len(ids) == 0 {
		return nil
	}
	w := t.newRowWriter("identities", []string{"provider", "subject", "user_id", "profile", "created", "updated"})
	defer w.discard()
	for i := range ids {
		id := &ids[i]
		switch {
		case strings.TrimSpace(id.Provider) == "":
			return fmt.Errorf("models: import identities: identity %d of user %d has no provider", i, id.UserID)
		case id.Subject == "":
			return fmt.Errorf("models: import identities: identity %d (%s) of user %d has no subject", i, id.Provider, id.UserID)
		case id.UserID <= 0:
			return fmt.Errorf("models: import identities: identity %d (%s) has no user id", i, id.Provider)
		}
		created := id.Created
		if created.IsZero() {
			created = t.now
		}
		updated := id.Updated
		if updated.IsZero() {
			updated = created
		}
		if err := w.add(ctx, id.Provider, id.Subject, id.UserID, profileJSON(id.Profile), ms(created), ms(updated)); err != nil {
			return fmt.Errorf("models: import identities (near %s identity of user %d): %w", id.Provider, id.UserID, err)
		}
	}
	if err := w.close(ctx); err != nil {
		return fmt.Errorf("models: import identities: %w", err)
	}
	return nil
}

// FindUserByIdentity returns the user that (provider, subject) signs in
// to, or ErrNotFound. A disabled user is returned with Disabled set: the
// caller refuses the sign-in, as Login does.
func (s *Users) FindUserByIdentity(ctx context.Context, provider, subject string) (*User, error) {
	if provider == "" || subject == "" {
		return nil, ErrNotFound
	}
	var id int64
	err := s.db.QueryRow(ctx, `SELECT user_id FROM identities WHERE provider = ? AND subject = ?`, provider, subject).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.FindUserByID(ctx, id)
}

// IdentitiesOf lists the identities of a user, oldest first.
func (s *Users) IdentitiesOf(ctx context.Context, userID int64) ([]Identity, error) {
	rows, err := s.db.Query(ctx, `SELECT id, provider, subject, user_id, profile, created, updated FROM identities
		WHERE user_id = ? ORDER BY created, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Identity
	for rows.Next() {
		var (
			id               Identity
			profile          string
			created, updated int64
		)
		if err := rows.Scan(&id.ID, &id.Provider, &id.Subject, &id.UserID, &profile, &created, &updated); err != nil {
			return nil, err
		}
		if profile != "" && profile != "{}" {
			if id.Profile, err = ParseObject([]byte(profile)); err != nil {
				return nil, fmt.Errorf("models: identity %d profile: %w", id.ID, err)
			}
		}
		id.Created, id.Updated = fromMS(created), fromMS(updated)
		out = append(out, id)
	}
	return out, rows.Err()
}

// FindUserForLinking looks an address up as FindUserByEmail does, for
// deciding whether a provider's address belongs to an existing account.
// A placeholder address never matches: ErrNotFound.
func (s *Users) FindUserForLinking(ctx context.Context, email string) (*User, error) {
	u, err := s.FindUserByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	if u.EmailPlaceholder {
		return nil, ErrNotFound
	}
	return u, nil
}
