package models

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The import API: accounts and tokens that already exist elsewhere (a
// LoopBack 3 store, another Latchkey, the load test's generator) go in with
// their ids, hashes, times and token digests kept, so the people they
// belong to stay logged in and keep their passwords.
//
// ImportUsers and ImportTokens are methods of Tx: they write inside the
// caller's transaction, so users and their tokens go in together or not at
// all, and a big import is one transaction that calls them once per chunk
// (the caller chooses the chunk, bounding its memory):
//
//	err := db.Write(ctx, time.Now(), func(tx *models.Tx) error {
//		if err := tx.ImportUsers(ctx, users); err != nil {
//			return err
//		}
//		return tx.ImportTokens(ctx, tokens)
//	})
//
// Rows go in as multi-row INSERTs of up to maxRowsPerInsert rows through
// one prepared statement per table; a call's last partial batch goes row by
// row, so a table has at most two statements whatever the size. The
// statements are prepared once a transaction (Tx.prepare), not once a call:
// an import of a million users calls ImportUsers 500 times.

// ImportUser is an account as another store has it.
type ImportUser struct {
	ID       int64  // required: kept as is (later sign-ups get ids past the largest)
	Email    string // required, stored as given; lookups use EmailKey
	Username string // "" when none
	// PasswordHash is stored as given: bcrypt ($2a$, $2b$, $2y$) or a
	// $argon2id$ PHC string. LoopBack's bcryptjs hashes ($2a$10$…) verify
	// as they are. "" makes an account that cannot log in until a reset.
	PasswordHash string
	// PasswordNFKC says the hash was made over the NFKC form of the
	// password, as Latchkey makes them. Leave it false for a hash from
	// another system (LoopBack hashed the raw bytes): verification then
	// uses the raw bytes, and the first successful login rehashes.
	PasswordNFKC  bool
	EmailVerified *bool   // nil: never set (LoopBack omits the field)
	Realm         *string // nil: none
	Profile       Fields  // extra LoopBack properties, kept in order
	Created       time.Time
	Updated       time.Time // zero: Created
	DisabledAt    time.Time // zero: enabled
	// EmailPlaceholder marks Email as an address another system invented
	// (LoopBack Passport's <id>@loopback.<provider>.com): it gets no mail
	// and never matches for account linking (User.EmailPlaceholder).
	EmailPlaceholder bool
	// Alias is another id the user is known by (a LoopBack MongoDB
	// ObjectId, lower-case hex): /api/users/<alias> resolves to the user.
	// "" when none.
	Alias string
}

// ImportToken is an access token (a session or a reset token) as another
// store has it. The database keeps only the digest, so give the token
// itself in ID when the source has it (LoopBack keeps the id in the clear),
// or its SHA-256 in Digest when the source kept only that (Latchkey).
type ImportToken struct {
	ID     string   // the token a client presents: 64 letters and digits (LoopBack's shape)
	Digest [32]byte // used when ID is "": Digest(token)
	UserID int64
	TTL    int64 // seconds; -1 never expires
	// Created is when the token was issued: it expires TTL seconds later.
	// Zero: the transaction's time.
	Created  time.Time
	Scopes   string    // ScopeSession ("") or ScopeReset
	LastUsed time.Time // zero: Created
	IP       string
	UA       string
}

// ImportVerification is a pending email-verification link as another
// store has it: LoopBack keeps the user's verificationToken in the clear
// (128 hex characters from User.verify), and the link it mailed,
// /api/users/confirm?uid=ID&token=TOKEN, keeps working once the token's
// digest is stored here.
type ImportVerification struct {
	Token   string // the token the link carries
	UserID  int64
	Email   string    // the address being verified: the link confirms only while the user still has it
	Created time.Time // zero: the transaction's time
	Expires time.Time // required: LoopBack's links never expire, Latchkey's do
}

// Import batching. SQLite accepts 32766 parameters a statement and
// PostgreSQL 65535. Past a hundred rows a statement the size hardly
// matters (cmd/loadtest's seed of 500k tokens: 100, 200 and 500 rows a
// statement were within the noise of each other, 500 slightly ahead).
const (
	maxRowsPerInsert = 500
	maxArgsPerInsert = 8000
)

// ImportUsers inserts users inside t, ids kept, in multi-row INSERTs, then
// moves the users id sequence past the largest id so later sign-ups do not
// collide (PostgreSQL; SQLite's AUTOINCREMENT follows by itself). An id or
// email (or username) already taken fails the call, and Write then rolls
// everything back.
func (t *Tx) ImportUsers(ctx context.Context, users []ImportUser) error {
	if len(users) == 0 {
		return nil
	}
	w := t.newRowWriter("users", []string{"id", "email", "email_key", "username", "username_key", "password_hash",
		"password_nfkc", "email_verified", "realm", "profile", "created", "updated", "disabled_at", "email_placeholder"})
	defer w.discard()
	aliases := t.newRowWriter("user_aliases", []string{"alias", "user_id"})
	defer aliases.discard()
	for i := range users {
		u := &users[i]
		switch {
		case u.ID <= 0:
			return fmt.Errorf("models: import users: user %d (%q) has no id: an import keeps the source's ids", i, u.Email)
		case strings.TrimSpace(u.Email) == "":
			return fmt.Errorf("models: import users: user %d has no email", u.ID)
		}
		created := u.Created
		if created.IsZero() {
			created = t.now
		}
		updated := u.Updated
		if updated.IsZero() {
			updated = created
		}
		var disabled any
		if !u.DisabledAt.IsZero() {
			disabled = ms(u.DisabledAt)
		}
		nfkc := 0
		if u.PasswordNFKC {
			nfkc = 1
		}
		var realm any
		if u.Realm != nil {
			realm = *u.Realm
		}
		err := w.add(ctx, u.ID, u.Email, EmailKey(u.Email), nullString(u.Username), nullString(UsernameKey(u.Username)),
			u.PasswordHash, nfkc, flag(u.EmailVerified), realm, profileJSON(u.Profile), ms(created), ms(updated), disabled, boolInt(u.EmailPlaceholder))
		if err != nil {
			return fmt.Errorf("models: import users (near id %d): %w", u.ID, err)
		}
		if u.Alias != "" {
			if err := aliases.add(ctx, u.Alias, u.ID); err != nil {
				return fmt.Errorf("models: import users (near id %d): %w", u.ID, err)
			}
		}
	}
	if err := w.close(ctx); err != nil {
		return fmt.Errorf("models: import users: %w", err)
	}
	if err := aliases.close(ctx); err != nil {
		return fmt.Errorf("models: import user aliases: %w", err)
	}
	if err := t.bumpIdentity(ctx, "users", 0); err != nil {
		return fmt.Errorf("models: import users: %w", err)
	}
	return nil
}

// ImportTokens inserts access tokens inside t in multi-row INSERTs. A raw
// token (ID) is stored as its digest; a token whose shape Authenticate
// would refuse is an error, since it could never be presented. Each token's
// user must exist (imported first, in this transaction or before).
func (t *Tx) ImportTokens(ctx context.Context, tokens []ImportToken) error {
	if len(tokens) == 0 {
		return nil
	}
	w := t.newRowWriter("access_tokens", []string{"digest", "user_id", "ttl", "created", "expires", "scopes",
		"last_used", "ip", "user_agent"})
	defer w.discard()
	for i := range tokens {
		tk := &tokens[i]
		d := tk.Digest
		switch {
		case tk.ID != "":
			if !ValidTokenShape(tk.ID) {
				return fmt.Errorf("models: import tokens: token %d of user %d is not %d letters and digits: it could never be presented",
					i, tk.UserID, TokenLength)
			}
			d = Digest(tk.ID)
			if tk.Digest != ([32]byte{}) && tk.Digest != d {
				return fmt.Errorf("models: import tokens: token %d of user %d: Digest is not the SHA-256 of ID", i, tk.UserID)
			}
		case d == [32]byte{}:
			return fmt.Errorf("models: import tokens: token %d of user %d has neither ID nor Digest", i, tk.UserID)
		}
		if tk.UserID <= 0 {
			return fmt.Errorf("models: import tokens: token %d has no user id", i)
		}
		created := tk.Created
		if created.IsZero() {
			created = t.now
		}
		var expires any
		if tk.TTL >= 0 {
			expires = ms(created.Add(time.Duration(tk.TTL) * time.Second))
		}
		lastUsed := tk.LastUsed
		if lastUsed.IsZero() {
			lastUsed = created
		}
		err := w.add(ctx, d[:], tk.UserID, tk.TTL, ms(created), expires, tk.Scopes, ms(lastUsed), tk.IP, truncate(tk.UA, 512))
		if err != nil {
			return fmt.Errorf("models: import tokens (near token %d): %w", i, err)
		}
	}
	if err := w.close(ctx); err != nil {
		return fmt.Errorf("models: import tokens: %w", err)
	}
	return nil
}

// ImportVerifications inserts pending email-verification links inside t.
// Each link's user must exist (imported first).
func (t *Tx) ImportVerifications(ctx context.Context, links []ImportVerification) error {
	if len(links) == 0 {
		return nil
	}
	w := t.newRowWriter("verification_tokens", []string{"digest", "user_id", "email", "created", "expires"})
	defer w.discard()
	for i := range links {
		l := &links[i]
		switch {
		case l.Token == "":
			return fmt.Errorf("models: import verifications: link %d of user %d has no token", i, l.UserID)
		case l.UserID <= 0:
			return fmt.Errorf("models: import verifications: link %d has no user id", i)
		case l.Expires.IsZero():
			return fmt.Errorf("models: import verifications: link %d of user %d has no expiry", i, l.UserID)
		}
		created := l.Created
		if created.IsZero() {
			created = t.now
		}
		d := Digest(l.Token)
		if err := w.add(ctx, d[:], l.UserID, l.Email, ms(created), ms(l.Expires)); err != nil {
			return fmt.Errorf("models: import verifications (near user %d): %w", l.UserID, err)
		}
	}
	if err := w.close(ctx); err != nil {
		return fmt.Errorf("models: import verifications: %w", err)
	}
	return nil
}

// rowWriter is the generic row path under the import API and Copy: rows
// for one table, sent as multi-row INSERTs through a prepared statement.
// Values it is given are held until their batch is sent.
type rowWriter struct {
	t     *Tx
	head  string // INSERT INTO table(columns) VALUES
	tuple string // (?,?,…) for one row
	cols  int
	per   int // rows a full statement carries

	full, one *sql.Stmt
	args      []any
	n         int   // rows in args
	sent      int64 // rows written so far
}

func (t *Tx) newRowWriter(table string, columns []string) *rowWriter {
	per := max(1, min(maxRowsPerInsert, maxArgsPerInsert/len(columns)))
	return &rowWriter{
		t:     t,
		head:  "INSERT INTO " + table + "(" + strings.Join(columns, ", ") + ") VALUES ",
		tuple: "(" + strings.TrimSuffix(strings.Repeat("?,", len(columns)), ",") + ")",
		cols:  len(columns),
		per:   per,
		args:  make([]any, 0, per*len(columns)),
	}
}

// add queues one row, sending a full batch when there is one.
func (w *rowWriter) add(ctx context.Context, vals ...any) error {
	if len(vals) != w.cols {
		return fmt.Errorf("models: %s: %d values for %d columns", w.head, len(vals), w.cols)
	}
	w.args = append(w.args, vals...)
	w.n++
	if w.n < w.per {
		return nil
	}
	if w.full == nil {
		q := w.head + strings.TrimSuffix(strings.Repeat(w.tuple+",", w.per), ",")
		st, err := w.t.prepare(ctx, q)
		if err != nil {
			return err
		}
		w.full = st
	}
	if _, err := w.full.ExecContext(ctx, w.args...); err != nil {
		return err
	}
	w.sent += int64(w.n)
	clear(w.args) // let the values go
	w.args, w.n = w.args[:0], 0
	return nil
}

// close sends what is left, row by row through one more prepared
// statement (a statement per remainder size would grow the rebind cache
// and the transaction's statements with every size).
func (w *rowWriter) close(ctx context.Context) error {
	defer w.discard()
	if w.n == 0 {
		return nil
	}
	st, err := w.t.prepare(ctx, w.head+w.tuple)
	if err != nil {
		return err
	}
	w.one = st
	for i := 0; i < w.n; i++ {
		if _, err := w.one.ExecContext(ctx, w.args[i*w.cols:(i+1)*w.cols]...); err != nil {
			return err
		}
		w.sent++
	}
	w.args, w.n = w.args[:0], 0
	return nil
}

// discard lets the statements go (they stay prepared for the rest of the
// transaction); rows not sent are dropped.
func (w *rowWriter) discard() {
	w.full, w.one = nil, nil
}

// prepare prepares a statement inside the transaction, placeholders
// rewritten for the dialect, once: a later call with the same query gets
// the same statement, and all are closed when the transaction ends. For
// the row writers' INSERTs only (a few per table), not arbitrary queries.
func (t *Tx) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, t.db.d.rebind(query))
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = st
	return st, nil
}

