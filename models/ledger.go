package models

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
)

// The import ledger: what earlier imports brought in (import_ledger), so
// that running an import again is a delta. A record whose fingerprint is
// unchanged is left alone, a changed one updated, a new one added, and one
// the source no longer has removed. The ledger outlives the rows it names:
// a token logged out here, or a user deleted here, is remembered as
// imported and never brought back by a later run.
//
// User aliases live beside it: another id a user is known by (a LoopBack
// MongoDB user's ObjectId), which /api/users/<alias> resolves.

// The kinds of ledger entries.
const (
	LedgerUser     = "user"     // key: the user id
	LedgerToken    = "token"    // key: the token's digest
	LedgerLink     = "link"     // key: the verification token's digest
	LedgerIdentity = "identity" // key: provider and subject
)

// IdentityKey names an identity in the ledger.
type IdentityKey struct{ Provider, Subject string }

// ImportLedger is the target's side of a delta: what earlier imports
// brought in, and the target's user ids and aliases. The bool of each set
// is for the caller to mark entries it meets in the source; those left
// unmarked are the ones the source no longer has.
type ImportLedger struct {
	Users      map[int64]uint64 // imported user id → its fingerprint
	Tokens     map[[32]byte]bool
	Links      map[[32]byte]bool
	Identities map[IdentityKey]bool
	UserSeen   map[int64]bool

	Aliases   map[string]int64 // every alias in the target → its user id
	MaxUserID int64            // the target's largest user id, imported or not
	UserCount int64            // the target's users, imported or not

	ids    map[int64]bool   // every user id in the target
	native map[string]int64 // EmailKey → id of the target's users that no import brought
}

// Imported says whether an earlier import brought the user id in.
func (l *ImportLedger) Imported(id int64) bool {
	_, ok := l.Users[id]
	return ok
}

// Exists says whether the target has a user with this id.
func (l *ImportLedger) Exists(id int64) bool { return l.ids[id] }

// Native is the id of a user the target has by email (without case) that
// no import brought: one who signed up here.
func (l *ImportLedger) Native(email string) (int64, bool) {
	id, ok := l.native[EmailKey(email)]
	return id, ok
}

// Empty: no earlier import and no user at all (a first import into a new
// store).
func (l *ImportLedger) Empty() bool { return l == nil || l.UserCount == 0 && len(l.Users) == 0 }

// ClearMarks unmarks every entry, for another pass over the source.
func (l *ImportLedger) ClearMarks() {
	for _, m := range []map[[32]byte]bool{l.Tokens, l.Links} {
		for k := range m {
			m[k] = false
		}
	}
	for k := range l.Identities {
		l.Identities[k] = false
	}
	l.UserSeen = make(map[int64]bool, len(l.Users))
}

