package handlers_test

// Tests of the account page (issue 12): every form with success, a wrong
// current password (401), a missing one (422), a stale session without a
// password (403 with "Confirm with …") and no CSRF token (403).

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
)

// accountEvents records the account page's events, as boot's mail
// subscribers would see them.
type accountEvents struct {
	mu       sync.Mutex
	changes  []models.EmailChangeRequested
	changed  []models.EmailChanged
	password []models.PasswordChanged
	deleted  []models.AccountDeleted
	resets   []models.ResetPasswordRequest
	verifies []models.VerifyEmailRequest
}

func recordAccount(env *testEnv) *accountEvents {
	r := &accountEvents{}
	env.users.OnEmailChangeRequested(func(_ context.Context, _ *models.Tx, ev models.EmailChangeRequested) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changes = append(r.changes, ev)
		return nil
	})
	env.users.OnEmailChanged(func(_ context.Context, _ *models.Tx, ev models.EmailChanged) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changed = append(r.changed, ev)
		return nil
	})
	env.users.OnPasswordChanged(func(_ context.Context, _ *models.Tx, ev models.PasswordChanged) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.password = append(r.password, ev)
		return nil
	})
	env.users.OnAccountDeleted(func(_ context.Context, _ *models.Tx, ev models.AccountDeleted) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.deleted = append(r.deleted, ev)
		return nil
	})
	env.users.OnResetPasswordRequest(func(_ context.Context, _ *models.Tx, ev models.ResetPasswordRequest) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.resets = append(r.resets, ev)
		return nil
	})
	env.users.OnVerifyEmailRequest(func(_ context.Context, _ *models.Tx, ev models.VerifyEmailRequest) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.verifies = append(r.verifies, ev)
		return nil
	})
	return r
}

// loginInBrowser logs an existing user in through the login form.
func loginInBrowser(t *testing.T, env *testEnv, email, password string) *browser {
	t.Helper()
	b := newBrowser(t, env, "http://localhost:3000")
	b.submit(b.get("/login"), `form[action="/login"]`, url.Values{"email": {email}, "password": {password}}).redirects("/")
	return b
}

// noCSRF posts a form's fields without its token: 403, nothing done.
func noCSRF(t *testing.T, b *browser, path string, form url.Values) {
	t.Helper()
	r := b.post(path, form)
	if r.status != http.StatusForbidden {
		t.Fatalf("POST %s without a CSRF token: %d\n%s", path, r.status, r.body)
	}
}

func TestAccountPage(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	b := newBrowser(t, env, "http://localhost:3000")
	b.get("/account").redirects("/login")

	env.signup("ann@example.com", "ann-secret-pw-1", "username", "annie")
	b = loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	home := b.get("/")
	if home.testid("link-account").AttrOr("href", "") != "/account" || home.testid("nav-account").AttrOr("href", "") != "/account" {
		t.Fatalf("home does not show the way to /account:\n%s", home.body)
	}
	if home.testid("sign-in-methods").Length() != 0 {
		t.Error("Sign-in methods is still on the home page")
	}
	a := b.get("/account")
	a.is(http.StatusOK, "page-account")
	checkPageHeaders(t, a)
	if a.text("account-email") != "ann@example.com" || a.text("account-username") != "annie" || a.testid("email-unverified").Length() != 1 {
		t.Errorf("profile:\n%s", a.body)
	}
	for _, id := range []string{"verify-form", "password-form", "email-form", "link-sessions", "sign-in-methods", "delete-form"} {
		if a.testid(id).Length() != 1 {
			t.Errorf("the account page lacks %s", id)
		}
	}
	// Every password field has the autocomplete P8 asks for.
	for _, name := range []string{"currentPassword", "emailPassword", "deletePassword"} {
		in := a.find(`input[name="` + name + `"]`)
		if in.AttrOr("type", "") != "password" || in.AttrOr("autocomplete", "") != "current-password" {
			t.Errorf("%s: type %q autocomplete %q", name, in.AttrOr("type", ""), in.AttrOr("autocomplete", ""))
		}
	}
	if in := a.find(`input[name="newPassword"]`); in.AttrOr("autocomplete", "") != "new-password" {
		t.Errorf("newPassword autocomplete %q", in.AttrOr("autocomplete", ""))
	}
}

