package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Copy moves every row of every table from one store to another, ids,
// hashes, token digests and times kept, so a team that moves (SQLite to
// PostgreSQL, or back for a backup) logs nobody out and loses no pending
// mail. latchkey copy is this function with flags and a progress bar.

// colKind is how a column's values travel between the dialects: the same
// value reads back as int64, float64, string or []byte depending on the
// store and on SQLite's dynamic typing, and goes out as the kind the
// column is declared with.
type colKind int

const (
	kindInt colKind = iota + 1
	kindReal
	kindText
	kindBlob
)

// copyColumn is one column and the migration that added it.
type copyColumn struct {
	name  string
	kind  colKind
	since int64
}

// copyTable is one table Copy moves.
type copyTable struct {
	name     string
	key      string // the primary key: rows are read in its order
	identity bool   // its id comes from a sequence, which is moved past the copied ids
	since    int64  // the migration that created it
	cols     []copyColumn
}

// copyTables is every table of the schema and every column, each with the
// migration that added it: a fixed list rather than one read from the
// database, so a copy never moves a table or column it does not know how
// to carry. TestCopyTablesMatchMigrations fails when a migration adds a
// table or a column this list lacks; add it here, with its version.
// Parents come before the tables whose foreign keys point at them.
func copyTables() []copyTable {
	return []copyTable{
		{name: "users", key: "id", identity: true, since: 1, cols: []copyColumn{
			{"id", kindInt, 1}, {"email", kindText, 1}, {"email_key", kindText, 1}, {"username", kindText, 1},
			{"username_key", kindText, 1}, {"password_hash", kindText, 1}, {"password_nfkc", kindInt, 1},
			{"email_verified", kindInt, 1}, {"realm", kindText, 1}, {"profile", kindText, 1},
			{"created", kindInt, 1}, {"updated", kindInt, 1}, {"disabled_at", kindInt, 1},
			{"email_placeholder", kindInt, 4}, {"is_admin", kindInt, 11},
		}},
		{name: "access_tokens", key: "digest", since: 1, cols: []copyColumn{
			{"digest", kindBlob, 1}, {"user_id", kindInt, 1}, {"ttl", kindInt, 1}, {"created", kindInt, 1},
			{"expires", kindInt, 1}, {"scopes", kindText, 1}, {"last_used", kindInt, 1}, {"ip", kindText, 1},
			{"user_agent", kindText, 1}, {"method", kindText, 6}, {"auth_at", kindInt, 6},
		}},
		{name: "verification_tokens", key: "digest", since: 1, cols: []copyColumn{
			{"digest", kindBlob, 1}, {"user_id", kindInt, 1}, {"email", kindText, 1}, {"created", kindInt, 1},
			{"expires", kindInt, 1},
		}},
		{name: "identities", key: "id", identity: true, since: 4, cols: []copyColumn{
			{"id", kindInt, 4}, {"provider", kindText, 4}, {"subject", kindText, 4}, {"user_id", kindInt, 4},
			{"profile", kindText, 4}, {"created", kindInt, 4}, {"updated", kindInt, 4},
		}},
		{name: "user_aliases", key: "alias", since: 5, cols: []copyColumn{
			{"alias", kindText, 5}, {"user_id", kindInt, 5},
		}},
		{name: "import_ledger", key: "kind, key", since: 5, cols: []copyColumn{
			{"kind", kindText, 5}, {"key", kindBlob, 5}, {"fp", kindInt, 5},
		}},
		{name: "email_changes", key: "user_id", since: 8, cols: []copyColumn{
			{"user_id", kindInt, 8}, {"new_email", kindText, 8}, {"new_email_key", kindText, 8}, {"old_email_key", kindText, 8},
			{"confirm", kindBlob, 8}, {"cancel", kindBlob, 8}, {"created", kindInt, 8}, {"expires", kindInt, 8},
		}},
		{name: "oauth_flows", key: "handle", since: 6, cols: []copyColumn{
			{"handle", kindBlob, 6}, {"purpose", kindText, 6}, {"provider", kindText, 6}, {"browser", kindBlob, 6},
			{"user_id", kindInt, 6}, {"session", kindBlob, 6}, {"nonce", kindText, 6}, {"verifier", kindText, 6},
			{"return_to", kindText, 6}, {"account", kindText, 6}, {"created", kindInt, 6}, {"expires", kindInt, 6},
		}},
		{name: "mfa_totp", key: "user_id", since: 9, cols: []copyColumn{
			{"user_id", kindInt, 9}, {"secret", kindText, 9}, {"confirmed", kindInt, 9}, {"last_step", kindInt, 9}, {"created", kindInt, 9},
		}},
		{name: "recovery_codes", key: "user_id, digest", since: 9, cols: []copyColumn{
			{"user_id", kindInt, 9}, {"digest", kindBlob, 9}, {"used_at", kindInt, 9},
		}},
		{name: "mfa_challenges", key: "digest", since: 9, cols: []copyColumn{
			{"digest", kindBlob, 9}, {"user_id", kindInt, 9}, {"ttl", kindInt, 9}, {"created", kindInt, 9}, {"expires", kindInt, 9},
		}},
		{name: "webauthn_credentials", key: "id", since: 9, cols: []copyColumn{
			{"id", kindBlob, 9}, {"user_id", kindInt, 9}, {"name", kindText, 9}, {"public_key", kindBlob, 9},
			{"attestation_type", kindText, 9}, {"aaguid", kindBlob, 9}, {"sign_count", kindInt, 9},
			{"backup_eligible", kindInt, 9}, {"backup_state", kindInt, 9}, {"transports", kindText, 9},
			{"created", kindInt, 9}, {"last_used", kindInt, 9},
		}},
		{name: "webauthn_handles", key: "user_id", since: 10, cols: []copyColumn{
			{"user_id", kindInt, 10}, {"handle", kindBlob, 10},
		}},
		{name: "webauthn_ceremonies", key: "challenge", since: 10, cols: []copyColumn{
			{"challenge", kindBlob, 10}, {"browser", kindBlob, 10}, {"purpose", kindText, 10}, {"user_id", kindInt, 10},
			{"bound", kindBlob, 10}, {"name", kindText, 10}, {"data", kindText, 10}, {"created", kindInt, 10}, {"expires", kindInt, 10},
		}},
		{name: "server_secrets", key: "name", since: 12, cols: []copyColumn{
			{"name", kindText, 12}, {"value", kindBlob, 12}, {"created", kindInt, 12},
		}},
		{name: "throttle", key: "key", since: 2, cols: []copyColumn{
			{"key", kindBlob, 2}, {"n", kindReal, 2}, {"at", kindInt, 2}, {"expires", kindInt, 2},
		}},
		{name: "outbox", key: "id", identity: true, since: 1, cols: []copyColumn{
			{"id", kindInt, 1}, {"kind", kindText, 1}, {"to_addr", kindText, 1}, {"subject", kindText, 1},
			{"html", kindText, 1}, {"text", kindText, 1}, {"created", kindInt, 1}, {"attempts", kindInt, 1},
			{"next_attempt_at", kindInt, 1}, {"last_error", kindText, 1}, {"sent_at", kindInt, 1},
			{"dead_at", kindInt, 1}, {"claimed_until", kindInt, 3},
		}},
		{name: "audit_events", key: "id", identity: true, since: 1, cols: []copyColumn{
			{"id", kindInt, 1}, {"time", kindInt, 1}, {"kind", kindText, 1}, {"user_id", kindInt, 1},
			{"ip", kindText, 1}, {"user_agent", kindText, 1}, {"detail", kindText, 1},
			{"request_id", kindText, 7},
			{"actor", kindText, 11},
		}},
	}
}

