package models

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Passkeys (WebAuthn Level 3 through go-webauthn, SECURITY M5). A passkey
// is registered by a signed-in user who proved who they are again (the
// handlers call Confirm first, as for every factor: M6); it signs in with
// no password (a discoverable credential, the user verified by the
// authenticator) and counts as the second factor of a password login.
//
// Every ceremony is a begin, which stores the library's SessionData
// server-side (webauthn_ceremonies, so the finish may reach any replica),
// bound to the browser that began it, and a finish, which deletes it
// whatever the outcome: a challenge is answered once, and a replayed
// assertion finds nothing to answer. The RP ID is the base URL's host and
// the origin its origin, so an assertion made for another site, or
// collected on another origin, is refused. The sign counter and the backup
// flags are stored; a counter that goes back (a cloned authenticator) is
// refused.

const (
	// PasskeyCeremonyTTL is how long a ceremony may take, from the options
	// to the answer.
	PasskeyCeremonyTTL = 5 * time.Minute
	// MaxPasskeys is how many passkeys an account may have.
	MaxPasskeys = 20
	// PasskeyNameMax is the longest name a passkey may have, in characters.
	PasskeyNameMax = 64

	ceremonyRegister = "register"
	ceremonyLogin    = "login"
	ceremonyMFA      = "mfa"

	// rpName is what the browser shows as the site a passkey is for.
	rpName = "Latchkey"
	// userHandleLen is the user handle's length in bytes (at most 64).
	userHandleLen = 32
)

var (
	// ErrPasskeysOff: the server has no usable base URL for passkeys.
	ErrPasskeysOff = &Error{Kind: KindNotFound, Code: "PASSKEYS_OFF", Message: "Passkeys are not available on this server"}
	// ErrPasskeyName: the name is empty or too long.
	ErrPasskeyName = &Error{Kind: KindUnprocessable, Code: "INVALID_PASSKEY_NAME",
		Message: fmt.Sprintf("Give the passkey a name of at most %d characters", PasskeyNameMax)}
	// ErrTooManyPasskeys: the account has MaxPasskeys already.
	ErrTooManyPasskeys = &Error{Kind: KindUnprocessable, Code: "TOO_MANY_PASSKEYS",
		Message: fmt.Sprintf("An account can have at most %d passkeys: remove one first", MaxPasskeys)}
	// ErrPasskeyCeremony: no ceremony in this browser has this challenge
	// (never begun, answered already, begun elsewhere) or it took too long.
	ErrPasskeyCeremony = &Error{Kind: KindUnauthorized, Code: "PASSKEY_EXPIRED",
		Message: "That took too long or was sent already: try again"}
	// ErrPasskeyRefused: the assertion did not verify (wrong site or
	// origin, bad signature, user not verified, a counter gone back, an
	// unknown or removed passkey).
	ErrPasskeyRefused = &Error{Kind: KindUnauthorized, Code: "PASSKEY_REFUSED", Message: "That passkey was not accepted"}
	// ErrPasskeyNotRegistered: the new credential did not verify, or it is
	// registered already.
	ErrPasskeyNotRegistered = &Error{Kind: KindUnprocessable, Code: "PASSKEY_NOT_REGISTERED",
		Message: "The passkey could not be added: try again"}
	// ErrNoPasskeys: the account has no passkey to use as its second step.
	ErrNoPasskeys = &Error{Kind: KindUnprocessable, Code: "NO_PASSKEYS", Message: "This account has no passkey"}
)

// Passkey is a registered passkey as its owner sees it.
type Passkey struct {
	ID       []byte // the credential id
	Name     string
	Created  time.Time
	LastUsed time.Time // zero: never used to sign in
	// BackupEligible and BackupState: the passkey can be, and is, synced
	// to the owner's other devices (a password manager, a cloud keychain).
	BackupEligible bool
	BackupState    bool
}

// Handle is the passkey's id as it travels in a form (base64url).
func (p Passkey) Handle() string { return base64URL(p.ID) }

