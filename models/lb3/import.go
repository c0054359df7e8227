package lb3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/models"
)

// countedModels are read only to be counted in the report: roles
// (Latchkey has none).
var countedModels = []string{"Role", "RoleMapping"}

// batchRows is how many rows go to the import API at a time: it bounds
// what Write holds; the API batches statements itself.
const batchRows = 2000

// Plan is a checked import: Check's result, which Write carries out.
type Plan struct {
	store  *Store
	opts   Options
	report Report
	users  map[int64]*userInfo // the chosen model's users
}

// userInfo is what Check keeps of each user: enough to list duplicates.
type userInfo struct {
	email    string
	verified bool
	live     int
	last     time.Time
	skip     bool // a duplicate, left out under SkipDuplicates
	// placeholder: the address is Passport's invention; link: the user
	// has a pending verification link.
	placeholder, link bool

	identities, linked int // Passport UserIdentity and UserCredential rows
}

// Report is what Check found: the counts an import would make.
func (p *Plan) Report() Report { return p.report }

// Check reads the whole store without writing: it picks the user and
// token models, checks every user and token record, and finds
// case-duplicate emails. A *RecordError names a record that cannot be
// imported, a *DuplicatesError the duplicate groups, a *UsageError an
// option to change.
func (s *Store) Check(ctx context.Context, opts Options) (*Plan, error) {
	start := time.Now()
	opts, settings, appErr := s.applyApp(opts) // the app's model names and settings (app.go)
	if appErr != nil {
		return nil, appErr
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.VerifyTTL == 0 {
		opts.VerifyTTL = 24 * time.Hour
	}
	if opts.TokenModel == "" {
		opts.TokenModel = "AccessToken"
	}
	if opts.IdentityModel == "" {
		opts.IdentityModel = "UserIdentity"
	}
	if opts.CredentialModel == "" {
		opts.CredentialModel = "UserCredential"
	}
	if m, ok := s.src.(*mongoDir); ok && opts.Ledger != nil {
		m.keep(opts.Ledger.Aliases, opts.Ledger.MaxUserID)
	}
	p := &Plan{store: s, opts: opts}
	rep := &p.report
	rep.Source, rep.TokenModel = s.src.describe(), opts.TokenModel
	rep.Skipped, rep.NotImported = map[string]int64{}, map[string]int64{}
	rep.Settings = settings

	// The user model: the one asked for, or the custom "user" or the
	// built-in "User", whichever holds rows (§0).
	candidates := []string{"user", "User"}
	if opts.UserModel != "" {
		candidates = []string{opts.UserModel}
	}
	var present []string
	seen := map[string]bool{}
	for _, m := range candidates {
		table, ok, err := s.src.table(ctx, m)
		if err != nil {
			return nil, err
		}
		if ok && !seen[table] { // PostgreSQL: "User" is the table "user" too
			seen[table] = true
			present = append(present, m)
		}
	}
	if len(present) == 0 {
		return nil, &UsageError{fmt.Sprintf("lb3: %s has no user model %s: name it with --user-model", rep.Source, strings.Join(candidates, " or "))}
	}
	counted := slices.Clone(present)
	for _, m := range countedModels {
		if _, ok, err := s.src.table(ctx, m); err != nil {
			return nil, err
		} else if ok {
			counted = append(counted, m)
		}
	}
	found := map[string]map[int64]*userInfo{}
	type userNotes struct {
		needsReset []int64
		trimmed    []Trimmed
	}
	notes := map[string]*userNotes{}
	var read int64
	err := s.src.scan(ctx, counted, func(model string, rec models.Fields) error {
		read++
		p.progress("check", read, 0)
		if !slices.Contains(present, model) {
			rep.NotImported[model]++
			return nil
		}
		nr, nt := len(rep.NeedsReset), len(rep.Trimmed)
		u, link, err := p.convertUser(model, rec)
		if err != nil {
			return err
		}
		if found[model] == nil {
			found[model], notes[model] = map[int64]*userInfo{}, &userNotes{}
		}
		n := notes[model]
		n.needsReset, n.trimmed = append(n.needsReset, rep.NeedsReset[nr:]...), append(n.trimmed, rep.Trimmed[nt:]...)
		rep.NeedsReset, rep.Trimmed = rep.NeedsReset[:nr], rep.Trimmed[:nt]
		if _, dup := found[model][u.ID]; dup {
			return &RecordError{Model: model, ID: strconv.FormatInt(u.ID, 10), Err: errors.New("a second record with this id")}
		}
		found[model][u.ID] = &userInfo{email: u.Email, verified: u.EmailVerified != nil && *u.EmailVerified,
			placeholder: u.EmailPlaceholder, link: link != nil}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var holding []string
	for _, m := range present {
		if len(found[m]) > 0 {
			holding = append(holding, m)
		}
	}
	switch len(holding) {
	case 0:
		rep.UserModel = present[0]
	case 1:
		rep.UserModel = holding[0]
	default:
		return nil, &UsageError{fmt.Sprintf("lb3: both %s hold users (%d and %d): choose one with --user-model "+
			"(and --token-model if its tokens are not in AccessToken)", strings.Join(holding, " and "),
			len(found[holding[0]]), len(found[holding[1]]))}
	}
	p.users = found[rep.UserModel]
	if p.users == nil {
		p.users = map[int64]*userInfo{}
	}
	// The notes convertUser made (NeedsReset, Trimmed), for the chosen
	// model only.
	if n := notes[rep.UserModel]; n != nil {
		rep.NeedsReset, rep.Trimmed = n.needsReset, n.trimmed
	}
	if err := p.checkTokens(ctx, &read); err != nil {
		return nil, err
	}
	if err := p.checkIdentities(ctx, &read); err != nil {
		return nil, err
	}
	if err := p.findDuplicates(); err != nil {
		return nil, err
	}
	p.countIdentities()
	// The counts a first import reaches (a re-run's are DryRun's).
	for _, u := range p.users {
		switch {
		case u.skip:
			rep.Skipped[SkipDuplicateUser]++
			if u.link {
				rep.Skipped[SkipDuplicateLink]++
			}
		default:
			rep.Users++
			if u.placeholder {
				rep.Placeholders++
			}
			if u.link {
				rep.Verifications++
			}
		}
	}
	rep.Elapsed = time.Since(start)
	return p, nil
}

// checkTokens reads every token: each is checked, live ones are counted
// per user, and a live token of a missing user is an error.
func (p *Plan) checkTokens(ctx context.Context, read *int64) error {
	rep := &p.report
	if _, ok, err := p.store.src.table(ctx, rep.TokenModel); err != nil || !ok {
		return err
	}
	return p.store.src.scan(ctx, []string{rep.TokenModel}, func(model string, rec models.Fields) error {
		*read++
		p.progress("check", *read, 0)
		tok, reason, err := p.convertToken(rec)
		if err != nil {
			return err
		}
		if reason != "" {
			rep.Skipped[reason]++
			return nil
		}
		u := p.users[tok.UserID]
		if u == nil {
			return &RecordError{Model: model, ID: tokenName(tok.ID),
				Err: fmt.Errorf("a live token of user %d, who is not in %s", tok.UserID, rep.UserModel)}
		}
		u.live++
		if tok.Created.After(u.last) {
			u.last = tok.Created
		}
		if tok.Scopes == models.ScopeReset {
			rep.ResetTokens++
		} else {
			rep.Sessions++
		}
		return nil
	})
}

// findDuplicates groups users by models.EmailKey. Without SkipDuplicates
// a group is an error; with it the group's users (and their tokens) are
// left out. Usernames equal but for case cannot be stored either: they are
// an error naming both users.
func (p *Plan) findDuplicates() error {
	byKey := map[string][]int64{}
	for id, u := range p.users {
		k := models.EmailKey(u.email)
		byKey[k] = append(byKey[k], id)
	}
	var groups []DuplicateGroup
	for k, ids := range byKey {
		if len(ids) < 2 {
			continue
		}
		slices.Sort(ids)
		g := DuplicateGroup{Key: k}
		for _, id := range ids {
			u := p.users[id]
			g.Members = append(g.Members, DuplicateMember{ID: id, Email: u.email, Verified: u.verified, LiveTokens: u.live,
				Identities: u.identities + u.linked, LastToken: u.last})
		}
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b DuplicateGroup) int { return strings.Compare(a.Key, b.Key) })
	p.report.Duplicates = groups
	if len(groups) == 0 {
		return nil
	}
	if !p.opts.SkipDuplicates {
		return &DuplicatesError{Groups: groups}
	}
	for _, g := range groups {
		for _, m := range g.Members {
			u := p.users[m.ID]
			u.skip = true
			p.report.Sessions -= int64(u.live) // counted as live above; they stay behind
			p.report.Skipped[SkipDuplicateToken] += int64(u.live)
		}
	}
	return nil
}

// Write carries the plan out inside tx: users (with their verification
// links and aliases), then identities, then tokens, in batches, each noted
// in the import ledger. Call it inside one models.DB.Write, so a failure
// leaves the target as it was. The report counts what was written.
//
// Against a target that earlier imports filled (Options.Ledger), Write is
// a delta: users the source changed since are updated, new users, tokens,
// links and identities added, and what the source no longer has (a
// LoopBack logout, a deleted user, a used link) removed here too. What the
// ledger says was imported and this target has since logged out or
// deleted stays gone. A second run on the same source changes nothing.
//
// Into an empty target the users and access_tokens tables go without
// their secondary indexes while the rows go in (models.Tx.WithoutIndexes):
// building each index once at the end costs far less than a million
// inserts at random places in it.
func (p *Plan) Write(ctx context.Context, tx *models.Tx) (rep Report, err error) {
	if !p.opts.Ledger.Empty() {
		return p.write(ctx, tx)
	}
	err = tx.WithoutIndexes(ctx, "users", func() error {
		return tx.WithoutIndexes(ctx, "access_tokens", func() error {
			rep, err = p.write(ctx, tx)
			return err
		})
	})
	return rep, err
}

// DryRun is the report Write would make, without writing: for a re-run,
// what would be added, updated and removed.
func (p *Plan) DryRun(ctx context.Context) (Report, error) {
	return p.write(ctx, nil)
}

// delta is one Write (or DryRun) pass: the target's ledger, and what is
// waiting to go into tx. A nil tx writes nothing and only counts.
type delta struct {
	p      *Plan
	tx     *models.Tx
	led    *models.ImportLedger
	rep    *Report
	done   int64
	total  int64
	ledger []models.LedgerEntry
	// digests are the token and link entries, held back and written in
	// key order at the end: the ledger's primary key takes two million
	// random digests at less than half the cost in order (measured:
	// 4.0–4.8 s of CPU as they come, 1.7 s sorted).
	digests map[string][][32]byte // by kind
}

func (d *delta) dry() bool { return d.tx == nil }

// step counts one record handled, for the progress bar.
func (d *delta) step() {
	d.done++
	d.p.progress("write", d.done, d.total)
}

// note queues a ledger entry, sent with the next flush (tokens and links
// at the end, in key order).
func (d *delta) note(e models.LedgerEntry) {
	switch {
	case d.dry():
	case e.Kind == models.LedgerToken || e.Kind == models.LedgerLink:
		if d.digests == nil {
			d.digests = map[string][][32]byte{}
		}
		d.digests[e.Kind] = append(d.digests[e.Kind], e.Hash)
	default:
		d.ledger = append(d.ledger, e)
	}
}

// flushDigests writes the held-back token and link entries, sorted.
func (d *delta) flushDigests(ctx context.Context) error {
	for _, kind := range []string{models.LedgerLink, models.LedgerToken} {
		hs := d.digests[kind]
		slices.SortFunc(hs, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
		for len(hs) > 0 { // in batches: a LedgerEntry is three times a digest
			n := min(len(hs), batchRows)
			d.ledger = d.ledger[:0]
			for _, h := range hs[:n] {
				d.ledger = append(d.ledger, models.LedgerEntry{Kind: kind, Hash: h})
			}
			if err := d.tx.RecordImported(ctx, d.ledger); err != nil {
				return err
			}
			hs = hs[n:]
		}
	}
	d.digests, d.ledger = nil, d.ledger[:0]
	return nil
}

func (d *delta) flushLedger(ctx context.Context) error {
	if d.dry() || len(d.ledger) == 0 {
		return nil
	}
	err := d.tx.RecordImported(ctx, d.ledger)
	d.ledger = d.ledger[:0]
	return err
}

func (p *Plan) write(ctx context.Context, tx *models.Tx) (Report, error) {
	start := time.Now()
	plan := p.report
	rep := Report{Source: plan.Source, UserModel: plan.UserModel, TokenModel: plan.TokenModel,
		Skipped: map[string]int64{}, Removed: map[string]int64{}, NotImported: plan.NotImported, Duplicates: plan.Duplicates,
		Settings: plan.Settings}
	led := p.opts.Ledger
	if led == nil {
		led = &models.ImportLedger{}
	}
	led.ClearMarks()
	d := &delta{p: p, tx: tx, led: led, rep: &rep, ledger: make([]models.LedgerEntry, 0, 2*batchRows),
		total: plan.Users + plan.Identities + plan.LinkedIdentities + plan.Sessions + plan.ResetTokens}
	// convertUser notes hashes and profiles in p.report as it goes: take
	// this pass's notes, leave Check's as they were.
	nr, nt := len(p.report.NeedsReset), len(p.report.Trimmed)
	defer func() { p.report.NeedsReset, p.report.Trimmed = p.report.NeedsReset[:nr], p.report.Trimmed[:nt] }()
	if err := d.users(ctx); err != nil {
		return rep, err
	}
	rep.NeedsReset = slices.Clone(p.report.NeedsReset[nr:])
	rep.Trimmed = slices.Clone(p.report.Trimmed[nt:])
	if err := p.writeIdentities(ctx, d); err != nil {
		return rep, err
	}
	if err := d.tokens(ctx); err != nil {
		return rep, err
	}
	if err := d.flushDigests(ctx); err != nil {
		return rep, err
	}
	if err := d.removeGone(ctx); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// users is the users pass: new users go in (in batches into an empty
// target, one by one into one that has users, so a clash names its user),
// changed ones are updated, unchanged ones left alone.
func (d *delta) users(ctx context.Context) error {
	p, led, rep := d.p, d.led, d.rep
	batched := led.Empty()
	users := make([]models.ImportUser, 0, batchRows)
	links := make([]models.ImportVerification, 0, batchRows)
	flush := func() error {
		if d.dry() {
			users, links = users[:0], links[:0]
			return nil
		}
		if err := d.tx.ImportUsers(ctx, users); err != nil {
			if len(users) == 1 {
				return &RecordError{Model: p.report.UserModel, ID: strconv.FormatInt(users[0].ID, 10), Err: fmt.Errorf(
					"its id, email or username belongs to a user here who was not imported (signed up after the first import?); "+
						"resolve it by hand: %w", err)}
			}
			return err
		}
		if err := d.tx.ImportVerifications(ctx, links); err != nil {
			return err
		}
		users, links = users[:0], links[:0]
		return d.flushLedger(ctx)
	}
	err := p.store.src.scan(ctx, []string{p.report.UserModel}, func(model string, rec models.Fields) error {
		u, link, err := p.convertUser(model, rec)
		if err != nil {
			return err
		}
		d.step()
		old, imported := led.Users[u.ID]
		if imported {
			led.UserSeen[u.ID] = true // even a duplicate skipped now stays as it was
		}
		if imported && !led.Exists(u.ID) {
			rep.Skipped[SkipDeletedHere]++ // deleted here since: it stays deleted
			return nil
		}
		if info := p.users[u.ID]; info == nil || info.skip {
			rep.Skipped[SkipDuplicateUser]++
			if link != nil {
				rep.Skipped[SkipDuplicateLink]++
			}
			return nil
		}
		if link != nil {
			if err := d.link(*link, &links); err != nil {
				return err
			}
		}
		fp := u.Fingerprint()
		switch {
		case imported && old == fp:
			rep.Unchanged++
			return nil
		case imported:
			rep.Updated++
			if !d.dry() {
				if _, err := d.tx.UpdateImportedUser(ctx, u); err != nil {
					return &RecordError{Model: model, ID: strconv.FormatInt(u.ID, 10), Err: err}
				}
			}
			return nil
		case led.Exists(u.ID):
			return &RecordError{Model: model, ID: strconv.FormatInt(u.ID, 10), Err: errors.New(
				"a user with this id signed up here, not imported: LoopBack and Latchkey both handed it out; resolve it by hand")}
		}
		if other, ok := led.Native(u.Email); ok {
			return &RecordError{Model: model, ID: strconv.FormatInt(u.ID, 10), Err: fmt.Errorf(
				"user %d signed up here with the same email since the first import; resolve it by hand", other)}
		}
		rep.Users++
		if u.EmailPlaceholder {
			rep.Placeholders++
		}
		users = append(users, u)
		d.note(models.LedgerEntry{Kind: models.LedgerUser, User: u.ID, FP: fp})
		if !batched || len(users) == batchRows {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// link handles one pending verification link of an imported user.
func (d *delta) link(l models.ImportVerification, links *[]models.ImportVerification) error {
	h := models.Digest(l.Token)
	if _, ok := d.led.Links[h]; ok {
		d.led.Links[h] = true
		d.rep.Unchanged++
		return nil
	}
	if d.led.Imported(l.UserID) && !d.led.Exists(l.UserID) {
		d.rep.Skipped[SkipDeletedHere]++
		return nil
	}
	d.rep.Verifications++
	*links = append(*links, l)
	d.note(models.LedgerEntry{Kind: models.LedgerLink, Hash: h})
	return nil
}

// tokens is the tokens pass: live tokens not yet imported go in.
func (d *delta) tokens(ctx context.Context) error {
	p, led, rep := d.p, d.led, d.rep
	if _, ok, err := p.store.src.table(ctx, p.report.TokenModel); err != nil || !ok {
		return err
	}
	tokens := make([]models.ImportToken, 0, batchRows)
	flush := func() error {
		if !d.dry() {
			if err := d.tx.ImportTokens(ctx, tokens); err != nil {
				return err
			}
		}
		tokens = tokens[:0]
		return d.flushLedger(ctx)
	}
	err := p.store.src.scan(ctx, []string{p.report.TokenModel}, func(model string, rec models.Fields) error {
		tok, reason, err := p.convertToken(rec)
		switch {
		case err != nil:
			return err
		case reason != "":
			rep.Skipped[reason]++
			return nil
		}
		d.step()
		h := models.Digest(tok.ID)
		if _, ok := led.Tokens[h]; ok {
			led.Tokens[h] = true
			rep.Unchanged++
			return nil
		}
		u := p.users[tok.UserID]
		switch {
		case u == nil:
			return &RecordError{Model: model, ID: tokenName(tok.ID),
				Err: fmt.Errorf("a live token of user %d, who is not in %s (the source changed during the import?)", tok.UserID, p.report.UserModel)}
		case u.skip:
			rep.Skipped[SkipDuplicateToken]++
			return nil
		case led.Imported(tok.UserID) && !led.Exists(tok.UserID):
			rep.Skipped[SkipDeletedHere]++
			return nil
		case tok.Scopes == models.ScopeReset:
			rep.ResetTokens++
		default:
			rep.Sessions++
		}
		if tok.TTL < 0 {
			rep.Eternal++
		}
		tokens = append(tokens, tok)
		d.note(models.LedgerEntry{Kind: models.LedgerToken, Hash: h})
		if len(tokens) == batchRows {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// removeGone removes here what earlier imports brought in and the source
// no longer has: tokens logged out (or expired) in LoopBack, users
// deleted there, links used, identities unlinked.
func (d *delta) removeGone(ctx context.Context) error {
	led, rep := d.led, d.rep
	var gone []models.LedgerEntry
	for id := range led.Users {
		if !led.UserSeen[id] {
			gone = append(gone, models.LedgerEntry{Kind: models.LedgerUser, User: id})
		}
	}
	for h, seen := range led.Tokens {
		if !seen {
			gone = append(gone, models.LedgerEntry{Kind: models.LedgerToken, Hash: h})
		}
	}
	for h, seen := range led.Links {
		if !seen {
			gone = append(gone, models.LedgerEntry{Kind: models.LedgerLink, Hash: h})
		}
	}
	for k, seen := range led.Identities {
		if !seen {
			gone = append(gone, models.LedgerEntry{Kind: models.LedgerIdentity, ID: k})
		}
	}
	for _, e := range gone {
		rep.Removed[removedReason(e.Kind)]++
		if d.dry() {
			continue
		}
		if _, err := d.tx.Unimport(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Removal reasons, as the report prints them.
const (
	RemovedUsers      = "users deleted in the source"
	RemovedTokens     = "tokens logged out or expired in the source"
	RemovedLinks      = "verification links used or withdrawn in the source"
	RemovedIdentities = "identities unlinked in the source"
)

func removedReason(kind string) string {
	switch kind {
	case models.LedgerUser:
		return RemovedUsers
	case models.LedgerToken:
		return RemovedTokens
	case models.LedgerLink:
		return RemovedLinks
	}
	return RemovedIdentities
}

func (p *Plan) progress(phase string, done, total int64) {
	if p.opts.Progress != nil && (done%1000 == 0 || done == total) {
		p.opts.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// convertUser turns a user record into an import row and, when it has a
// verificationToken, a pending verification link. It notes in the report
// a hash that needs a reset and extra fields past the profile cap.
func (p *Plan) convertUser(model string, rec models.Fields) (models.ImportUser, *models.ImportVerification, error) {
	var u models.ImportUser
	raw, _ := rec.Get("id")
	id, err := integer(raw)
	if err != nil || id <= 0 {
		return u, nil, &RecordError{Model: model, ID: string(raw), Err: errors.New("no whole-number id above 0 (string and ObjectId ids are not supported yet)")}
	}
	u.ID = id
	fail := func(format string, args ...any) error {
		return &RecordError{Model: model, ID: strconv.FormatInt(id, 10), Err: fmt.Errorf(format, args...)}
	}
	email, ok := str(rec, "email")
	if !ok || strings.TrimSpace(email) == "" {
		return u, nil, fail("no email")
	}
	u.Email = email
	// Passport's invented address (§5): marked, never mailed, never
	// matched for linking, and never counted as verified.
	u.EmailPlaceholder = IsPlaceholderEmail(email)
	hash, ok := str(rec, "password")
	if !ok || hash == "" {
		return u, nil, fail("no password")
	}
	if len(hash) == 60 && (strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
		u.PasswordHash = hash // bcrypt verifies all three as they are (§3)
	} else {
		p.report.NeedsReset = append(p.report.NeedsReset, id)
	}
	if s, ok := str(rec, "username"); ok {
		u.Username = s
	}
	if s, ok := str(rec, "realm"); ok {
		u.Realm = &s
	}
	if raw, ok := rec.Get("emailVerified"); ok && string(raw) != "null" {
		switch string(raw) {
		case "true", "1":
			v := true
			u.EmailVerified = &v
		case "false", "0":
			v := false
			u.EmailVerified = &v
		default:
			return u, nil, fail("emailVerified is %s, not true or false", raw)
		}
	}
	if u.EmailPlaceholder && u.EmailVerified != nil && *u.EmailVerified {
		v := false
		u.EmailVerified = &v
	}
	var extra models.Fields
	for _, f := range rec {
		if !models.ReservedField(f.Name) && string(f.Value) != "null" {
			extra = append(extra, f)
		}
	}
	u.Profile = p.fitProfile(id, extra)
	if alias, ok := str(rec, lb3IDField); ok {
		u.Alias = alias // a MongoDB user's ObjectId: /api/users/<ObjectId> keeps resolving
	}
	var link *models.ImportVerification
	if tok, ok := str(rec, "verificationToken"); ok && tok != "" {
		link = &models.ImportVerification{Token: tok, UserID: id, Email: email, Created: p.opts.Now,
			Expires: p.opts.Now.Add(p.opts.VerifyTTL)}
	}
	return u, link, nil
}

// fitProfile keeps the extra fields, in order, while they fit in
// models.MaxProfileBytes, and reports those left out.
func (p *Plan) fitProfile(id int64, extra models.Fields) models.Fields {
	all, _ := extra.MarshalJSON()
	if len(all) <= models.MaxProfileBytes {
		return extra
	}
	var kept models.Fields
	tr := Trimmed{UserID: id, Bytes: len(all)}
	for _, f := range extra {
		b, _ := append(kept, f).MarshalJSON()
		if len(b) <= models.MaxProfileBytes {
			kept = append(kept, f)
		} else {
			tr.Dropped = append(tr.Dropped, f.Name)
		}
	}
	p.report.Trimmed = append(p.report.Trimmed, tr)
	return kept
}

// convertToken applies LoopBack's AccessToken.prototype.validate (§3):
// a token it would refuse, or one Latchkey cannot carry, comes back with
// the reason it is skipped. An error is a record that makes no sense.
func (p *Plan) convertToken(rec models.Fields) (models.ImportToken, string, error) {
	var tok models.ImportToken
	id, ok := str(rec, "id")
	if !ok || id == "" {
		return tok, "", &RecordError{Model: p.report.TokenModel, ID: "(no id)", Err: errors.New("a token without an id")}
	}
	tok.ID = id
	fail := func(format string, args ...any) error {
		return &RecordError{Model: p.report.TokenModel, ID: tokenName(id), Err: fmt.Errorf(format, args...)}
	}
	rawTTL, _ := rec.Get("ttl")
	created, hasCreated := str(rec, "created")
	ttl, err := integer(rawTTL)
	if err != nil || ttl == 0 || ttl < -1 || !hasCreated {
		return tok, SkipInvalidTTL, nil
	}
	at, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return tok, "", fail("created %q is not an ISO-8601 date", created)
	}
	tok.TTL, tok.Created = ttl, at
	if pt, ok := str(rec, "principalType"); ok && pt != "" && pt != p.report.UserModel {
		return tok, SkipOtherModel, nil
	}
	switch {
	case ttl == -1 && !p.opts.AllowEternalTokens:
		return tok, SkipEternal, nil
	case ttl > 0 && at.UnixMilli()+ttl*1000 <= p.opts.Now.UnixMilli():
		return tok, SkipExpired, nil
	}
	rawUser, _ := rec.Get("userId")
	if tok.UserID, err = integer(rawUser); err != nil || tok.UserID <= 0 {
		return tok, "", fail("userId %s is not a user id", rawUser)
	}
	if !models.ValidTokenShape(id) {
		return tok, SkipTokenShape, nil
	}
	scope, ok, err := scopeOf(rec)
	if err != nil {
		return tok, "", fail("%v", err)
	}
	if !ok {
		return tok, SkipScopes, nil
	}
	tok.Scopes = scope
	return tok, "", nil
}

// scopeOf maps LoopBack's scopes to Latchkey's: none or DEFAULT is a
// session, exactly reset-password a reset token; anything else has no
// equivalent (ok false). SQL stores keep the array as JSON text.
func scopeOf(rec models.Fields) (string, bool, error) {
	raw, ok := rec.Get("scopes")
	if !ok || string(raw) == "null" {
		return models.ScopeSession, true, nil
	}
	var scopes []string
	if err := json.Unmarshal(raw, &scopes); err != nil {
		var text string
		if json.Unmarshal(raw, &text) != nil || json.Unmarshal([]byte(text), &scopes) != nil {
			return "", false, fmt.Errorf("scopes %s is not an array of strings", raw)
		}
	}
	switch {
	case len(scopes) == 0 || len(scopes) == 1 && scopes[0] == "DEFAULT":
		return models.ScopeSession, true, nil
	case len(scopes) == 1 && scopes[0] == models.ScopeReset:
		return models.ScopeReset, true, nil
	}
	return "", false, nil
}

// tokenName names a token in messages by its first characters only: the
// whole id is a live credential.
func tokenName(id string) string {
	if len(id) > 6 {
		return strconv.Quote(id[:6] + "…")
	}
	return strconv.Quote(id)
}

// str is a string property; ok is false when it is absent, null or not a
// string.
func str(rec models.Fields, name string) (string, bool) {
	raw, ok := rec.Get(name)
	if !ok {
		return "", false
	}
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && plainString(raw[1:n-1]) {
		return string(raw[1 : n-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// integer is a whole JSON number, or a string of digits (a MongoDB or SQL
// userId stored as text).
func integer(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return int64(f), nil
}

// plainString: b is a JSON string's body that decodes to itself (no
// escape, no control character, valid UTF-8).
func plainString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}