// schemaAt is copyTables as the schema stood at migration version.
func schemaAt(version int64) []copyTable {
	var out []copyTable
	for _, t := range copyTables() {
		if t.since > version {
			continue
		}
		cols := t.cols[:0:0]
		for _, c := range t.cols {
			if c.since <= version {
				cols = append(cols, c)
			}
		}
		t.cols = cols
		out = append(out, t)
	}
	return out
}

func (t copyTable) columnNames() []string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return names
}

// CopyOptions tune Copy.
type CopyOptions struct {
	// Force deletes the rows the target holds, inside the copy's
	// transaction, before copying. Without it a target holding any row is
	// refused with ErrTargetNotEmpty.
	Force bool
	// Progress, when set, is called as rows go in: once as each table
	// starts, after each batch, and once as it ends (Done == Total). It
	// runs on the copying goroutine.
	Progress func(CopyProgress)
}

// CopyProgress is where a copy stands.
type CopyProgress struct {
	Table             string
	Done, Total       int64 // rows of Table copied so far, and in all
	AllDone, AllTotal int64 // the same over every table
}

// TableCount is a number of rows of one table.
type TableCount struct {
	Table string
	Rows  int64
}

// CopyStats is what a copy did.
type CopyStats struct {
	Version int64        // the migration both schemas are at
	Copied  []TableCount // rows copied, per table, in copy order
	Deleted []TableCount // rows Force deleted from the target first (only tables that had some)
	Elapsed time.Duration
}

// Rows is the number of rows copied, over every table.
func (s CopyStats) Rows() int64 {
	var n int64
	for _, c := range s.Copied {
		n += c.Rows
	}
	return n
}