// TestAccountResendConfirmation: the button mails a new link; once
// verified it says so; without the CSRF token nothing is sent.
func TestAccountResendConfirmation(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ev := recordAccount(env)
	id := env.signup("ann@example.com", "ann-secret-pw-1")
	b := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	a := b.get("/account")
	noCSRF(t, b, "/account/verify", url.Values{})
	if len(ev.verifies) != 0 {
		t.Fatal("a post without a token sent mail")
	}
	b.submit(a, `form[action="/account/verify"]`, nil).redirects("/account")
	if len(ev.verifies) != 1 || ev.verifies[0].User.ID != id || ev.verifies[0].Redirect != "/verified" {
		t.Fatalf("verify events %+v", ev.verifies)
	}
	if p := b.get("/account"); !strings.Contains(p.text("flash"), "confirmation link") {
		t.Errorf("flash: %q", p.text("flash"))
	}
	if _, err := env.users.ConfirmEmail(context.Background(), strconv.FormatInt(id, 10), ev.verifies[0].Token, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	a = b.get("/account")
	if a.testid("email-verified").Length() != 1 || a.testid("verify-form").Length() != 0 {
		t.Errorf("a verified address still offers a resend:\n%s", a.body)
	}
}

// TestS9AccountPasswordChange: changing the password asks for the current
// one (422 without it, 401 when wrong), ends the other sessions and tells
// the user (the PasswordChanged event boot mails: L8).
func TestS9AccountPasswordChange(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ev := recordAccount(env)
	env.signup("ann@example.com", "ann-secret-pw-1")
	b := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	other := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	a := b.get("/account")
	form := `form[action="/account/password"]`

	r := b.submit(a, form, url.Values{"newPassword": {"ann-new-secret-2"}})
	r.is(http.StatusUnprocessableEntity, "page-account")
	r.fieldError("currentPassword", "Enter your current password.")
	r = b.submit(a, form, url.Values{"currentPassword": {"wrong-password-9"}, "newPassword": {"ann-new-secret-2"}})
	r.is(http.StatusUnauthorized, "page-account")
	r.fieldError("currentPassword", "")
	r = b.submit(a, form, url.Values{"currentPassword": {"ann-secret-pw-1"}, "newPassword": {"short"}})
	r.is(http.StatusUnprocessableEntity, "page-account")
	r.fieldError("newPassword", "")
	noCSRF(t, b, "/account/password", url.Values{"currentPassword": {"ann-secret-pw-1"}, "newPassword": {"ann-new-secret-2"}})
	if len(ev.password) != 0 {
		t.Fatal("a refused change changed the password")
	}

	b.submit(a, form, url.Values{"currentPassword": {"ann-secret-pw-1"}, "newPassword": {"ann-new-secret-2"}}).redirects("/account")
	if p := b.get("/account"); !strings.Contains(p.text("flash"), "password is changed") {
		t.Errorf("flash %q", p.text("flash"))
	}
	if signedInAs(t, other) != "" {
		t.Error("the other session survived the change")
	}
	if signedInAs(t, b) != "ann@example.com" {
		t.Error("the session that changed it ended")
	}
	if len(ev.password) != 1 || ev.password[0].Reason != "change" {
		t.Fatalf("notice events %+v", ev.password)
	}
	env.login("ann@example.com", "ann-new-secret-2")
}

// TestS9R10AccountEmailChange: the address change asks for the current
// password, waits for the link sent to the new address (the old one still
// logs in meanwhile), the old address is told with a cancel link (the
// event boot mails: L8), the link works once, and the other sessions end.
func TestS9R10AccountEmailChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	ev := recordAccount(env)
	id := env.signup("ann@example.com", "ann-secret-pw-1")
	env.signup("bob@example.com", "bob-secret-pw-1")
	b := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	other := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	a := b.get("/account")
	form := `form[action="/account/email"]`

	// S9: no password → 422; a wrong one → 401; a bad or taken address → 422.
	r := b.submit(a, form, url.Values{"newEmail": {"ann.new@example.com"}})
	r.is(http.StatusUnprocessableEntity, "page-account")
	r.fieldError("emailPassword", "Enter your current password.")
	if r.find(`input[name="newEmail"]`).AttrOr("value", "") != "ann.new@example.com" {
		t.Error("the typed address was not kept")
	}
	b.submit(a, form, url.Values{"newEmail": {"ann.new@example.com"}, "emailPassword": {"wrong-password-9"}}).
		is(http.StatusUnauthorized, "page-account")
	b.submit(a, form, url.Values{"newEmail": {"not-an-address"}, "emailPassword": {"ann-secret-pw-1"}}).fieldError("newEmail", "")
	r = b.submit(a, form, url.Values{"newEmail": {"Bob@example.com"}, "emailPassword": {"ann-secret-pw-1"}})
	r.is(http.StatusUnprocessableEntity, "page-account")
	r.fieldError("newEmail", "Email already exists")
	noCSRF(t, b, "/account/email", url.Values{"newEmail": {"ann.new@example.com"}, "emailPassword": {"ann-secret-pw-1"}})
	if len(ev.changes) != 0 {
		t.Fatal("a refused request was sent")
	}

	b.submit(a, form, url.Values{"newEmail": {"ann.new@example.com"}, "emailPassword": {"ann-secret-pw-1"}}).redirects("/account")
	if len(ev.changes) != 1 || ev.changes[0].NewEmail != "ann.new@example.com" || ev.changes[0].User.Email != "ann@example.com" ||
		ev.changes[0].CancelToken == "" {
		t.Fatalf("events %+v", ev.changes)
	}
	a = b.get("/account")
	if !strings.Contains(a.text("email-pending"), "ann.new@example.com") || a.text("account-email") != "ann@example.com" {
		t.Fatalf("pending change:\n%s", a.body)
	}
	// R10: the login address stays the old one until the link is used.
	env.login("ann@example.com", "ann-secret-pw-1")
	if r := env.do("POST", "/api/users/login", `{"email":"ann.new@example.com","password":"ann-secret-pw-1"}`); r.status != 401 {
		t.Fatalf("the new address logs in before confirmation: %d", r.status)
	}

	// Opening the link changes nothing, however often (mail scanners).
	link := "/account/email/confirm?token=" + ev.changes[0].ConfirmToken
	var page *htmlPage
	for range 3 {
		page = b.get(link)
		page.is(http.StatusOK, "page-email-change")
	}
	if page.header.Get("Referrer-Policy") != "no-referrer" || page.header.Get("Cache-Control") != "no-store" {
		t.Errorf("link page headers: %v", page.header)
	}
	if u, _ := env.users.FindUserByID(ctx, id); u.Email != "ann@example.com" {
		t.Fatal("opening the link changed the address")
	}
	noCSRF(t, b, "/account/email/confirm", url.Values{"token": {ev.changes[0].ConfirmToken}})
	b.submit(page, `form[action="/account/email/confirm"]`, nil).redirects("/account")
	if u, _ := env.users.FindUserByID(ctx, id); u.Email != "ann.new@example.com" || u.EmailVerified == nil || !*u.EmailVerified {
		t.Fatalf("after confirming: %+v", u)
	}
	if signedInAs(t, other) != "" {
		t.Error("the other session survived the change")
	}
	if signedInAs(t, b) != "ann.new@example.com" {
		t.Error("the confirming session ended")
	}
	if len(ev.changed) != 1 || ev.changed[0].OldEmail != "ann@example.com" {
		t.Fatalf("EmailChanged %+v", ev.changed)
	}
	b.submit(page, `form[action="/account/email/confirm"]`, nil).is(http.StatusBadRequest, "page-response") // once
	b.get(link).is(http.StatusBadRequest, "page-response")

	// The cancel link from the notice: from any browser, no session needed.
	b.submit(b.get("/account"), form, url.Values{"newEmail": {"ann.third@example.com"}, "emailPassword": {"ann-secret-pw-1"}}).redirects("/account")
	last := ev.changes[len(ev.changes)-1]
	stranger := newBrowser(t, env, "http://localhost:3000")
	cancel := stranger.get("/account/email/cancel?token=" + last.CancelToken)
	cancel.is(http.StatusOK, "page-email-change")
	if stranger.get("/account/email/cancel?token="+last.ConfirmToken).status != http.StatusBadRequest {
		t.Error("a confirm token opened the cancel page")
	}
	stranger.submit(cancel, `form[action="/account/email/cancel"]`, nil).is(http.StatusOK, "page-response")
	stranger.get("/account/email/confirm?token="+last.ConfirmToken).is(http.StatusBadRequest, "page-response")
	if b.get("/account").testid("email-pending").Length() != 0 {
		t.Error("a cancelled change is still pending")
	}

	// Withdrawn from the account page.
	env.clock.Advance(time.Minute)
	b.submit(b.get("/account"), form, url.Values{"newEmail": {"ann.fourth@example.com"}, "emailPassword": {"ann-secret-pw-1"}}).redirects("/account")
	b.submit(b.get("/account"), `form[action="/account/email/withdraw"]`, nil).redirects("/account")
	last = ev.changes[len(ev.changes)-1]
	b.get("/account/email/confirm?token="+last.ConfirmToken).is(http.StatusBadRequest, "page-response")
}