// ParsePasskeyHandle is Handle's inverse; nil when s is not one.
func ParsePasskeyHandle(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 1023 {
		return nil
	}
	return b
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newRelyingParty is the WebAuthn relying party of a base URL: its host is
// the RP ID, its origin the one origin accepted. "" turns passkeys off.
func newRelyingParty(baseURL string) (*webauthn.WebAuthn, error) {
	if baseURL == "" {
		return nil, ErrPasskeysOff
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("models: passkeys: base URL %q has no host", baseURL)
	}
	timeouts := webauthn.TimeoutConfig{Timeout: PasskeyCeremonyTTL, TimeoutUVD: PasskeyCeremonyTTL}
	return webauthn.New(&webauthn.Config{
		RPID:                  u.Hostname(),
		RPDisplayName:         rpName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		// Passkeys: discoverable, so they sign in without a name typed, and
		// verified (PIN, biometrics), so they sign in without a password.
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeouts, Registration: timeouts},
	})
}

// relyingParty is the relying party, or why passkeys are off.
func (s *Users) relyingParty() (*webauthn.WebAuthn, error) {
	if s.rp == nil {
		if errors.Is(s.rpErr, ErrPasskeysOff) || s.rpErr == nil {
			return nil, ErrPasskeysOff
		}
		return nil, fmt.Errorf("%w: %v", ErrPasskeysOff, s.rpErr)
	}
	return s.rp, nil
}

// PasskeysEnabled says whether the pages should offer passkeys.
func (s *Users) PasskeysEnabled() bool { return s.rp != nil }

// passkeyUser is an account as the WebAuthn library sees it.
type passkeyUser struct {
	handle []byte
	user   *User
	creds  []webauthn.Credential
}

func (p *passkeyUser) WebAuthnID() []byte { return p.handle }

// WebAuthnName is what the browser's passkey list shows for the account.
func (p *passkeyUser) WebAuthnName() string {
	if p.user.EmailPlaceholder && p.user.Username != "" {
		return p.user.Username
	}
	return p.user.Email
}

func (p *passkeyUser) WebAuthnDisplayName() string {
	if p.user.Username != "" {
		return p.user.Username
	}
	return p.WebAuthnName()
}

func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// credential finds one of the user's credentials by id.
func (p *passkeyUser) credential(id []byte) *webauthn.Credential {
	for i := range p.creds {
		if bytes.Equal(p.creds[i].ID, id) {
			return &p.creds[i]
		}
	}
	return nil
}

// querier is what reads rows: the DB, or a Tx.
type querier interface {
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// loadPasskeyUser reads the user's handle ("" when none yet) and passkeys.
func loadPasskeyUser(ctx context.Context, q querier, u *User) (*passkeyUser, error) {
	p := &passkeyUser{user: u}
	rows, err := q.Query(ctx, `SELECT handle FROM webauthn_handles WHERE user_id = ?`, u.ID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		if err := rows.Scan(&p.handle); err != nil {
			rows.Close()
			return nil, err
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT id, public_key, attestation_type, aaguid, sign_count, backup_eligible, backup_state, transports
		FROM webauthn_credentials WHERE user_id = ? ORDER BY created, id`, u.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			c          webauthn.Credential
			count      int64
			be, bs     int
			transports string
		)
		if err := rows.Scan(&c.ID, &c.PublicKey, &c.AttestationType, &c.Authenticator.AAGUID, &count, &be, &bs, &transports); err != nil {
			return nil, err
		}
		c.Authenticator.SignCount = uint32(count)
		flags := protocol.FlagUserPresent | protocol.FlagUserVerified
		if be == 1 {
			flags |= protocol.FlagBackupEligible
		}
		if bs == 1 {
			flags |= protocol.FlagBackupState
		}
		c.Flags = webauthn.NewCredentialFlags(flags)
		for _, t := range strings.Split(transports, ",") {
			if t != "" {
				c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
			}
		}
		p.creds = append(p.creds, c)
	}
	return p, rows.Err()
}

// ListPasskeys is the user's passkeys, oldest first.
func (s *Users) ListPasskeys(ctx context.Context, userID int64) ([]Passkey, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, created, last_used, backup_eligible, backup_state
		FROM webauthn_credentials WHERE user_id = ? ORDER BY created, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		var (
			p       Passkey
			created int64
			used    sql.NullInt64
			be, bs  int
		)
		if err := rows.Scan(&p.ID, &p.Name, &created, &used, &be, &bs); err != nil {
			return nil, err
		}
		p.Created, p.BackupEligible, p.BackupState = fromMS(created), be == 1, bs == 1
		if used.Valid {
			p.LastUsed = fromMS(used.Int64)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// ceremony is a WebAuthn ceremony in progress.
type ceremony struct {
	purpose string
	userID  int64
	bound   []byte // register: the session's digest; mfa: the mfaToken's
	name    string // register: the new passkey's name
	data    webauthn.SessionData
	expires time.Time
}

func challengeKey(challenge string) []byte {
	h := sha256.Sum256([]byte(challenge))
	return h[:]
}

// saveCeremony stores a begun ceremony for the browser whose binding
// cookie holds browser (only its digest is kept).
func (s *Users) saveCeremony(ctx context.Context, browser string, c ceremony) error {
	if browser == "" {
		return errors.New("models: a passkey ceremony without a browser binding")
	}
	data, err := json.Marshal(c.data)
	if err != nil {
		return err
	}
	var uid any
	if c.userID != 0 {
		uid = c.userID
	}
	now := s.now()
	return s.db.Write(ctx, now, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO webauthn_ceremonies(challenge, browser, purpose, user_id, bound, name, data, created, expires)
			VALUES (?,?,?,?,?,?,?,?,?)`, challengeKey(c.data.Challenge), flowKey(browser), c.purpose, uid, c.bound, c.name,
			string(data), ms(now), ms(now.Add(PasskeyCeremonyTTL)))
		return err
	})
}

