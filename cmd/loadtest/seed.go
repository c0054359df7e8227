package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
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
}

// seed creates the schema with the app's own migrations (models.Open), then
// bulk-inserts users and tokens straight into the SQLite file in one
// transaction with multi-row prepared statements. Journal and fsync are off
// while seeding (nothing else has the file open; a crash just means re-run),
// and WAL is switched back on at the end, as the server expects.
func seed(ctx context.Context, path string, spec seedSpec) ([]loadUser, error) {
	mdb, err := models.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := mdb.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, p := range []string{"PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF", "PRAGMA cache_size=-1048576",
		"PRAGMA foreign_keys=OFF", "PRAGMA temp_store=MEMORY"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}

	// Secondary indexes are dropped and rebuilt with their own SQL: building
	// an index once is much cheaper than millions of random inserts into it.
	var indexes []string
	rows, err := conn.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='access_tokens' AND sql IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var name, q string
		if err := rows.Scan(&name, &q); err != nil {
			rows.Close()
			return nil, err
		}
		names, indexes = append(names, name), append(indexes, q)
	}
	rows.Close()

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if spec.tokens > 100000 {
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `DROP INDEX "`+n+`"`); err != nil {
				return nil, err
			}
		}
	}

	now := time.Now().UTC()
	nowMS := now.UnixMilli()
	const batch = 200

	// Users: ids 1..users, emails load0000000@example.com, ...
	userIns := newBatchInsert(`INSERT INTO users(id, email, email_key, password_hash, password_nfkc, created, updated) VALUES `, "(?,?,?,?,1,?,?)", batch)
	for i := 0; i < spec.users; i++ {
		e := loadEmail(i)
		if err := userIns.add(ctx, tx, int64(i+1), e, e, spec.hash, nowMS, nowMS); err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
	}
	if err := userIns.flush(ctx, tx); err != nil {
		return nil, fmt.Errorf("seed users: %w", err)
	}

	// Tokens: the scenario users' known tokens, then random ones. Each row
	// is what the app writes: digest = SHA-256 of a 64-character token.
	type tokRow struct {
		digest  [32]byte
		userID  int64
		created int64
		expires int64
	}
	const ttl = 1209600
	out := make([]loadUser, spec.scenario)
	all := make([]tokRow, 0, max(spec.tokens, spec.scenario))
	for i := range spec.scenario {
		raw := models.NewTokenID()
		out[i] = loadUser{ID: int64(i + 1), Email: loadEmail(i), Token: raw}
		all = append(all, tokRow{digest: models.Digest(raw), userID: int64(i + 1), created: nowMS, expires: nowMS + ttl*1000})
	}
	for len(all) < spec.tokens {
		// math/rand is enough for who owns a token and how old it is.
		uid := mrand.IntN(spec.users)
		created := nowMS - int64(mrand.IntN(ttl))*1000 // somewhere in the last two weeks: still valid
		if mrand.IntN(100) < spec.expiredPct {
			created -= ttl * 1000 // two weeks older: expired
		}
		all = append(all, tokRow{digest: models.Digest(models.NewTokenID()), userID: int64(uid + 1), created: created, expires: created + ttl*1000})
	}
	// In digest order the primary-key B-tree is appended to, not split at random.
	slices.SortFunc(all, func(a, b tokRow) int { return bytes.Compare(a.digest[:], b.digest[:]) })
	tokIns := newBatchInsert(`INSERT INTO access_tokens(digest, user_id, ttl, created, expires, scopes, last_used, ip, user_agent) VALUES `,
		"(?,?,?,?,?,'',?,'127.0.0.1','loadtest')", batch)
	for _, t := range all {
		if err := tokIns.add(ctx, tx, t.digest[:], t.userID, ttl, t.created, t.expires, t.created); err != nil {
			return nil, fmt.Errorf("seed tokens: %w", err)
		}
	}
	if err := tokIns.flush(ctx, tx); err != nil {
		return nil, fmt.Errorf("seed tokens: %w", err)
	}
	if spec.tokens > 100000 {
		for _, q := range indexes {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("rebuild index: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	for _, p := range []string{"ANALYZE", "PRAGMA journal_mode=WAL"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return out, nil
}

// batchInsert sends rows in multi-row INSERTs through one prepared statement
// (and one more for the remainder).
type batchInsert struct {
	prefix, row string
	n           int
	stmt        *sql.Stmt
	args        []any
	rows        int
}

func newBatchInsert(prefix, row string, n int) *batchInsert {
	return &batchInsert{prefix: prefix, row: row, n: n}
}

func (b *batchInsert) query(rows int) string {
	return b.prefix + strings.TrimSuffix(strings.Repeat(b.row+",", rows), ",")
}

func (b *batchInsert) add(ctx context.Context, tx *sql.Tx, args ...any) error {
	b.args = append(b.args, args...)
	b.rows++
	if b.rows < b.n {
		return nil
	}
	if b.stmt == nil {
		st, err := tx.PrepareContext(ctx, b.query(b.n))
		if err != nil {
			return err
		}
		b.stmt = st
	}
	_, err := b.stmt.ExecContext(ctx, b.args...)
	b.args, b.rows = b.args[:0], 0
	return err
}

func (b *batchInsert) flush(ctx context.Context, tx *sql.Tx) error {
	if b.stmt != nil {
		defer b.stmt.Close()
	}
	if b.rows == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, b.query(b.rows), b.args...)
	b.args, b.rows = b.args[:0], 0
	return err
}