// ErrTargetNotEmpty is Copy refusing a target that holds rows without
// CopyOptions.Force: two databases are never mixed by accident.
var ErrTargetNotEmpty = errors.New("models: copy: the target database is not empty")

// Copy copies every table of src into dst, ids kept, and moves dst's id
// sequences past the copied ids (and past src's, so ids of rows deleted in
// src are not handed out again).
//
// It is all or nothing: every row goes into dst in one transaction, so on
// any failure (a row dst refuses, a lost connection, ctx cancelled) dst
// keeps no copied row; only the schema migrations Open applied stay. src
// is read in one read-only transaction, a consistent snapshot; rows
// written to src after that are not copied, so stop the servers first.
// Nothing should serve from dst either while it is replaced: its replicas'
// caches are not told.
//
// Both stores must be at the same migration, which they are when both were
// opened with Open by this binary; a src written by a newer latchkey (at a
// migration this one does not know) is refused.
func Copy(ctx context.Context, src, dst *DB, opts CopyOptions) (CopyStats, error) {
	start := time.Now()
	var st CopyStats
	if src == dst || src.path != "" && src.path == dst.path {
		return st, errors.New("models: copy: the source and the target are the same database")
	}
	known, err := latestMigration(dst.d)
	if err != nil {
		return st, fmt.Errorf("models: copy: %w", err)
	}
	sv, err := src.schemaVersion(ctx)
	if err != nil {
		return st, fmt.Errorf("models: copy: the source's schema version: %w", err)
	}
	dv, err := dst.schemaVersion(ctx)
	if err != nil {
		return st, fmt.Errorf("models: copy: the target's schema version: %w", err)
	}
	switch {
	case sv > known:
		return st, fmt.Errorf("models: copy: the source database is at migration %d, newer than this latchkey knows (%d): copy with the latchkey that last opened it", sv, known)
	case dv != sv:
		return st, fmt.Errorf("models: copy: the target database is at migration %d and the source at %d: open both with the same latchkey", dv, sv)
	}
	st.Version = sv
	tables := schemaAt(sv)

	err = src.read(ctx, func(rtx *Tx) error {
		totals := make([]int64, len(tables))
		next := make([]int64, len(tables))
		var allTotal int64
		for i, tb := range tables {
			if err := rtx.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&totals[i]); err != nil {
				return fmt.Errorf("models: copy: count %s: %w", tb.name, err)
			}
			allTotal += totals[i]
			if tb.identity {
				var err error
				if next[i], err = rtx.nextID(ctx, tb.name); err != nil {
					return fmt.Errorf("models: copy: the %s id sequence: %w", tb.name, err)
				}
			}
		}
		return dst.Write(ctx, time.Now(), func(wtx *Tx) error {
			st.Copied, st.Deleted = nil, nil
			deleted, err := wtx.clearForCopy(ctx, tables, opts.Force)
			if err != nil {
				return err
			}
			st.Deleted = deleted
			var allDone int64
			for i, tb := range tables {
				report := func(done int64) {
					if opts.Progress != nil {
						opts.Progress(CopyProgress{Table: tb.name, Done: done, Total: totals[i],
							AllDone: allDone + done, AllTotal: allTotal})
					}
				}
				// Each table's secondary indexes are built once it is full:
				// 100k users and 500k tokens, SQLite to PostgreSQL, went
				// from 12.1 s and 12.4 s to 9.2 s and 10.8 s (two runs each).
				var n int64
				err := wtx.WithoutIndexes(ctx, tb.name, func() error {
					var err error
					n, err = copyRows(ctx, rtx, wtx, tb, report)
					return err
				})
				if err != nil {
					return fmt.Errorf("models: copy %s: %w", tb.name, err)
				}
				allDone += n
				st.Copied = append(st.Copied, TableCount{Table: tb.name, Rows: n})
			}
			for i, tb := range tables {
				if tb.identity {
					if err := wtx.bumpIdentity(ctx, tb.name, next[i]); err != nil {
						return fmt.Errorf("models: copy: %w", err)
					}
				}
			}
			// Statistics for the planner, before the first request: the
			// target's tables went from empty to full in one go.
			return wtx.analyze(ctx, tables)
		})
	})
	st.Elapsed = time.Since(start)
	if err != nil {
		st.Copied, st.Deleted = nil, nil // rolled back: none of it happened
	}
	return st, err
}