// takeCeremony removes and returns the ceremony of this challenge begun in
// this browser for purpose: a ceremony is finished once, whatever happens
// next (M5). Unknown in this browser, past its time or of another purpose,
// it is ErrPasskeyCeremony.
func (s *Users) takeCeremony(ctx context.Context, challenge, browser, purpose string) (*ceremony, error) {
	if challenge == "" || browser == "" {
		return nil, ErrPasskeyCeremony
	}
	var (
		c       ceremony
		uid     sql.NullInt64
		data    string
		expires int64
	)
	now := s.now()
	err := s.db.Write(ctx, now, func(tx *Tx) error {
		return tx.QueryRow(ctx, `DELETE FROM webauthn_ceremonies WHERE challenge = ? AND browser = ?
			RETURNING purpose, user_id, bound, name, data, expires`, challengeKey(challenge), flowKey(browser)).
			Scan(&c.purpose, &uid, &c.bound, &c.name, &data, &expires)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrPasskeyCeremony
	}
	if err != nil {
		return nil, err
	}
	c.userID, c.expires = uid.Int64, fromMS(expires)
	if err := json.Unmarshal([]byte(data), &c.data); err != nil {
		return nil, fmt.Errorf("models: passkey ceremony: %w", err)
	}
	if c.purpose != purpose || !now.Before(c.expires) || c.data.Challenge != challenge {
		return nil, ErrPasskeyCeremony
	}
	return &c, nil
}

// PrunePasskeyCeremonies deletes ceremonies past their time.
func (s *Users) PrunePasskeyCeremonies(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM webauthn_ceremonies WHERE expires <= ?`, ms(tx.now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// cleanPasskeyName trims a name and checks its length.
func cleanPasskeyName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || utf8.RuneCountInString(name) > PasskeyNameMax {
		return "", ErrPasskeyName
	}
	return name, nil
}

// BeginPasskeyRegistration starts adding a passkey named name to the
// session's user (the caller has asked for a recent authentication). It
// returns the options for navigator.credentials.create() as JSON. The
// ceremony is bound to this session and to the browser (browser is the
// secret of its binding cookie).
func (s *Users) BeginPasskeyRegistration(ctx context.Context, sess *Session, name, browser string) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	if name, err = cleanPasskeyName(name); err != nil {
		return nil, err
	}
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return nil, err
	}
	pu, err := loadPasskeyUser(ctx, s.db, u)
	if err != nil {
		return nil, err
	}
	if len(pu.creds) >= MaxPasskeys {
		return nil, ErrTooManyPasskeys
	}
	if pu.handle == nil {
		if pu.handle, err = s.newUserHandle(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	creation, data, err := rp.BeginRegistration(pu,
		// The authenticator refuses to make a second passkey for this
		// account when it holds one already.
		webauthn.WithExclusions(webauthn.Credentials(pu.creds).CredentialDescriptors()),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return nil, fmt.Errorf("models: begin passkey registration: %w", err)
	}
	if err := s.saveCeremony(ctx, browser, ceremony{purpose: ceremonyRegister, userID: u.ID, bound: sess.Token.Digest[:],
		name: name, data: *data}); err != nil {
		return nil, err
	}
	return json.Marshal(creation)
}

// newUserHandle gives the user their random user handle, or reads the one
// a concurrent registration gave them first.
func (s *Users) newUserHandle(ctx context.Context, userID int64) ([]byte, error) {
	h := make([]byte, userHandleLen)
	if _, err := rand.Read(h); err != nil {
		return nil, err
	}
	err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
		err := tx.QueryRow(ctx, `SELECT handle FROM webauthn_handles WHERE user_id = ?`, userID).Scan(&h)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO webauthn_handles(user_id, handle) VALUES (?,?)`, userID, h)
		}
		return err
	})
	return h, err
}

