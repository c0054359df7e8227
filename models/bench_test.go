package models

// Benchmarks of the hot paths (issue 6). Run with
//
//	go test -run '^$' -bench . -benchmem ./models/
//
// They live in package models so the login's write transaction can be timed
// without bcrypt (tx.insertToken + tx.Audit, exactly what Login commits).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/internal/testdb"
)

// benchUsers is how many users and tokens the benchmarks seed.
const benchUsers = 1000

type benchEnv struct {
	db     *DB
	hasher *Hasher
	ids    []int64
	emails []string
	tokens []string // one live session token per user, in ids order
}

// newBenchEnv opens a fresh database on the suite's store (testdb.DSN: a
// SQLite file, or a schema of its own with LATCHKEY_TEST_STORE=postgres) and
// seeds benchUsers users, each with one session token, through the import
// API (a bcrypt per user would take a minute; ids are given, so nothing
// depends on LastInsertId, which PostgreSQL lacks).
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, testdb.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{db: db, hasher: NewHasher(HashConfig{BcryptCost: bcrypt.MinCost})}
	now := time.Now().UTC()
	users := make([]ImportUser, 0, benchUsers)
	tokens := make([]ImportToken, 0, benchUsers)
	for i := range benchUsers {
		id := int64(i + 1)
		email := fmt.Sprintf("user%06d@example.com", i)
		tok := NewTokenID()
		users = append(users, ImportUser{ID: id, Email: email, PasswordHash: string(hash), PasswordNFKC: true, Created: now})
		tokens = append(tokens, ImportToken{ID: tok, UserID: id, TTL: 1209600, Created: now, IP: "127.0.0.1"})
		env.ids = append(env.ids, id)
		env.emails = append(env.emails, email)
		env.tokens = append(env.tokens, tok)
	}
	err = db.Write(ctx, now, func(tx *Tx) error {
		if err := tx.ImportUsers(ctx, users); err != nil {
			return err
		}
		return tx.ImportTokens(ctx, tokens)
	})
	if err != nil {
		b.Fatal(err)
	}
	return env
}

func (e *benchEnv) users(cfg Config) *Users { return NewUsers(e.db, e.hasher, nil, cfg) }

func BenchmarkNewTokenID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewTokenID()
	}
}

// BenchmarkNewTokenIDDigest is a token as login makes it: the id and its digest.
func BenchmarkNewTokenIDDigest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Digest(NewTokenID())
	}
}

// BenchmarkAuthenticate resolves a presented token to a session: from the
// in-memory cache (the normal case), and from the store (a cold or disabled
// cache: one token read and one user read by primary key).
func BenchmarkAuthenticate(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	check := func(b *testing.B, s *Session, err error) {
		if err != nil || s == nil {
			b.Fatalf("Authenticate = %v, %v", s, err)
		}
	}
	b.Run("hit", func(b *testing.B) {
		u := env.users(Config{})
		for _, t := range env.tokens {
			s, err := u.Authenticate(ctx, t, ScopeSession)
			check(b, s, err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s, err := u.Authenticate(ctx, env.tokens[i%benchUsers], ScopeSession)
			check(b, s, err)
			i++
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		u := env.users(Config{})
		for _, t := range env.tokens {
			s, err := u.Authenticate(ctx, t, ScopeSession)
			check(b, s, err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s, err := u.Authenticate(ctx, env.tokens[i%benchUsers], ScopeSession)
				check(b, s, err)
				i++
			}
		})
	})
	b.Run("miss", func(b *testing.B) {
		u := env.users(Config{CacheSize: -1}) // no cache: every call reads the store
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s, err := u.Authenticate(ctx, env.tokens[i%benchUsers], ScopeSession)
			check(b, s, err)
			i++
		}
	})
	b.Run("miss-parallel", func(b *testing.B) {
		u := env.users(Config{CacheSize: -1})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s, err := u.Authenticate(ctx, env.tokens[i%benchUsers], ScopeSession)
				check(b, s, err)
				i++
			}
		})
	})
	b.Run("unknown", func(b *testing.B) {
		// A well-formed token that is not in the database: one indexed read.
		u := env.users(Config{})
		raw := NewTokenID()
		b.ReportAllocs()
		for b.Loop() {
			if s, err := u.Authenticate(ctx, raw, ScopeSession); s != nil || err != nil {
				b.Fatalf("Authenticate(unknown) = %v, %v", s, err)
			}
		}
	})
}

// BenchmarkFindUserByEmail is login's user lookup by the unique email key.
func BenchmarkFindUserByEmail(b *testing.B) {
	env := newBenchEnv(b)
	u := env.users(Config{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := u.FindUserByEmail(ctx, env.emails[i%benchUsers]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLoginWrite is the write transaction of a successful login without
// the bcrypt: insert the token and the audit row, commit.
func BenchmarkLoginWrite(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	meta := ClientMeta{IP: "127.0.0.1", UserAgent: "bench"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := env.ids[i%benchUsers]
		err := env.db.Write(ctx, time.Now().UTC(), func(tx *Tx) error {
			if _, err := tx.insertToken(ctx, id, 1209600, ScopeSession, "", meta); err != nil {
				return err
			}
			return tx.Audit(ctx, "login.ok", id, meta, "")
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPasswordVerify is one bcrypt comparison at LoopBack's cost 10:
// the floor under every login, successful or not.
func BenchmarkPasswordVerify(b *testing.B) {
	h := NewHasher(HashConfig{BcryptCost: 10})
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ok", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := h.Verify(ctx, hash, true, "correct horse")
			if err != nil || !ok {
				b.Fatalf("Verify = %v, %v", ok, err)
			}
		}
	})
	b.Run("wrong", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok, err := h.Verify(ctx, hash, true, "wrong horse!")
			if err != nil || ok {
				b.Fatalf("Verify = %v, %v", ok, err)
			}
		}
	})
	b.Run("dummy", func(b *testing.B) {
		h.Warm()
		b.ReportAllocs()
		for b.Loop() {
			if err := h.VerifyDummy(ctx, "whatever pw"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