// clearForCopy checks that the target holds no row, or, with force,
// deletes every row (children first) and says how many went.
func (t *Tx) clearForCopy(ctx context.Context, tables []copyTable, force bool) ([]TableCount, error) {
	var held []TableCount
	for _, tb := range tables {
		var n int64
		if err := t.QueryRow(ctx, `SELECT count(*) FROM `+tb.name).Scan(&n); err != nil {
			return nil, fmt.Errorf("models: copy: count the target's %s: %w", tb.name, err)
		}
		if n > 0 {
			held = append(held, TableCount{Table: tb.name, Rows: n})
		}
	}
	if len(held) == 0 {
		return nil, nil
	}
	if !force {
		return nil, fmt.Errorf("%w: it holds %s", ErrTargetNotEmpty, countsText(held))
	}
	for i := len(tables) - 1; i >= 0; i-- {
		if _, err := t.Exec(ctx, `DELETE FROM `+tables[i].name); err != nil {
			return nil, fmt.Errorf("models: copy: empty the target's %s: %w", tables[i].name, err)
		}
	}
	return held, nil
}

// countsText is counts as "users 3, access_tokens 12".
func countsText(counts []TableCount) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = c.Table + " " + strconv.FormatInt(c.Rows, 10)
	}
	return strings.Join(parts, ", ")
}

// copyRows streams tb from rtx into wtx in key order and returns how many
// rows went. report gets the rows written after each batch.
func copyRows(ctx context.Context, rtx, wtx *Tx, tb copyTable, report func(done int64)) (int64, error) {
	names := tb.columnNames()
	report(0)
	rows, err := rtx.Query(ctx, `SELECT `+strings.Join(names, ", ")+` FROM `+tb.name+` ORDER BY `+tb.key)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	w := wtx.newRowWriter(tb.name, names)
	defer w.discard()
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		for i, c := range tb.cols {
			vals[i] = convertCopied(vals[i], c.kind)
		}
		if err := w.add(ctx, vals...); err != nil {
			return n, err
		}
		n++
		if w.n == 0 { // a batch just went in
			report(w.sent)
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if err := w.close(ctx); err != nil {
		return n, err
	}
	report(n)
	return n, nil
}

// convertCopied gives a value read from one store the Go type the other
// store's column wants: SQLite may hand back a whole REAL as an integer,
// and a BLOB or TEXT written by another tool as the other.
func convertCopied(v any, k colKind) any {
	switch x := v.(type) {
	case int64:
		if k == kindReal {
			return float64(x)
		}
	case string:
		if k == kindBlob {
			return []byte(x)
		}
	case []byte:
		if k == kindText {
			return string(x)
		}
	}
	return v
}

// read runs fn in one read-only transaction, so every query it makes sees
// the same snapshot of the database.
func (db *DB) read(ctx context.Context, fn func(*Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.d.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.r.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("models: begin read: %w", err)
	}
	defer tx.Rollback() // it changed nothing
	return fn(&Tx{tx: tx, db: db, now: time.Now()})
}

// nextID is the id table's sequence hands out next (1 when it never has).
func (t *Tx) nextID(ctx context.Context, table string) (int64, error) {
	var next int64
	if t.db.d.name != "postgres" {
		err := t.QueryRow(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0) + 1`, table).Scan(&next)
		return next, err
	}
	// The sequence itself, not pg_sequence_last_value: that is NULL after
	// setval(…, false), which is how a copy leaves a sequence.
	var seq string
	if err := t.QueryRow(ctx, `SELECT pg_get_serial_sequence(?, 'id')`, table).Scan(&seq); err != nil {
		return 0, err
	}
	err := t.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM `+seq).Scan(&next)
	return next, err
}

// schemaVersion is the last migration goose applied to the database.
func (db *DB) schemaVersion(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	if err := db.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
		return 0, err
	}
	return v.Int64, nil
}

// latestMigration is the highest migration version this binary carries
// for the dialect: the files are named NNNNN_name.sql.
func latestMigration(d *dialect) (int64, error) {
	sub, err := d.migrations()
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(sub, "*.sql")
	if err != nil {
		return 0, err
	}
	var v int64
	for _, n := range names {
		num, _, _ := strings.Cut(n, "_")
		x, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migration %s: no version number", n)
		}
		v = max(v, x)
	}
	return v, nil
}

// Analyze refreshes the query planner's statistics of every table, as a
// bulk import should be followed by (Copy does it inside its transaction).
func (db *DB) Analyze(ctx context.Context) error {
	return db.Write(ctx, time.Now(), func(tx *Tx) error { return tx.analyze(ctx, copyTables()) })
}

// analyze runs ANALYZE on each of tables, one by one: on PostgreSQL a bare
// ANALYZE would walk every schema of the database.
func (t *Tx) analyze(ctx context.Context, tables []copyTable) error {
	for _, tb := range tables {
		if _, err := t.Exec(ctx, "ANALYZE "+tb.name); err != nil {
			return fmt.Errorf("models: analyze %s: %w", tb.name, err)
		}
	}
	return nil
}