// TestAccountEmailChangeAPIUnchanged: PATCH {email} over the LoopBack API
// still changes the address at once (documented in the README).
func TestAccountEmailChangeAPIUnchanged(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ev := recordAccount(env)
	id := env.signup("ann@example.com", "ann-secret-pw-1")
	tok := env.login("ann@example.com", "ann-secret-pw-1")
	r := env.do("PATCH", "/api/users/"+strconv.FormatInt(id, 10), `{"email":"ann.api@example.com"}`, "Authorization: "+tok)
	if r.status != 200 || r.json(t)["email"] != "ann.api@example.com" {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if len(ev.changes) != 0 || len(ev.changed) != 1 {
		t.Fatalf("PATCH went through the pending change: %d requests, %d notices", len(ev.changes), len(ev.changed))
	}
	env.login("ann.api@example.com", "ann-secret-pw-1")
}

// TestAccountDelete: deleting asks for the current password, ends every
// session, says goodbye (AccountDeleted, mailed by boot) and lands on /.
func TestAccountDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	ev := recordAccount(env)
	id := env.signup("ann@example.com", "ann-secret-pw-1")
	b := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	other := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	a := b.get("/account")
	form := `form[action="/account/delete"]`
	r := b.submit(a, form, nil)
	r.is(http.StatusUnprocessableEntity, "page-account")
	r.fieldError("deletePassword", "Enter your current password.")
	r = b.submit(a, form, url.Values{"deletePassword": {"wrong-password-9"}})
	r.is(http.StatusUnauthorized, "page-account")
	r.fieldError("deletePassword", "")
	noCSRF(t, b, "/account/delete", url.Values{"deletePassword": {"ann-secret-pw-1"}})
	if _, err := env.users.FindUserByID(ctx, id); err != nil {
		t.Fatalf("a refused delete deleted: %v", err)
	}

	r = b.submit(a, form, url.Values{"deletePassword": {"ann-secret-pw-1"}})
	r.redirects("/")
	if ck := r.setCookie("latchkey_session"); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the session cookie was not dropped: %+v", ck)
	}
	home := b.get("/")
	home.is(http.StatusOK, "page-login")
	if !strings.Contains(home.text("flash"), "deleted") {
		t.Errorf("flash %q", home.text("flash"))
	}
	if signedInAs(t, other) != "" {
		t.Error("another session survived the deletion")
	}
	if _, err := env.users.FindUserByID(ctx, id); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the user is still there: %v", err)
	}
	if len(ev.deleted) != 1 || ev.deleted[0].User.Email != "ann@example.com" {
		t.Fatalf("goodbye events %+v", ev.deleted)
	}
}