// FinishPasskeyRegistration verifies the browser's answer (the JSON of
// the PublicKeyCredential) to the ceremony begun in this browser by this
// session, stores the passkey, and mails the notice (M6).
func (s *Users) FinishPasskeyRegistration(ctx context.Context, sess *Session, browser string, response []byte, meta ClientMeta) (*Passkey, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrPasskeyNotRegistered, err)
	}
	c, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, browser, ceremonyRegister)
	if err != nil {
		return nil, err
	}
	if c.userID != sess.User.ID || !bytes.Equal(c.bound, sess.Token.Digest[:]) {
		return nil, ErrPasskeyCeremony
	}
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return nil, err
	}
	pu, err := loadPasskeyUser(ctx, s.db, u)
	if err != nil {
		return nil, err
	}
	cred, err := rp.CreateCredential(pu, c.data, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrPasskeyNotRegistered, err)
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	p := &Passkey{ID: cred.ID, Name: c.name, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState}
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webauthn_credentials WHERE user_id = ?`, u.ID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPasskeys {
			return ErrTooManyPasskeys
		}
		p.Created = tx.now
		_, err := tx.Exec(ctx, `INSERT INTO webauthn_credentials(id, user_id, name, public_key, attestation_type, aaguid, sign_count,
			backup_eligible, backup_state, transports, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			cred.ID, u.ID, c.name, cred.PublicKey, cred.AttestationType, cred.Authenticator.AAGUID, int64(cred.Authenticator.SignCount),
			boolInt(cred.Flags.BackupEligible), boolInt(cred.Flags.BackupState), strings.Join(transports, ","), ms(tx.now))
		if isUnique(err) {
			return ErrPasskeyNotRegistered
		}
		if err != nil {
			return err
		}
		if err := tx.Audit(ctx, "passkey.added", u.ID, meta, c.name); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, u, "passkey", true, meta)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeletePasskey removes one of the user's passkeys (the caller has asked
// for a recent authentication) and mails the notice (M6). A passkey that
// is not theirs is ErrNotFound. An account without a password keeps at
// least one way to sign in: its last passkey is ErrLastSignInMethod when
// it has no provider either.
func (s *Users) DeletePasskey(ctx context.Context, sess *Session, id []byte, meta ClientMeta) error {
	u, err := s.FindUserByID(ctx, sess.User.ID)
	if err != nil {
		return err
	}
	return s.db.Write(ctx, s.now(), func(tx *Tx) error {
		var name string
		err := tx.QueryRow(ctx, `SELECT name FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, u.ID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !u.HasPassword() {
			var others int
			if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM identities WHERE user_id = ?) +
				(SELECT count(*) FROM webauthn_credentials WHERE user_id = ? AND id != ?)`, u.ID, u.ID, id).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return ErrLastSignInMethod
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, u.ID); err != nil {
			return err
		}
		if err := tx.Audit(ctx, "passkey.removed", u.ID, meta, name); err != nil {
			return err
		}
		return s.factorChanged(ctx, tx, u, "passkey", false, meta)
	})
}

