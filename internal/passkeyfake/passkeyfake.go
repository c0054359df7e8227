// Package passkeyfake is a software WebAuthn authenticator and the browser
// around it, for tests: it reads the options a relying party sends for
// navigator.credentials.create() and get() (the JSON of go-webauthn's
// CredentialCreation and CredentialAssertion) and answers with the JSON a
// browser posts back (PublicKeyCredential.toJSON()): attestation "none",
// ES256 keys from crypto/ecdsa, real signatures over real authenticator
// data. Its knobs make the answers a real authenticator would not give:
// another origin or RP ID, no user verification, a counter gone back.
package passkeyfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Authenticator holds passkeys (discoverable credentials) and answers
// ceremonies as a browser on Origin would.
type Authenticator struct {
	// Origin is what the client data says the ceremony ran on.
	Origin string
	// RPID, when set, replaces the options' RP ID in what is hashed into
	// the authenticator data (a phishing site's passkey).
	RPID string
	// UV: the user was verified (PIN, biometrics). BE, BS: the backup
	// flags (a synced passkey).
	UV, BE, BS bool
	// ZeroCounter: the authenticator keeps no sign counter (always 0),
	// as synced passkeys do.
	ZeroCounter bool

	creds []*credential
}

type credential struct {
	id    []byte
	key   *ecdsa.PrivateKey
	rpID  string
	user  []byte // the user handle
	count uint32
}

// New is an authenticator on origin that verifies its user.
func New(origin string) *Authenticator { return &Authenticator{Origin: origin, UV: true} }

var b64 = base64.RawURLEncoding

// Credentials are the ids of the passkeys it holds, oldest first.
func (a *Authenticator) Credentials() [][]byte {
	out := make([][]byte, len(a.creds))
	for i, c := range a.creds {
		out[i] = c.id
	}
	return out
}

// UserHandle is the user handle a passkey was made with.
func (a *Authenticator) UserHandle(id []byte) []byte {
	if c := a.find(id); c != nil {
		return c.user
	}
	return nil
}

// SetCounter sets a passkey's sign counter (the next assertion sends n+1).
func (a *Authenticator) SetCounter(id []byte, n uint32) {
	if c := a.find(id); c != nil {
		c.count = n
	}
}

func (a *Authenticator) find(id []byte) *credential {
	for _, c := range a.creds {
		if bytes.Equal(c.id, id) {
			return c
		}
	}
	return nil
}

// creationOptions is what Create reads of the creation options.
type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// Create makes a passkey for the options (JSON) and returns the
// registration response (JSON).
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeyfake: creation options: %w", err)
	}
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("passkeyfake: user.id: %w", err)
	}
	for _, x := range o.PublicKey.Exclude {
		id, _ := b64.DecodeString(x.ID)
		if a.find(id) != nil {
			return nil, errors.New("passkeyfake: InvalidStateError: a passkey for this account is here already")
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &credential{id: make([]byte, 16), key: key, rpID: o.PublicKey.RP.ID, user: user}
	if _, err := rand.Read(c.id); err != nil {
		return nil, err
	}
	a.creds = append(a.creds, c)

	auth := a.authData(c.rpID, 0, true)
	auth = append(auth, make([]byte, 16)...) // AAGUID: none
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.id)))
	auth = append(auth, c.id...)
	auth = append(auth, coseKey(&key.PublicKey)...)
	// {"fmt": "none", "attStmt": {}, "authData": auth}
	att := []byte{0xa3}
	att = cborText(att, "fmt")
	att = cborText(att, "none")
	att = cborText(att, "attStmt")
	att = append(att, 0xa0)
	att = cborText(att, "authData")
	att = cborBytes(att, auth)

	cd := a.clientData("webauthn.create", o.PublicKey.Challenge)
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
}

// requestOptions is what Get reads of the request options.
type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// Get signs in with a passkey for the options (JSON) and returns the
// assertion (JSON): the first of the allowed passkeys it holds, or, with
// none listed (a discoverable login), its first passkey for the RP ID.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("passkeyfake: request options: %w", err)
	}
	var c *credential
	for _, x := range a.creds {
		if x.rpID != o.PublicKey.RPID {
			continue
		}
		if len(o.PublicKey.Allow) == 0 {
			c = x
			break
		}
		for _, al := range o.PublicKey.Allow {
			if id, _ := b64.DecodeString(al.ID); bytes.Equal(id, x.id) {
				c = x
				break
			}
		}
		if c != nil {
			break
		}
	}
	if c == nil {
		return nil, errors.New("passkeyfake: NotAllowedError: no passkey for this site")
	}
	return a.Assert(c.id, o.PublicKey.Challenge)
}

// Assert signs challenge (base64url, as the options carry it) with the
// passkey id: the assertion JSON.
func (a *Authenticator) Assert(id []byte, challenge string) ([]byte, error) {
	c := a.find(id)
	if c == nil {
		return nil, errors.New("passkeyfake: no such passkey")
	}
	if !a.ZeroCounter {
		c.count++
	}
	auth := a.authData(c.rpID, c.count, false)
	cd := a.clientData("webauthn.get", challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.user),
		},
		"clientExtensionResults": map[string]any{},
	})
}

// Authenticator data flags.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// authData is the RP ID hash, the flags and the counter.
func (a *Authenticator) authData(rpID string, count uint32, attested bool) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := byte(flagUP)
	if a.UV {
		flags |= flagUV
	}
	if a.BE {
		flags |= flagBE
	}
	if a.BS {
		flags |= flagBS
	}
	if attested {
		flags |= flagAT
	}
	out := append(h[:], flags)
	return binary.BigEndian.AppendUint32(out, count)
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// coseKey is an ES256 public key as a COSE_Key: {1: 2 (EC2), 3: -7
// (ES256), -1: 1 (P-256), -2: x, -3: y}.
func coseKey(k *ecdsa.PublicKey) []byte {
	raw, _ := k.Bytes() // 0x04 || x || y
	out := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21}
	out = cborBytes(out, raw[1:33])
	out = append(out, 0x22)
	return cborBytes(out, raw[33:65])
}

func cborHead(out []byte, major byte, n int) []byte {
	switch {
	case n < 24:
		return append(out, major<<5|byte(n))
	case n < 256:
		return append(out, major<<5|24, byte(n))
	default:
		return binary.BigEndian.AppendUint16(append(out, major<<5|25), uint16(n))
	}
}

func cborBytes(out, b []byte) []byte { return append(cborHead(out, 2, len(b)), b...) }

func cborText(out []byte, s string) []byte { return append(cborHead(out, 3, len(s)), s...) }