// ReadImportLedger reads the ledger and the target's user ids and aliases.
func (db *DB) ReadImportLedger(ctx context.Context) (*ImportLedger, error) {
	l := &ImportLedger{Users: map[int64]uint64{}, Tokens: map[[32]byte]bool{}, Links: map[[32]byte]bool{},
		Identities: map[IdentityKey]bool{}, UserSeen: map[int64]bool{}, Aliases: map[string]int64{}}
	if err := db.QueryRow(ctx, `SELECT COALESCE(max(id), 0), count(*) FROM users`).Scan(&l.MaxUserID, &l.UserCount); err != nil {
		return nil, fmt.Errorf("models: read the import ledger: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT kind, key, fp FROM import_ledger`)
	if err != nil {
		return nil, fmt.Errorf("models: read the import ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var key []byte
		var fp int64
		if err := rows.Scan(&kind, &key, &fp); err != nil {
			return nil, fmt.Errorf("models: read the import ledger: %w", err)
		}
		switch kind {
		case LedgerUser:
			if len(key) != 8 {
				return nil, fmt.Errorf("models: the import ledger has a user key of %d bytes", len(key))
			}
			l.Users[int64(binary.BigEndian.Uint64(key))] = uint64(fp)
		case LedgerToken, LedgerLink:
			if len(key) != 32 {
				return nil, fmt.Errorf("models: the import ledger has a %s key of %d bytes", kind, len(key))
			}
			if kind == LedgerToken {
				l.Tokens[[32]byte(key)] = false
			} else {
				l.Links[[32]byte(key)] = false
			}
		case LedgerIdentity:
			p, s, ok := splitIdentityKey(key)
			if !ok {
				return nil, errors.New("models: the import ledger has an identity key without a provider")
			}
			l.Identities[IdentityKey{p, s}] = false
		default:
			return nil, fmt.Errorf("models: the import ledger has entries of an unknown kind %q", kind)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("models: read the import ledger: %w", err)
	}
	rows.Close()
	urows, err := db.Query(ctx, `SELECT id, email_key FROM users`)
	if err != nil {
		return nil, fmt.Errorf("models: read the target's users: %w", err)
	}
	defer urows.Close()
	l.ids, l.native = make(map[int64]bool, l.UserCount), map[string]int64{}
	for urows.Next() {
		var id int64
		var key string
		if err := urows.Scan(&id, &key); err != nil {
			return nil, fmt.Errorf("models: read the target's users: %w", err)
		}
		l.ids[id] = true
		if _, ok := l.Users[id]; !ok {
			l.native[key] = id
		}
	}
	if err := urows.Err(); err != nil {
		return nil, fmt.Errorf("models: read the target's users: %w", err)
	}
	urows.Close()
	arows, err := db.Query(ctx, `SELECT alias, user_id FROM user_aliases`)
	if err != nil {
		return nil, fmt.Errorf("models: read the user aliases: %w", err)
	}
	defer arows.Close()
	for arows.Next() {
		var a string
		var id int64
		if err := arows.Scan(&a, &id); err != nil {
			return nil, fmt.Errorf("models: read the user aliases: %w", err)
		}
		l.Aliases[a] = id
	}
	if err := arows.Err(); err != nil {
		return nil, fmt.Errorf("models: read the user aliases: %w", err)
	}
	return l, nil
}

func userKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func identityKey(k IdentityKey) []byte { return append(append([]byte(k.Provider), 0), k.Subject...) }

func splitIdentityKey(b []byte) (string, string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), string(b[i+1:]), i > 0
		}
	}
	return "", "", false
}

// Fingerprint is a 64-bit hash of what an import stores of u, but for
// its times: a re-run updates a user whose fingerprint changed.
func (u *ImportUser) Fingerprint() uint64 {
	h := fnv.New64a()
	put := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	opt := func(set bool, s string) {
		if set {
			put("1" + s)
		} else {
			put("0")
		}
	}
	put(strconv.FormatInt(u.ID, 10))
	put(u.Email)
	put(u.Username)
	put(u.PasswordHash)
	opt(u.PasswordNFKC, "")
	opt(u.EmailVerified != nil, strconv.FormatBool(u.EmailVerified != nil && *u.EmailVerified))
	opt(u.Realm != nil, deref(u.Realm))
	for _, f := range canonicalFields(u.Profile) {
		put(f)
	}
	opt(!u.DisabledAt.IsZero(), "")
	opt(u.EmailPlaceholder, "")
	put(u.Alias)
	return h.Sum64()
}

// canonicalFields is the profile as name=value strings in name order, each
// value with its objects' keys sorted and no insignificant space: the same
// profile read from a store that orders or spaces it differently (a
// re-export, another connector) fingerprints the same.
func canonicalFields(fs Fields) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		v := []byte(f.Value)
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var x any
		if dec.Decode(&x) == nil {
			if b, err := json.Marshal(x); err == nil {
				v = b
			}
		}
		out = append(out, f.Name+"="+string(v))
	}
	slices.Sort(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// LedgerEntry is one thing an import brought in.
type LedgerEntry struct {
	Kind string
	User int64       // LedgerUser
	FP   uint64      // LedgerUser: ImportUser.Fingerprint
	Hash [32]byte    // LedgerToken, LedgerLink: the digest
	ID   IdentityKey // LedgerIdentity
}

func (e *LedgerEntry) key() []byte {
	switch e.Kind {
	case LedgerUser:
		return userKey(e.User)
	case LedgerIdentity:
		return identityKey(e.ID)
	}
	return e.Hash[:]
}

// RecordImported notes entries in the ledger inside t, in multi-row
// INSERTs. An entry already there fails the call.
func (t *Tx) RecordImported(ctx context.Context, entries []LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	w := t.newRowWriter("import_ledger", []string{"kind", "key", "fp"})
	defer w.discard()
	for i := range entries {
		e := &entries[i]
		if err := w.add(ctx, e.Kind, e.key(), int64(e.FP)); err != nil {
			return fmt.Errorf("models: record imports: %w", err)
		}
	}
	if err := w.close(ctx); err != nil {
		return fmt.Errorf("models: record imports: %w", err)
	}
	return nil
}

// UpdateImportedUser writes u over the user with its id, as a re-run does
// when the source changed it since the last one, and notes its new
// fingerprint. Sessions and caches see the change at once (every
// replica). A user deleted here since is left deleted; the result says
// whether it was there.
func (t *Tx) UpdateImportedUser(ctx context.Context, u ImportUser) (bool, error) {
	t.dropUser(u.ID)
	var realm any
	if u.Realm != nil {
		realm = *u.Realm
	}
	res, err := t.Exec(ctx, `UPDATE users SET email = ?, email_key = ?, username = ?, username_key = ?, password_hash = ?,
		password_nfkc = ?, email_verified = ?, realm = ?, profile = ?, updated = ?, email_placeholder = ? WHERE id = ?`,
		u.Email, EmailKey(u.Email), nullString(u.Username), nullString(UsernameKey(u.Username)), u.PasswordHash,
		boolInt(u.PasswordNFKC), flag(u.EmailVerified), realm, profileJSON(u.Profile), ms(t.now), boolInt(u.EmailPlaceholder), u.ID)
	if err != nil {
		if isUnique(err) {
			return false, fmt.Errorf("models: update imported user %d: its new email or username belongs to another user here", u.ID)
		}
		return false, fmt.Errorf("models: update imported user %d: %w", u.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if _, err := t.Exec(ctx, `UPDATE import_ledger SET fp = ? WHERE kind = ? AND key = ?`, int64(u.Fingerprint()), LedgerUser, userKey(u.ID)); err != nil {
		return false, fmt.Errorf("models: update imported user %d: %w", u.ID, err)
	}
	return n == 1, nil
}

// Unimport removes what entry names from the target (the source no longer
// has it: a LoopBack logout, a deleted user, a confirmed address) and
// forgets the entry. It says whether a row was still there to remove. A
// removed token or user fails at once on every replica.
func (t *Tx) Unimport(ctx context.Context, e LedgerEntry) (bool, error) {
	var q string
	var args []any
	switch e.Kind {
	case LedgerUser:
		t.dropUser(e.User)
		q, args = `DELETE FROM users WHERE id = ?`, []any{e.User}
	case LedgerToken:
		t.dropToken(e.Hash)
		q, args = `DELETE FROM access_tokens WHERE digest = ?`, []any{e.Hash[:]}
	case LedgerLink:
		q, args = `DELETE FROM verification_tokens WHERE digest = ?`, []any{e.Hash[:]}
	case LedgerIdentity:
		q, args = `DELETE FROM identities WHERE provider = ? AND subject = ?`, []any{e.ID.Provider, e.ID.Subject}
	default:
		return false, fmt.Errorf("models: unimport: unknown kind %q", e.Kind)
	}
	res, err := t.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("models: unimport a %s: %w", e.Kind, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n > 0 && e.Kind == LedgerUser {
		if err := t.Audit(ctx, "user.deleted", e.User, ClientMeta{}, "import: deleted in the source"); err != nil {
			return false, err
		}
	}
	if _, err := t.Exec(ctx, `DELETE FROM import_ledger WHERE kind = ? AND key = ?`, e.Kind, e.key()); err != nil {
		return false, fmt.Errorf("models: unimport a %s: %w", e.Kind, err)
	}
	return n > 0, nil
}

// UserIDByAlias is the id of the user known by alias (a LoopBack MongoDB
// ObjectId, lower-case hex), or ErrNotFound.
func (s *Users) UserIDByAlias(ctx context.Context, alias string) (int64, error) {
	var id int64
	err := s.db.QueryRow(ctx, `SELECT user_id FROM user_aliases WHERE alias = ?`, alias).Scan(&id)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, ErrNotFound
		}
		return 0, err
	}
	return id, nil
}