// BeginPasskeyLogin starts a sign-in with a passkey and no password: any
// passkey of this site the authenticator holds (discoverable credentials),
// the user verified by it. conditional asks for the browser's autofill UI
// (mediation "conditional") instead of a dialog.
func (s *Users) BeginPasskeyLogin(ctx context.Context, browser string, conditional bool) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	mediation := protocol.MediationDefault
	if conditional {
		mediation = protocol.MediationConditional
	}
	assertion, data, err := rp.BeginDiscoverableMediatedLogin(mediation, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("models: begin passkey login: %w", err)
	}
	if err := s.saveCeremony(ctx, browser, ceremony{purpose: ceremonyLogin, data: *data}); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// FinishPasskeyLogin verifies the browser's answer to a passkey sign-in
// begun in this browser and issues a session of ttl seconds (0: the
// default). The account is the one whose user handle the passkey carries;
// the passkey must be one of its passkeys, made for this site, used on
// this origin, with the user verified (M5). A passkey signs in alone: it
// is a factor the user holds, unlocked by one they know or are.
func (s *Users) FinishPasskeyLogin(ctx context.Context, browser string, response []byte, ttl int64, meta ClientMeta) (*AccessToken, *User, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, nil, err
	}
	if ttl, err = s.ResolveTTL(ttl); err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", ErrPasskeyRefused, err)
	}
	c, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, browser, ceremonyLogin)
	if err != nil {
		return nil, nil, err
	}
	var userID int64
	err = s.db.QueryRow(ctx, `SELECT user_id FROM webauthn_handles WHERE handle = ?`, []byte(parsed.Response.UserHandle)).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("%w (unknown user handle)", ErrPasskeyRefused)
	}
	if err != nil {
		return nil, nil, err
	}
	u, err := s.FindUserByID(ctx, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", ErrPasskeyRefused, err)
	}
	if u.Disabled {
		return nil, nil, ErrLoginFailed
	}
	key := "passkey:" + accountKey(u)
	if err := s.limiter.BeforeLogin(ctx, key, meta); err != nil {
		return nil, nil, err
	}
	defer s.limiter.EndLogin(key, meta)
	var (
		tok *AccessToken
		why string
	)
	err = s.db.Write(ctx, s.now(), func(tx *Tx) error {
		pu, err := loadPasskeyUser(ctx, tx, u)
		if err != nil {
			return err
		}
		if why = tx.usePasskey(ctx, rp, pu, c, parsed, true); why != "" {
			return nil
		}
		if tok, err = tx.insertToken(ctx, u.ID, ttl, ScopeSession, "passkey", meta); err != nil {
			return err
		}
		if err := s.tell(ctx, tx, AccountEvent{Type: EventSessionCreated, User: u, Method: "passkey", Meta: meta}); err != nil {
			return err
		}
		if err := s.limiter.RecordLogin(ctx, tx, key, meta, true); err != nil {
			return err
		}
		return tx.Audit(ctx, "login.ok", u.ID, meta, "passkey")
	})
	if err != nil {
		return nil, nil, err
	}
	if why != "" {
		if err := s.db.Write(ctx, s.now(), func(tx *Tx) error {
			if err := tx.Audit(ctx, "login.failed", u.ID, meta, "passkey"); err != nil {
				return err
			}
			return s.limiter.RecordLogin(ctx, tx, key, meta, false)
		}); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w (%s)", ErrPasskeyRefused, why)
	}
	return tok, u, nil
}