// TestS9AccountWithoutPassword: an account made through a provider has
// no password to ask for: a recent sign-in stands in for it; a stale one
// gets a readable 403 with "Confirm with …" (back to /account), and after
// confirming it works. "Set a password" mails the reset link to the
// account's address (not to a placeholder one).
func TestS9AccountWithoutPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	ev := recordAccount(env)
	b := newBrowser(t, env, "http://localhost:3000")
	acct := oauth.Account{Subject: "gil", Email: "gil@example.com", EmailVerified: true}
	signInWith(t, b, dex, acct, nil).redirects("/")
	a := b.get("/account")
	if a.testid("password-form").Length() != 0 || a.testid("set-password-form").Length() != 1 ||
		a.find(`input[name="emailPassword"]`).Length() != 0 || a.testid("account-reauth").Length() != 0 {
		t.Fatalf("an account without a password, recently signed in:\n%s", a.body)
	}

	// Set a password: the reset link to the address.
	noCSRF(t, b, "/account/password/set", url.Values{})
	b.submit(a, `form[action="/account/password/set"]`, nil).redirects("/account")
	if len(ev.resets) != 1 || ev.resets[0].Email != "gil@example.com" {
		t.Fatalf("reset events %+v", ev.resets)
	}

	// Stale: 403 with the buttons, for the email change and the deletion.
	env.clock.Advance(11 * time.Minute)
	a = b.get("/account")
	if a.testid("account-reauth-dex").Length() != 2 {
		t.Fatalf("a stale session offers no Confirm with Dex:\n%s", a.body)
	}
	r := b.submit(a, `form[action="/account/email"]`, url.Values{"newEmail": {"gil.new@example.com"}})
	r.is(http.StatusForbidden, "page-account")
	if !strings.Contains(r.find(`[data-testid="account-email-change"] [data-testid="form-error"]`).Text(), "recent sign-in") {
		t.Errorf("no readable reason:\n%s", r.body)
	}
	b.submit(a, `form[action="/account/delete"]`, nil).is(http.StatusForbidden, "page-account")
	if len(ev.changes) != 0 || len(ev.deleted) != 0 {
		t.Fatal("a stale session changed the account")
	}

	// Confirm with Dex, come back to /account, and the change goes through.
	r = b.submit(a, `[data-testid="account-email-change"] form[action="/auth/dex"]`, nil)
	dex.account = acct
	b.get(dex.approve(t, r.header.Get("Location"))).redirects("/account")
	b.submit(b.get("/account"), `form[action="/account/email"]`, url.Values{"newEmail": {"gil.new@example.com"}}).redirects("/account")
	if len(ev.changes) != 1 || ev.changes[0].NewEmail != "gil.new@example.com" {
		t.Fatalf("events %+v", ev.changes)
	}
	b.submit(b.get("/account"), `form[action="/account/delete"]`, nil).redirects("/")
	if _, err := env.users.FindUserByEmail(ctx, "gil@example.com"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("not deleted: %v", err)
	}
}

