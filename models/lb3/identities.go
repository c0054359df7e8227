package lb3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
)

// Passport identities (§5). loopback-component-passport keeps two models
// with the same properties: UserIdentity, an account at a provider that
// signed in (and usually created the user), and UserCredential, a
// provider account linked to a user who was already signed in
// (UserCredential.link). Both become identities (provider, externalId) of
// the same user: the import issue asks for both, and a linked account was
// proved by its owner while signed in to the local one, so it is as much
// theirs as a login identity. (LoopBack's own login looked only at
// UserIdentity; third-party sign-in in Latchkey treats a linked provider
// as a way to sign in, which is what "link" means there.)
//
// credentials (the provider's access and refresh tokens, in plaintext) are
// never read into a row: nothing needs them, and they are secrets. Of the
// profile only the non-secret fields listed in keptProfile are kept
// (_raw and _json, the provider's full answer, are dropped).

// keptProfile are the passport profile fields kept as the identity's
// profile, in this order.
var keptProfile = []string{"provider", "id", "displayName", "name", "emails"}

// placeholderEmail is the address Passport invents for a user it creates
// (profileToUser: <username or id>@loopback.<provider>.com, §5).
var placeholderEmail = regexp.MustCompile(`(?i)@loopback\.[^.@]+\.com$`)

// IsPlaceholderEmail tells an address Passport invented.
func IsPlaceholderEmail(email string) bool {
	return placeholderEmail.MatchString(strings.TrimSpace(email))
}

// Skip reasons of identities, as the report prints them.
const (
	SkipDuplicateIdentity = "identities of users skipped as duplicates"
	SkipSameIdentity      = "UserCredential rows repeating an identity (provider, externalId) the same user already has"
)

// ParseProviders reads --provider's value: comma-separated key=id pairs,
// LoopBack's provider config key (google-login) to Latchkey's provider id
// (google).
func ParseProviders(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, &UsageError{fmt.Sprintf("lb3: --provider %q: want LOOPBACK_KEY=PROVIDER_ID pairs, e.g. google-login=google,facebook-login=facebook", part)}
		}
		if _, dup := out[k]; dup {
			return nil, &UsageError{fmt.Sprintf("lb3: --provider names %q twice", k)}
		}
		out[k] = v
	}
	return out, nil
}

// providerID maps LoopBack's provider key to Latchkey's provider id: the
// --provider map, else the key lower-cased without a -login or -link
// suffix (google-login and google-link are both google).
func (p *Plan) providerID(key string) string {
	if id, ok := p.opts.Providers[key]; ok {
		return id
	}
	id := strings.ToLower(key)
	for _, suffix := range []string{"-login", "-link"} {
		if len(id) > len(suffix) && strings.HasSuffix(id, suffix) {
			return strings.TrimSuffix(id, suffix)
		}
	}
	return id
}