// usePasskey verifies an assertion against the user's passkeys inside tx
// and records its use: the new sign counter, the backup state, last_used.
// It answers why it refused ("" when it accepted): the library's checks
// (challenge, RP ID hash, origin, type, user presence, user verification
// when the ceremony required it, the signature, the backup-eligible flag
// unchanged), a counter that did not go up (a cloned authenticator), or a
// concurrent use of the same counter value.
func (t *Tx) usePasskey(ctx context.Context, rp *webauthn.WebAuthn, pu *passkeyUser, c *ceremony,
	parsed *protocol.ParsedCredentialAssertionData, discoverable bool) string {
	if pu.handle == nil {
		return "no user handle"
	}
	stored := pu.credential(parsed.RawID)
	if stored == nil {
		return "not one of the account's passkeys"
	}
	var (
		cred *webauthn.Credential
		err  error
	)
	if discoverable {
		_, cred, err = rp.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, pu.handle) {
				return nil, errors.New("another account's passkey")
			}
			return pu, nil
		}, c.data, parsed)
	} else {
		cred, err = rp.ValidateLogin(pu, c.data, parsed)
	}
	if err != nil {
		return protocolReason(err)
	}
	if cred.Authenticator.CloneWarning {
		return "sign counter did not increase: a cloned authenticator?"
	}
	res, err := t.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = ?, backup_state = ?, last_used = ?
		WHERE id = ? AND user_id = ? AND sign_count = ?`, int64(cred.Authenticator.SignCount), boolInt(cred.Flags.BackupState),
		ms(t.now), cred.ID, pu.user.ID, int64(stored.Authenticator.SignCount))
	if err != nil {
		return "store: " + err.Error()
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return "used concurrently"
	}
	return ""
}

// protocolReason words a library error for the log: its message and
// details, never the data.
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return strings.TrimSpace(pe.Type + ": " + pe.Details)
	}
	return err.Error()
}

// BeginPasskeySecondStep starts the passkey as the second step of a
// password login: the pending mfaToken (from *MFARequiredError) names the
// account, whose passkeys are allowed. The ceremony is bound to the token
// and to the browser.
func (s *Users) BeginPasskeySecondStep(ctx context.Context, mfaToken, browser string) (json.RawMessage, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, err
	}
	ch, err := s.PendingMFA(ctx, mfaToken)
	if err != nil {
		return nil, err
	}
	u, err := s.FindUserByID(ctx, ch.UserID)
	if err != nil {
		return nil, ErrMFAInvalid
	}
	pu, err := loadPasskeyUser(ctx, s.db, u)
	if err != nil {
		return nil, err
	}
	if len(pu.creds) == 0 || pu.handle == nil {
		return nil, ErrNoPasskeys
	}
	// The password was the first factor: the passkey's presence is the
	// second, verification is welcome but not asked for.
	assertion, data, err := rp.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, fmt.Errorf("models: begin passkey second step: %w", err)
	}
	d := Digest(mfaToken)
	if err := s.saveCeremony(ctx, browser, ceremony{purpose: ceremonyMFA, userID: u.ID, bound: d[:], data: *data}); err != nil {
		return nil, err
	}
	return json.Marshal(assertion)
}

// CompletePasskeyMFA finishes a two-step login with a passkey: mfaToken
// from Login's *MFARequiredError and the browser's answer to the ceremony
// BeginPasskeySecondStep began. It is a second-factor attempt like a code
// (secondFactorAttempt: throttled, M2); a refused passkey is
// ErrPasskeyRefused.
func (s *Users) CompletePasskeyMFA(ctx context.Context, mfaToken, browser string, response []byte, meta ClientMeta) (*AccessToken, *User, error) {
	rp, err := s.relyingParty()
	if err != nil {
		return nil, nil, err
	}
	ch, err := s.PendingMFA(ctx, mfaToken)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.FindUserByID(ctx, ch.UserID)
	if err != nil {
		return nil, nil, ErrMFAInvalid
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (%v)", ErrPasskeyRefused, err)
	}
	c, err := s.takeCeremony(ctx, parsed.Response.CollectedClientData.Challenge, browser, ceremonyMFA)
	if err != nil {
		return nil, nil, err
	}
	d := Digest(mfaToken)
	if c.userID != u.ID || !bytes.Equal(c.bound, d[:]) {
		return nil, nil, ErrPasskeyCeremony
	}
	var (
		tok *AccessToken
		why string
	)
	err = s.secondFactorAttempt(ctx, u, meta, func(tx *Tx) (string, error) {
		pu, err := loadPasskeyUser(ctx, tx, u)
		if err != nil {
			return "", err
		}
		if why = tx.usePasskey(ctx, rp, pu, c, parsed, false); why != "" {
			return "", nil
		}
		return "passkey", nil
	}, func(tx *Tx, how string) error {
		var err error
		tok, err = s.finishSecondStep(ctx, tx, mfaToken, ch, u, how, meta)
		return err
	})
	if errors.Is(err, ErrMFACode) {
		return nil, nil, fmt.Errorf("%w (%s)", ErrPasskeyRefused, why)
	}
	if err != nil {
		return nil, nil, err
	}
	return tok, u, nil
}
