package handlers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/handlers"
	"github.com/latchkey/latchkey/models"
)

// mailbox records the tokens the reset and verify events carry (boot turns
// them into mail; here the handlers are tested alone).
type mailbox struct {
	mu       sync.Mutex
	resets   []string // reset token ids, in order
	verifies []models.VerifyEmailRequest
	changed  []models.PasswordChanged
}

func (m *mailbox) lastReset(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.resets) == 0 {
		t.Fatal("no reset event")
	}
	return m.resets[len(m.resets)-1]
}

func (m *mailbox) lastVerify(t *testing.T) models.VerifyEmailRequest {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.verifies) == 0 {
		t.Fatal("no verify event")
	}
	return m.verifies[len(m.verifies)-1]
}

func (m *mailbox) counts() (int, int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.resets), len(m.verifies), len(m.changed)
}

func subscribe(env *testEnv) *mailbox {
	m := &mailbox{}
	env.users.OnResetPasswordRequest(func(_ context.Context, _ *models.Tx, ev models.ResetPasswordRequest) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.resets = append(m.resets, ev.AccessToken.ID)
		return nil
	})
	env.users.OnVerifyEmailRequest(func(_ context.Context, _ *models.Tx, ev models.VerifyEmailRequest) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.verifies = append(m.verifies, ev)
		return nil
	})
	env.users.OnPasswordChanged(func(_ context.Context, _ *models.Tx, ev models.PasswordChanged) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.changed = append(m.changed, ev)
		return nil
	})
	return m
}

// doForm sends an application/x-www-form-urlencoded body.
func (env *testEnv) doForm(path, form string, headers ...string) response {
	env.t.Helper()
	return env.do("POST", path, form, append([]string{"Content-Type: application/x-www-form-urlencoded"}, headers...)...)
}

func wantEnvelope(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.status != status || !sameJSON(t, r.body, want) {
		t.Fatalf("got %d %s\nwant %d %s", r.status, r.body, status, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

func want204(t *testing.T, r response) {
	t.Helper()
	if r.status != 204 || r.body != "" {
		t.Fatalf("got %d %q, want 204 and an empty body", r.status, r.body)
	}
}

var (
	emailRequired = lbErr(400, "Error", "Email is required", "EMAIL_REQUIRED")
	newPwRequired = `{"error":{"statusCode":400,"name":"Error","message":"newPassword is a required argument"}}`
	notAString    = `{"error":{"statusCode":400,"name":"Error","message":"Value is not a string."}}`
)

// TestAPIReset covers 7.2–7.9 of loopback3-observed.md with our deliberate changes.
func TestAPIReset(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	mb := subscribe(env)
	env.signup("bob@example.com", "bob-pw-1-long")

	for _, c := range []struct {
		name, body, ct string
		status         int
		want           string
	}{
		{"no email", `{}`, "", 400, emailRequired},
		{"no body", "", "", 400, emailRequired},
		{"email is a number", `{"email":123}`, "", 400, emailRequired},
		{"email is null", `{"email":null}`, "", 400, emailRequired},
		{"email is an object", `{"email":{"$ne":""}}`, "", 400, emailRequired},
		{"email is empty", `{"email":""}`, "", 400, emailRequired},
		{"form without email", `realm=x`, "application/x-www-form-urlencoded", 400, emailRequired},
		{"malformed JSON", `{"email":`, "", 400, ""},
		{"too-long password field (7.9)", `{"email":"bob@example.com","password":"` + strings.Repeat("a", 80) + `"}`, "", 422,
			lbErr(422, "Error", "The password entered was too long. Max length is 72 (entered 80)", "PASSWORD_TOO_LONG")},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := []string{}
			if c.ct != "" {
				h = append(h, "Content-Type: "+c.ct)
			}
			r := env.do("POST", "/api/users/reset", c.body, h...)
			if c.want == "" {
				if r.status != c.status || r.errorOf(t)["name"] != "SyntaxError" {
					t.Fatalf("got %d %s", r.status, r.body)
				}
				return
			}
			wantEnvelope(t, r, c.status, c.want)
		})
	}
	if n, _, _ := mb.counts(); n != 0 {
		t.Fatalf("%d reset events after bad requests, want 0", n)
	}

	t.Run("known, unknown, other case and form all 204", func(t *testing.T) {
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		want204(t, env.do("POST", "/api/users/reset", `{"email":"nobody@example.com"}`))
		want204(t, env.do("POST", "/api/users/Reset", `{"email":"BOB@example.com"}`))
		want204(t, env.doForm("/api/users/reset", "email=bob%40example.com"))
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com","password":""}`))
		if n, _, _ := mb.counts(); n != 4 {
			t.Fatalf("%d reset events, want 4 (unknown email makes none)", n)
		}
	})

	t.Run("CompatEmailNotFound", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t, func(c *models.Config, _ *handlers.Options) { c.CompatEmailNotFound = true })
		env.signup("bob@example.com", "bob-pw-1-long")
		wantEnvelope(t, env.do("POST", "/api/users/reset", `{"email":"nobody@example.com"}`), 404,
			lbErr(404, "Error", "Email not found", "EMAIL_NOT_FOUND"))
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
	})
}