// identityModels are the identity models the store has, UserIdentity's
// first.
func (p *Plan) identityModels(ctx context.Context) ([]string, error) {
	var out []string
	for _, m := range []string{p.opts.IdentityModel, p.opts.CredentialModel} {
		if _, ok, err := p.store.src.table(ctx, m); err != nil {
			return nil, err
		} else if ok && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// identitySeen finds the same (provider, subject) twice: for the same user
// a repeat is skipped (a login identity also linked), for two users it is
// an error, since Latchkey's identity names one account.
type identitySeen struct {
	users map[models.IdentityKey]int64
	where map[models.IdentityKey]string
}

func newIdentitySeen() *identitySeen {
	return &identitySeen{users: map[models.IdentityKey]int64{}, where: map[models.IdentityKey]string{}}
}

// add says whether id is new; a repeat for another user is an error.
func (s *identitySeen) add(id models.Identity, model, recID string) (bool, error) {
	k := models.IdentityKey{Provider: id.Provider, Subject: id.Subject}
	if uid, ok := s.users[k]; ok {
		if uid != id.UserID {
			return false, &RecordError{Model: model, ID: recID, Err: fmt.Errorf(
				"identity (%s, %s) of user %d is already the identity of user %d (%s): one provider account cannot sign in to two users",
				id.Provider, id.Subject, id.UserID, uid, s.where[k])}
		}
		return false, nil
	}
	s.users[k], s.where[k] = id.UserID, model+" "+recID
	return true, nil
}

// checkIdentities reads every identity: each must convert and belong to a
// user of the chosen model. It counts them per user, for the duplicate
// listing and for the report (after findDuplicates).
func (p *Plan) checkIdentities(ctx context.Context, read *int64) error {
	names, err := p.identityModels(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	seen := newIdentitySeen()
	return p.store.src.scan(ctx, names, func(model string, rec models.Fields) error {
		*read++
		p.progress("check", *read, 0)
		id, recID, err := p.convertIdentity(model, rec)
		if err != nil {
			return err
		}
		u := p.users[id.UserID]
		if u == nil {
			return &RecordError{Model: model, ID: recID,
				Err: fmt.Errorf("an identity (%s, %s) of user %d, who is not in %s", id.Provider, id.Subject, id.UserID, p.report.UserModel)}
		}
		fresh, err := seen.add(id, model, recID)
		if err != nil {
			return err
		}
		if !fresh {
			p.report.Skipped[SkipSameIdentity]++
			return nil
		}
		if model == p.opts.IdentityModel {
			u.identities++
		} else {
			u.linked++
		}
		return nil
	})
}

// countIdentities fills the report's identity counts once duplicates are
// known: identities of skipped users stay behind.
func (p *Plan) countIdentities() {
	for _, u := range p.users {
		switch {
		case u.skip:
			if n := int64(u.identities + u.linked); n > 0 {
				p.report.Skipped[SkipDuplicateIdentity] += n
			}
		default:
			p.report.Identities += int64(u.identities)
			p.report.LinkedIdentities += int64(u.linked)
		}
	}
}

// writeIdentities sends every identity of an imported user that is not
// in the target yet into d's transaction, in batches. Users are in it
// already.
func (p *Plan) writeIdentities(ctx context.Context, d *delta) error {
	names, err := p.identityModels(ctx)
	if err != nil || len(names) == 0 {
		return err
	}
	rep, led := d.rep, d.led
	seen := newIdentitySeen()
	batch := make([]models.Identity, 0, batchRows)
	flush := func() error {
		if !d.dry() {
			if err := d.tx.ImportIdentities(ctx, batch); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return d.flushLedger(ctx)
	}
	err = p.store.src.scan(ctx, names, func(model string, rec models.Fields) error {
		id, recID, err := p.convertIdentity(model, rec)
		if err != nil {
			return err
		}
		u := p.users[id.UserID]
		if u == nil {
			return &RecordError{Model: model, ID: recID,
				Err: fmt.Errorf("an identity of user %d, who is not in %s (the source changed during the import?)", id.UserID, p.report.UserModel)}
		}
		fresh, err := seen.add(id, model, recID)
		if err != nil {
			return err
		}
		if !fresh {
			rep.Skipped[SkipSameIdentity]++
			return nil
		}
		d.step()
		k := models.IdentityKey{Provider: id.Provider, Subject: id.Subject}
		if _, ok := led.Identities[k]; ok {
			led.Identities[k] = true
			rep.Unchanged++
			return nil
		}
		switch {
		case u.skip:
			rep.Skipped[SkipDuplicateIdentity]++
			return nil
		case led.Imported(id.UserID) && !led.Exists(id.UserID):
			rep.Skipped[SkipDeletedHere]++
			return nil
		case model == p.opts.IdentityModel:
			rep.Identities++
		default:
			rep.LinkedIdentities++
		}
		batch = append(batch, id)
		d.note(models.LedgerEntry{Kind: models.LedgerIdentity, ID: k})
		if len(batch) == batchRows {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// convertIdentity turns a UserIdentity or UserCredential record into an
// identity row, credentials left behind. recID names the record in
// messages.
func (p *Plan) convertIdentity(model string, rec models.Fields) (models.Identity, string, error) {
	var id models.Identity
	raw, _ := rec.Get("id")
	recID := strings.Trim(string(raw), `"`)
	if recID == "" {
		recID = "(no id)"
	}
	fail := func(format string, args ...any) error {
		return &RecordError{Model: model, ID: recID, Err: fmt.Errorf(format, args...)}
	}
	key, ok := str(rec, "provider")
	if !ok || strings.TrimSpace(key) == "" {
		return id, recID, fail("no provider")
	}
	id.Provider = p.providerID(key)
	rawExt, _ := rec.Get("externalId")
	if s, ok := str(rec, "externalId"); ok {
		id.Subject = s
	} else if n, err := integer(rawExt); err == nil {
		id.Subject = fmt.Sprint(n) // a numeric id stored as a number
	}
	if id.Subject == "" {
		return id, recID, fail("no externalId")
	}
	rawUser, _ := rec.Get("userId")
	uid, err := integer(rawUser)
	if err != nil || uid <= 0 {
		return id, recID, fail("userId %s is not a user id", rawUser)
	}
	id.UserID = uid
	if prof, ok := rec.Get("profile"); ok && string(prof) != "null" {
		obj, err := profileObject(prof)
		if err != nil {
			return id, recID, fail("profile: %v", err)
		}
		for _, name := range keptProfile {
			if v, ok := obj.Get(name); ok && string(v) != "null" {
				id.Profile = append(id.Profile, models.Field{Name: name, Value: v})
			}
		}
		if b, _ := id.Profile.MarshalJSON(); len(b) > models.MaxProfileBytes {
			id.Profile = id.Profile[:min(2, len(id.Profile))] // provider and id: the rest is cosmetic
		}
	}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"created", &id.Created}, {"modified", &id.Updated}} {
		if s, ok := str(rec, f.name); ok && s != "" {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return id, recID, fail("%s %q is not an ISO-8601 date", f.name, s)
			}
			*f.to = at
		}
	}
	return id, recID, nil
}

// profileObject is the profile as an object: the memory connector keeps
// it as one, SQL stores as JSON text (a string when the column reader did
// not recognise it).
func profileObject(raw json.RawMessage) (models.Fields, error) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(text)
	}
	obj, err := models.ParseObject(raw)
	if err != nil {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}