// bumpIdentity moves the id sequence of table (users, outbox or
// audit_events: a constant, never input) so the next id it hands out is
// past the largest id in the table and at least next (a source's sequence
// may be past its largest id: ids of deleted rows are never handed out
// again, so old audit rows keep pointing at the right user). It never
// moves a sequence back.
func (t *Tx) bumpIdentity(ctx context.Context, table string, next int64) error {
	if t.db.d.name == "postgres" {
		// nextval both reads where the sequence is and lets setval keep it
		// there when it is already further on.
		_, err := t.Exec(ctx, `SELECT setval(q.s, GREATEST((SELECT COALESCE(max(id), 0) + 1 FROM `+table+`), ?, nextval(q.s)), false)
			FROM (SELECT pg_get_serial_sequence(?, 'id')::regclass AS s) AS q`, next, table)
		if err != nil {
			return fmt.Errorf("move the %s id sequence: %w", table, err)
		}
		return nil
	}
	// SQLite moves sqlite_sequence to the largest id inserted; only a
	// source's sequence past its largest id needs writing.
	if next <= 1 {
		return nil
	}
	if _, err := t.Exec(ctx, `INSERT INTO sqlite_sequence(name, seq) SELECT ?, 0
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)`, table, table); err != nil {
		return fmt.Errorf("move the %s id sequence: %w", table, err)
	}
	if _, err := t.Exec(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?`, next-1, table, next-1); err != nil {
		return fmt.Errorf("move the %s id sequence: %w", table, err)
	}
	return nil
}

// WithoutIndexes runs fn with table's secondary indexes dropped (those no
// constraint needs: not the primary key, not a UNIQUE) and builds them
// again afterwards, all inside t: building an index once over N rows costs
// far less than N inserts at random places in it (cmd/loadtest's seed of
// 100k users and 500k tokens: 8 s with the indexes in place, 5 s without).
// Meanwhile the table's queries inside t go without those indexes. For
// bulk imports.
func (t *Tx) WithoutIndexes(ctx context.Context, table string, fn func() error) error {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`
	if t.db.d.name == "postgres" {
		q = `SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
			WHERE x.indrelid = ?::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`
	}
	rows, err := t.Query(ctx, q, table)
	if err != nil {
		return fmt.Errorf("models: the indexes of %s: %w", table, err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return fmt.Errorf("models: the indexes of %s: %w", table, err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("models: the indexes of %s: %w", table, err)
	}
	for _, n := range names {
		if _, err := t.Exec(ctx, `DROP INDEX "`+strings.ReplaceAll(n, `"`, `""`)+`"`); err != nil {
			return fmt.Errorf("models: drop index %s: %w", n, err)
		}
	}
	if err := fn(); err != nil {
		return err
	}
	for i, def := range defs {
		if _, err := t.Exec(ctx, def); err != nil {
			return fmt.Errorf("models: rebuild index %s: %w", names[i], err)
		}
	}
	return nil
}

// importCacheKiB is the page cache of an unsafe import. Pages it cannot
// hold go to the file (there is no journal) and come back from the OS's
// cache, so past the B-trees' hot pages it buys little: importing 1M users
// and 2M tokens took the same 23-27 s with 32 MiB, 128 MiB or 1 GiB, and
// peak RSS was 690 MB, 880 MB and 1,360 MB (BENCHMARKS.md).
const importCacheKiB = 128 << 10

// ImportOptions tune OpenImport.
type ImportOptions struct {
	// Unsafe, on SQLite, fills a file as fast as SQLite can: no rollback
	// journal, no fsync, no foreign-key checks, a 128 MiB page cache
	// (importCacheKiB), and one connection for reads and writes (a read waits for the write
	// under way). Only for a new file that nothing else has open and that
	// can be thrown away: a crash, or a write that fails and rolls back,
	// leaves it corrupt, as there is no journal to roll back with. The
	// load test seeds with it (about twice as fast as a safe import). It
	// changes nothing on PostgreSQL.
	Unsafe bool
}

// OpenImport opens the store named by dsn as Open does (creating and
// migrating it), set up for a bulk import by opts. Close it, then Open the
// file as usual (which puts it back in WAL mode) and call Analyze.
func OpenImport(ctx context.Context, dsn string, opts ImportOptions) (*DB, error) {
	db, err := Open(ctx, dsn)
	if err != nil || !opts.Unsafe || db.d.name != "sqlite" {
		return db, err
	}
	path := db.path
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("models: reopen %s for import: %w", path, err)
	}
	pragmas := url.Values{}
	for _, p := range []string{"journal_mode(OFF)", "synchronous(OFF)", "foreign_keys(0)", "cache_size(-" + strconv.Itoa(importCacheKiB) + ")", "temp_store(MEMORY)"} {
		pragmas.Add("_pragma", p)
	}
	c, err := sql.Open("sqlite", "file:"+path+"?"+pragmas.Encode())
	if err != nil {
		return nil, fmt.Errorf("models: open %s for import: %w", path, err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	db = &DB{w: c, r: c, d: sqliteDialect(), path: path}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("models: open %s for import: %w", path, err)
	}
	return db, nil
}