// TestAPIResetPassword covers 7.10–7.20 with the reset token scoped, single use.
func TestAPIResetPassword(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	mb := subscribe(env)
	id := env.signup("bob@example.com", "bob-pw-1-long")
	session := env.login("bob@example.com", "bob-pw-1-long")
	want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
	rt := mb.lastReset(t)
	userPath := fmt.Sprintf("/api/users/%d", id)

	t.Run("reset token is not a session (7.10)", func(t *testing.T) {
		wantEnvelope(t, env.do("GET", userPath, "", "Authorization: "+rt), 401, authRequired)
		wantEnvelope(t, env.do("POST", "/api/users/change-password", `{"oldPassword":"bob-pw-1-long","newPassword":"x-new-password"}`,
			"Authorization: "+rt), 401, authRequired)
	})
	for _, c := range []struct {
		name, path, body string
		headers          []string
		status           int
		want             string
	}{
		{"no token (7.11)", "/api/users/reset-password", `{"newPassword":"bob-pw-4-long"}`, nil, 401, authRequired},
		{"bogus token (7.12)", "/api/users/reset-password", `{"newPassword":"bob-pw-4-long"}`, []string{"Authorization: bogus"}, 401, authRequired},
		{"session token (7.20)", "/api/users/reset-password", `{"newPassword":"bob-pw-4-long"}`, []string{"Authorization: " + session}, 401, authRequired},
		{"bogus query token wins over a good header", "/api/users/reset-password?access_token=bogus", `{"newPassword":"bob-pw-4-long"}`,
			[]string{"Authorization: " + rt}, 401, authRequired},
		{"missing newPassword (7.13)", "/api/users/reset-password", `{}`, []string{"Authorization: " + rt}, 400, newPwRequired},
		{"no body", "/api/users/reset-password", ``, []string{"Authorization: " + rt}, 400, newPwRequired},
		{"empty newPassword", "/api/users/reset-password", `{"newPassword":""}`, []string{"Authorization: " + rt}, 400, newPwRequired},
		{"numeric newPassword", "/api/users/reset-password", `{"newPassword":12345678}`, []string{"Authorization: " + rt}, 400, notAString},
		{"73-byte newPassword (7.14)", "/api/users/reset-password", `{"newPassword":"` + strings.Repeat("a", 73) + `"}`,
			[]string{"Authorization: " + rt}, 422, lbErr(422, "Error", "The password entered was too long. Max length is 72 (entered 73)", "PASSWORD_TOO_LONG")},
		{"too short", "/api/users/reset-password", `{"newPassword":"short"}`, []string{"X-Access-Token: " + rt}, 422,
			lbErr(422, "Error", "The password entered was too short. Min length is 8 (entered 5)", "PASSWORD_TOO_SHORT")},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantEnvelope(t, env.do("POST", c.path, c.body, c.headers...), c.status, c.want)
		})
	}
	if _, _, n := mb.counts(); n != 0 {
		t.Fatalf("%d password-changed events after refused resets", n)
	}
	// The failed attempts did not use up the token.
	t.Run("ok, token in the query as in the mail (7.15)", func(t *testing.T) {
		want204(t, env.do("POST", "/api/users/reset-password?access_token="+rt, `{"newPassword":"bob-pw-4-long"}`))
		if _, _, n := mb.counts(); n != 1 {
			t.Fatalf("%d password-changed events, want 1", n)
		}
	})
	t.Run("every session ends (7.16)", func(t *testing.T) {
		wantEnvelope(t, env.do("GET", userPath, "", "Authorization: "+session), 401, authRequired)
	})
	t.Run("single use (7.18)", func(t *testing.T) {
		wantEnvelope(t, env.do("POST", "/api/users/reset-password", `{"newPassword":"bob-pw-5-long"}`, "Authorization: "+rt), 401, authRequired)
	})
	t.Run("login with the new password only", func(t *testing.T) {
		wantEnvelope(t, env.do("POST", "/api/users/login", `{"email":"bob@example.com","password":"bob-pw-1-long"}`), 401, loginFailed)
		env.login("bob@example.com", "bob-pw-4-long")
	})
	t.Run("form body and the other transports", func(t *testing.T) {
		for i, hdr := range []func(string) string{
			func(tok string) string { return "X-Access-Token: " + tok },
			func(tok string) string { return "Authorization: Bearer " + tok },
			func(tok string) string { return "Authorization: Bearer " + base64Std(tok) },
		} {
			want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
			pw := fmt.Sprintf("bob-pw-form-%d", i)
			want204(t, env.doForm("/api/users/reset-password", "newPassword="+url.QueryEscape(pw), hdr(mb.lastReset(t))))
			env.login("bob@example.com", pw)
		}
	})
	t.Run("a newer request invalidates the older token", func(t *testing.T) {
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		old := mb.lastReset(t)
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		wantEnvelope(t, env.do("POST", "/api/users/reset-password", `{"newPassword":"bob-pw-6-long"}`, "Authorization: "+old), 401, authRequired)
		want204(t, env.do("POST", "/api/users/reset-password", `{"newPassword":"bob-pw-6-long"}`, "Authorization: "+mb.lastReset(t)))
	})
	t.Run("expired after the reset TTL", func(t *testing.T) {
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		tok := mb.lastReset(t)
		env.clock.Advance(15 * time.Minute)
		wantEnvelope(t, env.do("POST", "/api/users/reset-password", `{"newPassword":"bob-pw-7-long"}`, "Authorization: "+tok), 401, authRequired)
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		tok = mb.lastReset(t)
		env.clock.Advance(15*time.Minute - time.Second)
		want204(t, env.do("POST", "/api/users/reset-password", `{"newPassword":"bob-pw-7-long"}`, "Authorization: "+tok))
	})
}