// TestAccountPlaceholderAddress: an address made up by another system
// cannot be mailed: "Set a password" and "Resend confirmation" say so
// (422) instead of pretending.
func TestAccountPlaceholderAddress(t *testing.T) {
	t.Parallel()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	ev := recordAccount(env)
	b := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, b, dex, oauth.Account{Subject: "xavier", Login: "xavier"}, nil).redirects("/")
	a := b.get("/account")
	if a.testid("email-placeholder").Length() != 1 || a.testid("set-password-form").Length() != 0 || a.testid("verify-form").Length() != 0 {
		t.Fatalf("a placeholder address:\n%s", a.body)
	}
	for _, path := range []string{"/account/password/set", "/account/verify"} {
		r := b.post(path, url.Values{"_csrf": {a.csrf()}})
		r.is(http.StatusUnprocessableEntity, "page-account")
		if !strings.Contains(r.text("form-error"), "No mail reaches") {
			t.Errorf("%s: %q", path, r.text("form-error"))
		}
	}
	if len(ev.resets) != 0 || len(ev.verifies) != 0 {
		t.Fatal("mail was asked for a placeholder address")
	}
	// Changing it to a real address is the way out: the link goes to the new one only.
	b.submit(a, `form[action="/account/email"]`, url.Values{"newEmail": {"xavier@example.com"}}).redirects("/account")
	if len(ev.changes) != 1 || ev.changes[0].CancelToken != "" {
		t.Fatalf("events %+v", ev.changes)
	}
}
