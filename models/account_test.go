package models_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/models"
)

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// TestEmailCaseInsensitive: one account per address whatever its case; the
// address is kept as typed; lookups ignore case.
func TestEmailCaseInsensitive(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	ctx := context.Background()
	created := mustCreate(t, u, "email", "Dave@Example.com", "password", "evad-pw-1")
	if created.Email != "Dave@Example.com" {
		t.Fatalf("stored %q", created.Email)
	}
	_, err := u.CreateUser(ctx, models.StringFields("email", "dave@example.com", "password", "evad-pw-2"), models.ClientMeta{})
	v, ok := models.AsValidation(err)
	if !ok || v.Fields[0].Code != "uniqueness" {
		t.Fatalf("second account by case: %v", err)
	}
	for _, e := range []string{"dave@example.com", "DAVE@EXAMPLE.COM", " Dave@Example.com "} {
		got, err := u.FindUserByEmail(ctx, e)
		if err != nil || got.ID != created.ID {
			t.Errorf("FindUserByEmail(%q): %v %v", e, got, err)
		}
		if _, _, err := u.Login(ctx, models.Credentials{Email: e, Password: "evad-pw-1"}, models.ClientMeta{}); err != nil {
			t.Errorf("login as %q: %v", e, err)
		}
	}
	if _, err := u.FindUserByEmail(ctx, "nobody@example.com"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}

// TestUsernameCaseInsensitive: usernames are unique and looked up ignoring case.
func TestUsernameCaseInsensitive(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	mustCreate(t, u, "email", "a@example.com", "username", "Alice", "password", "ecila-pw-1")
	_, err := u.CreateUser(context.Background(), models.StringFields("email", "b@example.com", "username", "alice", "password", "ecila-pw-1"), models.ClientMeta{})
	if v, ok := models.AsValidation(err); !ok || v.Fields[0].Field != "username" {
		t.Fatalf("duplicate username by case: %v", err)
	}
	if _, _, err := u.Login(context.Background(), models.Credentials{Username: "ALICE", Password: "ecila-pw-1"}, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentSignupsSameEmail: racing sign-ups for one address make one
// account; the losers get the uniqueness error, never a 500.
func TestConcurrentSignupsSameEmail(t *testing.T) {
	t.Parallel()
	u, _ := newUsers(t, models.Config{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = u.CreateUser(context.Background(),
				models.StringFields("email", "race@example.com", "password", "ecar-pw-1"), models.ClientMeta{})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		if v, isV := models.AsValidation(err); !isV || v.Fields[0].Code != "uniqueness" {
			t.Errorf("loser got %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d accounts created", ok)
	}
}

// TestProfileCap: extra fields are kept in order and capped.
func TestProfileCap(t *testing.T) {
	t.Parallel()
	u, db, _ := newUsersDB(t, models.Config{})
	body, _ := models.ParseObject([]byte(`{"email":"p@example.com","password":"p-pw-12345","zeta":1,"alpha":{"b":[1,2]},"access_token":"x"}`))
	user, err := u.CreateUser(context.Background(), body, models.ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := user.Profile.MarshalJSON(); string(got) != `{"zeta":1,"alpha":{"b":[1,2]}}` {
		t.Fatalf("profile %s", got)
	}
	again, _ := u.FindUserByID(context.Background(), user.ID)
	if got, _ := again.Profile.MarshalJSON(); string(got) != `{"zeta":1,"alpha":{"b":[1,2]}}` {
		t.Fatalf("stored profile %s", got)
	}
	big, _ := json.Marshal(strings.Repeat("x", models.MaxProfileBytes))
	body, _ = models.ParseObject([]byte(`{"email":"q@example.com","password":"q-pw-12345","bio":` + string(big) + `}`))
	if _, err := u.CreateUser(context.Background(), body, models.ClientMeta{}); err == nil || !strings.Contains(err.Error(), "PROFILE_TOO_LARGE") {
		t.Fatalf("oversized profile: %v", err)
	}
	var n int
	db.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n)
	if n != 1 {
		t.Fatalf("a refused sign-up was stored: %d users", n)
	}
}

func TestValidEmail(t *testing.T) {
	for s, want := range map[string]bool{
		"alice@example.com":                      true,
		"a.b+tag@sub.example.co.uk":              true,
		"Dave@Example.com":                       true,
		"user@bücher.de":                         true,
		"not-an-email":                           false,
		"  spaced@example.com":                   false,
		"a@b":                                    false,
		"a@@example.com":                         false,
		"@example.com":                           false,
		"a@example..com":                         false,
		"a@-example.com":                         false,
		".a@example.com":                         false,
		"a..b@example.com":                       false,
		"a b@example.com":                        false,
		"a@example.com\n":                        false,
		"<a@example.com>":                        false,
		strings.Repeat("a", 65) + "@example.com": false,
	} {
		if got := models.ValidEmail(s); got != want {
			t.Errorf("ValidEmail(%q) = %v", s, got)
		}
	}
}

func TestParseObject(t *testing.T) {
	f, err := models.ParseObject([]byte(` {"b":1,"a":"x","b":2} `))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := f.MarshalJSON(); string(b) != `{"b":2,"a":"x"}` {
		t.Fatalf("got %s", b)
	}
	for _, bad := range []string{`{"a":`, `{"a":1} x`, `{"a":1}{}`, `{a:1}`, ``} {
		if _, err := models.ParseObject([]byte(bad)); err == nil {
			t.Errorf("ParseObject(%q) accepted", bad)
		}
	}
	var many strings.Builder
	many.WriteString("{")
	for i := 0; i <= models.MaxMembers; i++ {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"k%d":%d`, i, i)
	}
	many.WriteString("}")
	if _, err := models.ParseObject([]byte(many.String())); !errors.Is(err, models.ErrTooManyMembers) {
		t.Errorf("%d members: %v", models.MaxMembers+1, err)
	}
	if _, err := models.ParseObject([]byte(`[1]`)); !errors.Is(err, models.ErrArray) || !errors.Is(err, models.ErrNotObject) {
		t.Errorf("array: %v", err)
	}
	for _, notObj := range []string{`[]`, `"s"`, `1`, `null`} {
		if _, err := models.ParseObject([]byte(notObj)); !errors.Is(err, models.ErrNotObject) {
			t.Errorf("ParseObject(%q): %v", notObj, err)
		}
	}
}