// TestAPIVerifyConfirm covers section 8 with verify owner-only and confirm's
// redirect restricted.
func TestAPIVerifyConfirm(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	mb := subscribe(env)
	bob := env.signup("bob@example.com", "bob-pw-1-long")
	alice := env.signup("alice@example.com", "ecila-pw-1-long")
	bobTok := env.login("bob@example.com", "bob-pw-1-long")
	aliceTok := env.login("alice@example.com", "ecila-pw-1-long")
	verifyPath := fmt.Sprintf("/api/users/%d/verify", bob)

	t.Run("verify needs the owner", func(t *testing.T) {
		wantEnvelope(t, env.do("POST", verifyPath, ""), 401, authRequired)
		wantEnvelope(t, env.do("POST", verifyPath, "", "Authorization: "+aliceTok), 401, authRequired)
		wantEnvelope(t, env.do("POST", "/api/users/999/verify", "", "Authorization: "+bobTok), 401, authRequired)
		wantEnvelope(t, env.do("POST", "/api/users/abc/verify", "", "Authorization: "+bobTok), 401, authRequired)
		want204(t, env.do("POST", "/api/users/reset", `{"email":"bob@example.com"}`))
		wantEnvelope(t, env.do("POST", verifyPath, "", "Authorization: "+mb.lastReset(t)), 401, authRequired)
		if _, n, _ := mb.counts(); n != 0 {
			t.Fatalf("%d verify events after refused requests", n)
		}
		r := env.offSpec().do("GET", verifyPath, "", "Authorization: "+bobTok)
		wantEnvelope(t, r, 404, lbErr(404, "Error", fmt.Sprintf(`Shared class "User" has no method handling GET /%d/verify`, bob), ""))
	})

	want204(t, env.do("POST", verifyPath, "", "Authorization: "+bobTok))
	first := mb.lastVerify(t)
	if first.User.ID != bob || len(first.Token) != 128 {
		t.Fatalf("verify event = %+v", first)
	}
	want204(t, env.do("POST", verifyPath, "", "Authorization: "+bobTok))
	vt := mb.lastVerify(t).Token
	uid := fmt.Sprint(bob)

	for _, c := range []struct {
		name, query string
		status      int
		want        string
	}{
		{"without uid (8.9)", "token=nope", 400, `{"error":{"statusCode":400,"name":"Error","message":"uid is a required argument"}}`},
		{"without anything", "", 400, `{"error":{"statusCode":400,"name":"Error","message":"uid is a required argument"}}`},
		{"without token (8.8)", "uid=" + uid, 400, `{"error":{"statusCode":400,"name":"Error","message":"token is a required argument"}}`},
		{"unknown uid (8.7)", "uid=999&token=nope", 404, lbErr(404, "Error", "User not found: 999", "USER_NOT_FOUND")},
		{"wrong token (8.6)", "uid=" + uid + "&token=nope", 400, lbErr(400, "Error", "Invalid token: nope", "INVALID_TOKEN")},
		{"superseded token (8.5)", "uid=" + uid + "&token=" + first.Token, 400, lbErr(400, "Error", "Invalid token: "+first.Token, "INVALID_TOKEN")},
		{"another user's uid", fmt.Sprintf("uid=%d&token=%s", alice, vt), 400, lbErr(400, "Error", "Invalid token: "+vt, "INVALID_TOKEN")},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantEnvelope(t, env.do("GET", "/api/users/confirm?"+c.query, ""), c.status, c.want)
		})
	}
	for _, bad := range []string{"https://evil.example/phish", "//evil.example/x", "/\\evil.example", "/\t/evil.example",
		"http://localhost:3000.evil.example/", "http://localhost:3000@evil.example/", "javascript:alert(1)", "verified", "HTTP://localhost:3000/"} {
		t.Run("redirect "+bad, func(t *testing.T) {
			r := env.do("GET", "/api/users/confirm?uid="+uid+"&token="+vt+"&redirect="+url.QueryEscape(bad), "")
			if r.status != 400 || r.errorOf(t)["code"] != "INVALID_REDIRECT" || r.header.Get("Location") != "" {
				t.Fatalf("got %d %s Location=%q", r.status, r.body, r.header.Get("Location"))
			}
		})
	}
	t.Run("ok, redirect to a path (8.10)", func(t *testing.T) {
		r := env.do("GET", "/api/users/confirm?uid="+uid+"&redirect=%2Fverified&token="+vt, "")
		if r.status != 302 || r.header.Get("Location") != "/verified" {
			t.Fatalf("got %d Location=%q %s", r.status, r.header.Get("Location"), r.body)
		}
		got := env.do("GET", fmt.Sprintf("/api/users/%d", bob), "", "Authorization: "+bobTok)
		if got.json(t)["emailVerified"] != true {
			t.Fatalf("after confirm: %s", got.body)
		}
	})
	t.Run("consumed (8.11)", func(t *testing.T) {
		wantEnvelope(t, env.do("GET", "/api/users/confirm?uid="+uid+"&token="+vt, ""), 400, lbErr(400, "Error", "Invalid token: "+vt, "INVALID_TOKEN"))
	})
	t.Run("ok without redirect (8.15), under the base URL", func(t *testing.T) {
		want204(t, env.do("POST", verifyPath, "", "Authorization: "+bobTok))
		want204(t, env.do("GET", "/api/users/confirm?uid="+uid+"&token="+mb.lastVerify(t).Token, ""))
		want204(t, env.do("POST", verifyPath, "", "Authorization: "+bobTok))
		r := env.do("GET", "/api/users/confirm?uid="+uid+"&token="+mb.lastVerify(t).Token+"&redirect="+url.QueryEscape("http://localhost:3000/verified?x=1"), "")
		if r.status != 302 || r.header.Get("Location") != "http://localhost:3000/verified?x=1" {
			t.Fatalf("got %d Location=%q", r.status, r.header.Get("Location"))
		}
	})
	t.Run("expired", func(t *testing.T) {
		want204(t, env.do("POST", verifyPath, "", "Authorization: "+bobTok))
		tok := mb.lastVerify(t).Token
		env.clock.Advance(24*time.Hour + time.Second)
		wantEnvelope(t, env.do("GET", "/api/users/confirm?uid="+uid+"&token="+tok, ""), 400, lbErr(400, "Error", "Invalid token: "+tok, "INVALID_TOKEN"))
	})
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
