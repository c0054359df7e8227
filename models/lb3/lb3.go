// Package lb3 reads a LoopBack 3 store (a memory-connector file, or a
// MySQL/MariaDB or PostgreSQL database laid out by LoopBack's connectors)
// and writes its users, live tokens, pending verification links and
// Passport identities through the models import API, so people keep their passwords and clients their
// tokens. latchkey import lb3 is this package with flags and a progress bar.
//
// An import is two passes over the source. Check reads everything, picks
// the user model, validates every record and finds case-duplicate emails,
// holding a few numbers per user and no record. Write reads it again and
// sends the rows in batches into the caller's transaction. Nothing is
// written when Check finds a problem. The facts it relies on are in
// ../shared/lb3-stores.md; the sections are cited as §N.
package lb3

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// source is one kind of LoopBack store.
type source interface {
	// table says under which name model's rows are stored, and whether
	// the store has it at all. Two model names may share one table: on
	// PostgreSQL "User" and "user" are both "user" (§2).
	table(ctx context.Context, model string) (string, bool, error)
	// scan calls fn with each record of the models in names, as a JSON
	// object with LoopBack's property names.
	scan(ctx context.Context, names []string, fn func(model string, rec models.Fields) error) error
	describe() string
	close() error
}

// Store is an opened LoopBack 3 store.
type Store struct {
	src  source
	kind string
}

// Open opens source: a mysql:// or postgres:// URL, or the path of a
// memory-connector file. Any other URL scheme is an error.
func Open(ctx context.Context, src string) (*Store, error) {
	scheme, _, hasScheme := strings.Cut(src, "://")
	switch {
	case !hasScheme:
		if s, ok, err := openMongoDir(src); ok { // a folder of mongoexport files
			return s, err
		}
		if _, err := openFileCheck(src); err != nil {
			return nil, err
		}
		return &Store{src: &memoryFile{path: src}, kind: "memory"}, nil
	case scheme == "mysql":
		s, err := openMySQL(ctx, src)
		if err != nil {
			return nil, err
		}
		return &Store{src: s, kind: "mysql"}, nil
	case scheme == "postgres" || scheme == "postgresql":
		s, err := openPostgres(ctx, src)
		if err != nil {
			return nil, err
		}
		return &Store{src: s, kind: "postgres"}, nil
	}
	return nil, &UsageError{fmt.Sprintf("lb3: unknown source scheme %q: want a memory-connector file path, a folder of mongoexport files (there is no live MongoDB reader), mysql://… or postgres://…", scheme+"://")}
}

// Kind is "memory", "mongo", "mysql" or "postgres".
func (s *Store) Kind() string { return s.kind }

// Close releases the store's connections.
func (s *Store) Close() error { return s.src.close() }

// UsageError is a source or an option the operator has to change: a
// command reports it as a usage error.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Options tune an import.
type Options struct {
	// UserModel and TokenModel name the models to read; "" detects the
	// user model (the custom "user" most apps define, or the built-in
	// "User") and takes "AccessToken".
	UserModel, TokenModel string
	// IdentityModel and CredentialModel name Passport's models (§5);
	// "": "UserIdentity" and "UserCredential". Both become identities.
	IdentityModel, CredentialModel string
	// Providers maps LoopBack's provider config keys (google-login) to
	// Latchkey's provider ids (google). A key not in it loses a -login or
	// -link suffix and is lower-cased.
	Providers map[string]string
	// AllowEternalTokens imports tokens with ttl -1, which LoopBack
	// accepts only under the user model's allowEternalTokens (§3).
	// Without it they are skipped and counted.
	AllowEternalTokens bool
	// SkipDuplicates imports everyone but the users whose emails differ
	// only in case, instead of refusing the import.
	SkipDuplicates bool
	// App is the LoopBack app's model JSON (ReadApp), or nil. The model
	// names above default from it (a name given wins); the store is read
	// under the table, collection and column names it gives, PostgreSQL's
	// lower-cased columns under the property names it declares; its
	// allowEternalTokens turns AllowEternalTokens on; its realmDelimiter
	// refuses the import unless IgnoreRealms. The report's Settings say
	// what else of it matters after the switch.
	App *App
	// IgnoreRealms imports an app whose user model has a realmDelimiter,
	// whose clients may log in as realm:name: Latchkey logs in by email or
	// username alone, so those clients must change first.
	IgnoreRealms bool
	// Now is the time LoopBack's validity rule is applied at; zero: now.
	Now time.Time
	// VerifyTTL is how long imported verification links stay valid from
	// Now: LoopBack's never expired, Latchkey's do. Zero: 24 hours.
	VerifyTTL time.Duration
	// Ledger is the target's import ledger (models.DB.ReadImportLedger):
	// against a target that earlier imports filled, Write is a delta. A
	// MongoDB user keeps the integer id its ObjectId got the first time.
	// nil: a new, empty target.
	Ledger *models.ImportLedger
	// Progress, when set, is told how far a pass is.
	Progress func(Progress)
}

// Progress is where a pass stands. Total is 0 while Check counts.
type Progress struct {
	Phase       string // "check" or "write"
	Done, Total int64  // records read (Check) or rows written (Write)
}

