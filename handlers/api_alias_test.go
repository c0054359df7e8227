package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/models"
)

// Two users imported from a LoopBack MongoDB store: their ObjectIds are
// their aliases.
const (
	annAlias    = "5f1d7c2e9b1e8a0012345678"
	bobAlias    = "5f1d7c2e9b1e8a00123456ab"
	nobodyAlias = "5f1d7c2e9b1e8a00deadbeef" // the shape of an ObjectId, nobody's alias
	annPassword = "ann-pw-1-long"
	bobPassword = "bob-pw-1-long"
)

// importAliased imports ann (id 7) and bob (id 8) with their ObjectIds as
// aliases, as `latchkey import lb3` does for a MongoDB export.
func importAliased(t *testing.T, env *testEnv) {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	err := env.db.Write(context.Background(), env.clock.Now(), func(tx *models.Tx) error {
		return tx.ImportUsers(context.Background(), []models.ImportUser{
			{ID: 7, Email: "ann@example.com", Username: "ann", PasswordHash: hash(annPassword), Alias: annAlias},
			{ID: 8, Email: "bob@example.com", PasswordHash: hash(bobPassword), Alias: bobAlias},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAPIUserAlias: every /api/users route that takes a user id answers a
// user's ObjectId alias, in any case, exactly as it answers the integer id
// (same status, same body, the integer id in it); another user's alias is
// refused as another user's id is, and an ObjectId of nobody as an unknown
// id.
func TestAPIUserAlias(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	mb := subscribe(env)
	importAliased(t, env)
	ann := env.login("ann@example.com", annPassword)
	bob := env.login("bob@example.com", bobPassword)
	if id, err := env.users.UserIDByAlias(context.Background(), annAlias); err != nil || id != 7 {
		t.Fatalf("UserIDByAlias(%s) = %d, %v", annAlias, id, err)
	}

	// The routes, %s the id; every one is idempotent here, so each form of
	// the id meets the same state.
	routes := []struct{ method, path, body string }{
		{"GET", "/api/users/%s", ""},
		{"HEAD", "/api/users/%s", ""},
		{"PATCH", "/api/users/%s", `{"nickname":"annie"}`},
		{"PATCH", "/api/users/%s", `{"emailVerified":true}`},
		{"PUT", "/api/users/%s", `{"email":"ann@example.com"}`},
		{"POST", "/api/users/%s/replace", `{"email":"ann@example.com","password":"x"}`},
		{"POST", "/api/users/%s/verify", ""},
		{"GET", "/api/users/%s/sessions", ""},
		{"DELETE", "/api/users/%s/sessions/nosuchhandle", ""},
		{"GET", "/api/users/%s/exists", ""},
		{"GET", "/api/users/%s/accessTokens", ""},
		{"POST", "/api/users/%s/accessTokens", `{}`},
		{"DELETE", "/api/users/%s/accessTokens", ""},
		{"GET", "/api/users/%s/accessTokens/count", ""},
		{"GET", "/api/users/%s/accessTokens/x", ""},
		{"PUT", "/api/users/%s/accessTokens/x", `{}`},
		{"DELETE", "/api/users/%s/accessTokens/x", ""},
	}
	// Each alias form is compared with the integer id it stands for.
	cases := []struct {
		name   string
		token  string
		intID  string
		others []string
	}{
		{"own", ann, "7", []string{annAlias, strings.ToUpper(annAlias), "5F1d7C2e9B1e8A0012345678"}},
		{"another user's", ann, "8", []string{bobAlias, strings.ToUpper(bobAlias)}},
		{"own, as the other user", bob, "7", []string{annAlias, strings.ToUpper(annAlias)}},
		{"anonymous", "", "7", []string{annAlias, strings.ToUpper(annAlias)}},
		{"unknown", ann, "999", []string{nobodyAlias, strings.ToUpper(nobodyAlias)}},
		{"malformed", ann, "abc", []string{annAlias[:23], annAlias + "0", annAlias[:23] + "g", "0x" + annAlias[2:]}},
	}
	statuses := map[string]map[int]bool{} // per case, the statuses met: the table must reach the handlers
	for _, c := range cases {
		statuses[c.name] = map[int]bool{}
		for _, r := range routes {
			var headers []string
			if c.token != "" {
				headers = append(headers, "Authorization: "+c.token)
			}
			want := env.do(r.method, fmt.Sprintf(r.path, c.intID), r.body, headers...)
			statuses[c.name][want.status] = true
			for _, id := range c.others {
				t.Run(fmt.Sprintf("%s %s %s as %s", c.name, r.method, strings.ReplaceAll(r.path, "%s", ":id"), id), func(t *testing.T) {
					got := env.do(r.method, fmt.Sprintf(r.path, id), r.body, headers...)
					if got.status != want.status || got.body != want.body {
						t.Fatalf("got %d %s\nwant (as id %s) %d %s", got.status, got.body, c.intID, want.status, want.body)
					}
					if ct, wct := got.header.Get("Content-Type"), want.header.Get("Content-Type"); ct != wct {
						t.Fatalf("Content-Type %q, want %q", ct, wct)
					}
				})
			}
		}
	}
	// The owner's table met every answer the owner's routes give; everyone
	// else met 401 only.
	if own := statuses["own"]; !own[200] || !own[204] || !own[401] || !own[404] || !own[422] {
		t.Errorf("the owner's requests answered %v", own)
	}
	for _, c := range cases[1:] {
		if len(statuses[c.name]) != 1 || !statuses[c.name][401] {
			t.Errorf("%s: answered %v, want 401 only", c.name, statuses[c.name])
		}
	}

	t.Run("the body names the integer id", func(t *testing.T) {
		r := env.do("GET", "/api/users/"+strings.ToUpper(annAlias), "", "Authorization: "+ann)
		if r.status != 200 || r.body != `{"username":"ann","email":"ann@example.com","id":7,"nickname":"annie"}` {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("verify through the alias mails the user", func(t *testing.T) {
		_, before, _ := mb.counts()
		want204(t, env.do("POST", "/api/users/"+annAlias+"/verify", "", "Authorization: "+ann))
		if _, n, _ := mb.counts(); n != before+1 || mb.lastVerify(t).User.ID != 7 {
			t.Fatalf("verify events %d → %d, last %+v", before, n, mb.lastVerify(t))
		}
	})
	t.Run("a session revoked through the alias", func(t *testing.T) {
		for _, id := range []string{annAlias, strings.ToUpper(annAlias), "7"} {
			extra := env.login("ann@example.com", annPassword)
			handle := sessionHandle(t, env, extra)
			want204(t, env.do("DELETE", "/api/users/"+id+"/sessions/"+handle, "", "Authorization: "+ann))
			wantEnvelope(t, env.do("GET", "/api/users/7", "", "Authorization: "+extra), 401, authRequired)
		}
	})
	t.Run("the user deleted through the alias", func(t *testing.T) {
		r := env.do("DELETE", "/api/users/"+strings.ToUpper(bobAlias), "", "Authorization: "+bob)
		if r.status != 200 || r.body != `{"count":1}` {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		// The alias went with the user: it is now nobody's.
		if _, err := env.users.UserIDByAlias(context.Background(), bobAlias); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("UserIDByAlias after the delete: %v", err)
		}
		wantEnvelope(t, env.do("DELETE", "/api/users/"+bobAlias, "", "Authorization: "+bob), 401, authRequired)
		wantEnvelope(t, env.do("GET", "/api/users/"+bobAlias, "", "Authorization: "+ann), 401, authRequired)
	})
}

// sessionHandle is the handle of the session token tok, from its own list.
func sessionHandle(t *testing.T, env *testEnv, tok string) string {
	t.Helper()
	r := env.do("GET", "/api/users/me/sessions", "", "Authorization: "+tok)
	var list []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatalf("sessions: %d %s", r.status, r.body)
	}
	for _, s := range list {
		if s.Current {
			return s.ID
		}
	}
	t.Fatalf("no current session in %s", r.body)
	return ""
}

// TestAPIConfirmAlias: confirm's uid may be the ObjectId LoopBack put in
// the mailed link, in any case.
func TestAPIConfirmAlias(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	mb := subscribe(env)
	importAliased(t, env)
	ann := env.login("ann@example.com", annPassword)
	confirm := func(uid, token string) response {
		return env.do("GET", "/api/users/confirm?uid="+uid+"&token="+token, "")
	}

	t.Run("a wrong token, as for the integer id", func(t *testing.T) {
		want := confirm("7", "nope")
		wantEnvelope(t, want, 400, lbErr(400, "Error", "Invalid token: nope", "INVALID_TOKEN"))
		for _, uid := range []string{annAlias, strings.ToUpper(annAlias)} {
			wantEnvelope(t, confirm(uid, "nope"), want.status, want.body)
		}
	})
	t.Run("an ObjectId of nobody, as an unknown id: the message names it", func(t *testing.T) {
		wantEnvelope(t, confirm("999", "nope"), 404, lbErr(404, "Error", "User not found: 999", "USER_NOT_FOUND"))
		for _, uid := range []string{nobodyAlias, strings.ToUpper(nobodyAlias)} {
			wantEnvelope(t, confirm(uid, "nope"), 404, lbErr(404, "Error", "User not found: "+uid, "USER_NOT_FOUND"))
		}
	})
	t.Run("malformed, as today", func(t *testing.T) {
		for _, uid := range []string{"abc", annAlias[:23], annAlias + "0", annAlias[:23] + "g"} {
			wantEnvelope(t, confirm(uid, "nope"), 404, lbErr(404, "Error", "User not found: "+uid, "USER_NOT_FOUND"))
		}
	})
	t.Run("another user's token under ann's alias", func(t *testing.T) {
		bob := env.login("bob@example.com", bobPassword)
		want204(t, env.do("POST", "/api/users/8/verify", "", "Authorization: "+bob))
		vt := mb.lastVerify(t).Token
		wantEnvelope(t, confirm(annAlias, vt), 400, lbErr(400, "Error", "Invalid token: "+vt, "INVALID_TOKEN"))
		want204(t, confirm(strings.ToUpper(bobAlias), vt))
	})
	t.Run("ok through the alias, then consumed as through the id", func(t *testing.T) {
		want204(t, env.do("POST", "/api/users/7/verify", "", "Authorization: "+ann))
		vt := mb.lastVerify(t).Token
		r := env.do("GET", "/api/users/confirm?uid="+strings.ToUpper(annAlias)+"&redirect=%2Fverified&token="+vt, "")
		if r.status != 302 || r.header.Get("Location") != "/verified" {
			t.Fatalf("got %d Location=%q %s", r.status, r.header.Get("Location"), r.body)
		}
		if got := env.do("GET", "/api/users/"+annAlias, "", "Authorization: "+ann); got.json(t)["emailVerified"] != true {
			t.Fatalf("after confirm: %s", got.body)
		}
		want := confirm("7", vt)
		wantEnvelope(t, want, 400, lbErr(400, "Error", "Invalid token: "+vt, "INVALID_TOKEN"))
		wantEnvelope(t, confirm(annAlias, vt), want.status, want.body)
	})
}