// Skip reasons, as the report prints them.
const (
	SkipExpired        = "tokens expired (created + ttl is past)"
	SkipInvalidTTL     = "tokens LoopBack itself refuses (ttl 0, missing or below -1, or no created date)"
	SkipEternal        = "eternal tokens (ttl -1) without --allow-eternal-tokens"
	SkipTokenShape     = "tokens not 64 letters and digits (a custom createAccessTokenId; Latchkey cannot check them)"
	SkipScopes         = "tokens with scopes Latchkey has no equivalent of"
	SkipOtherModel     = "tokens of another user model (principalType)"
	SkipDuplicateUser  = "users in case-duplicate email groups (--skip-duplicates)"
	SkipDuplicateToken = "live tokens of users skipped as duplicates"
	SkipDuplicateLink  = "verification links of users skipped as duplicates"
	SkipDeletedHere    = "records of users imported before and deleted here since (they stay deleted)"
)

// Report is what an import found and did.
type Report struct {
	Source                string
	UserModel, TokenModel string

	// Users, Sessions, ResetTokens and Verifications are those added:
	// all of them on a first import, the new ones on a re-run.
	Users, Sessions, ResetTokens, Verifications int64
	// Updated are users a re-run found changed in the source since the
	// last run, and updated here; Unchanged the users, tokens, links and
	// identities it found as the last run left them.
	Updated, Unchanged int64
	// Eternal are the imported tokens with ttl -1 (AllowEternalTokens).
	Eternal int64
	// Removed counts, by reason (the Removed… constants), what earlier
	// runs imported that the source no longer has, removed here.
	Removed map[string]int64
	// Identities are Passport login identities (UserIdentity) imported,
	// LinkedIdentities linked accounts (UserCredential) imported as
	// identities too. Their provider tokens were dropped.
	Identities, LinkedIdentities int64
	// Placeholders are users whose address Passport invented
	// (…@loopback.<provider>.com): imported marked, so they get no mail
	// and never match for account linking.
	Placeholders int64
	// Skipped counts records left out, by reason (the Skip… constants).
	Skipped map[string]int64
	// NeedsReset are users whose stored password is not a bcrypt hash
	// LoopBack made ($2a$/$2b$/$2y$, 60 characters): imported without a
	// password, they log in after a password reset.
	NeedsReset []int64
	// Trimmed are users whose extra fields exceeded models.MaxProfileBytes:
	// the fields that did not fit were left out, and are named here.
	Trimmed []Trimmed
	// Duplicates are the groups of users whose emails differ only in case.
	Duplicates []DuplicateGroup
	// NotImported counts rows of models this import does not carry
	// (roles and role mappings: Latchkey has no roles), by model.
	NotImported map[string]int64
	// Settings are notes on the LoopBack app's settings (Options.App):
	// what the import read differently, and which Latchkey setting matches
	// one of LoopBack's, or where Latchkey behaves otherwise.
	Settings []string
	Elapsed  time.Duration
}

// Trimmed is one user whose profile lost fields.
type Trimmed struct {
	UserID  int64
	Dropped []string
	Bytes   int // the size of all the extra fields, as JSON
}

// DuplicateGroup is users LoopBack accepted as distinct whose emails
// Latchkey treats as one (models.EmailKey), with what helps choose.
type DuplicateGroup struct {
	Key     string
	Members []DuplicateMember
}

// DuplicateMember is one user of a DuplicateGroup.
type DuplicateMember struct {
	ID         int64
	Email      string
	Verified   bool
	LiveTokens int
	Identities int       // Passport identities and linked accounts
	LastToken  time.Time // the newest live token's created; zero: none
}

// WriteDuplicates writes the groups as CSV, a row per member: the group's
// email key, then what helps decide whom to keep.
func WriteDuplicates(w io.Writer, groups []DuplicateGroup) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"group", "id", "email", "verified", "live_tokens", "identities", "last_token"})
	for _, g := range groups {
		for _, m := range g.Members {
			last := ""
			if !m.LastToken.IsZero() {
				last = m.LastToken.UTC().Format(time.RFC3339)
			}
			cw.Write([]string{safeCell(g.Key), strconv.FormatInt(m.ID, 10), safeCell(m.Email), strconv.FormatBool(m.Verified),
				strconv.Itoa(m.LiveTokens), strconv.Itoa(m.Identities), last})
		}
	}
	cw.Flush()
	return cw.Error()
}

// safeCell keeps a spreadsheet from reading an address someone typed as a
// formula: a cell that starts with = + - @ or a control character gets a
// leading apostrophe.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// DuplicatesError stops an import without SkipDuplicates.
type DuplicatesError struct{ Groups []DuplicateGroup }

func (e *DuplicatesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lb3: %d groups of users whose emails differ only in case (LoopBack kept them apart; Latchkey cannot); "+
		"nothing was written. Merge or delete them in LoopBack, or pass --skip-duplicates to import everyone else:", len(e.Groups))
	for _, g := range e.Groups {
		fmt.Fprintf(&b, "\n  %s:", g.Key)
		for _, m := range g.Members {
			last := "no live token"
			if !m.LastToken.IsZero() {
				last = "last token " + m.LastToken.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "\n    id %d  %s  verified %t  %d live tokens  %d identities  %s", m.ID, m.Email, m.Verified, m.LiveTokens, m.Identities, last)
		}
	}
	return b.String()
}

// RecordError is a record the import cannot take, named by model and id.
type RecordError struct {
	Model, ID string
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("lb3: %s %s: %v", e.Model, e.ID, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
