package handlers_test

// Tests of the admin pages (issue 13, SECURITY A1): 403 for everyone but
// an admin on every route, the user list's search and pages, each action's
// effect with its audit row naming the admin, the re-authentication every
// action asks for, and the dead mail with its retry.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
)

const adminPW = "admin-secret-pw-1"

// newAdmin creates an admin account with a password and signs it in.
func newAdmin(t *testing.T, env *testEnv, email string) (int64, *browser) {
	t.Helper()
	u, err := env.users.CreateAccount(context.Background(), models.NewAccount{Email: email, Password: adminPW, Admin: true},
		models.ClientMeta{Actor: models.ActorCLI})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, loginInBrowser(t, env, email, adminPW)
}

// withOutbox gives the handlers an outbox over the test's database, with
// messages dead after one failure.
func withOutbox(env *testEnv) *models.Outbox {
	ob := models.NewOutbox(env.db, models.OutboxConfig{Now: env.clock.Now, MaxAttempts: 1})
	env.h.Outbox = ob
	return ob
}

// deadMail queues a message and lets it die of one failure (or of an
// expired link, when expired), as the worker would.
func deadMail(t *testing.T, env *testEnv, ob *models.Outbox, e models.Email, cause string, expired bool) int64 {
	t.Helper()
	ctx := context.Background()
	if err := env.db.Write(ctx, env.clock.Now(), func(tx *models.Tx) error { return tx.EnqueueEmail(ctx, e) }); err != nil {
		t.Fatal(err)
	}
	due, err := ob.Claim(ctx, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("claim: %v %v", due, err)
	}
	if expired {
		err = ob.MarkDead(ctx, due[0].ID, cause)
	} else {
		_, err = ob.MarkFailed(ctx, due[0].ID, errors.New(cause))
	}
	if err != nil {
		t.Fatal(err)
	}
	return due[0].ID
}

// lastAuditOf is a user's newest audit row.
func lastAuditOf(t *testing.T, env *testEnv, id int64) models.AuditEvent {
	t.Helper()
	rows, err := env.users.ListAudit(context.Background(), id, 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("audit of %d: %v %v", id, rows, err)
	}
	return rows[0]
}

// adminRoutes are every admin route, with what a POST sends.
func adminRoutes(target int64) [][2]string {
	u := "/admin/users/" + strconv.FormatInt(target, 10)
	return [][2]string{
		{"GET", "/admin"}, {"GET", "/admin?q=ann&page=2"}, {"GET", u}, {"GET", "/admin/outbox"}, {"GET", "/admin/nothing-here"},
		{"GET", u + "/disable"},
		{"POST", u + "/disable"}, {"POST", u + "/enable"}, {"POST", u + "/revoke-sessions"}, {"POST", u + "/reset-link"},
		{"POST", u + "/reset-factors"}, {"POST", u + "/grant-admin"}, {"POST", u + "/revoke-admin"}, {"POST", u + "/delete"},
		{"POST", "/admin/outbox/1/retry"}, {"POST", "/admin"}, {"POST", "/admin/nothing-here"}, {"PUT", u + "/delete"},
	}
}

// TestA1AdminForbidden: a signed-in non-admin gets 403 on every route
// under /admin, POSTs with a valid CSRF token and the right password
// included, and nothing changes; signed out, a GET goes to /login and a
// POST is 403. The nav shows Admin to admins only.
func TestA1AdminForbidden(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	ob := withOutbox(env)
	mail := deadMail(t, env, ob, models.Email{Kind: "password-changed", To: "ann@example.com", Subject: "S", HTML: "h", Text: "t"}, "550 no", false)
	ann := env.signup("ann@example.com", "ann-secret-pw-1")
	tok := env.login("ann@example.com", "ann-secret-pw-1")
	b := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	home := b.get("/account")
	if home.testid("nav-admin").Length() != 0 {
		t.Error("a non-admin's nav links /admin")
	}
	csrf := home.csrf()
	out := newBrowser(t, env, "http://localhost:3000")
	for _, r := range adminRoutes(ann) {
		var form url.Values
		if r[0] != "GET" {
			form = url.Values{"_csrf": {csrf}, "password": {"ann-secret-pw-1"}, "confirm": {"ann@example.com"}}
		}
		got := b.do(r[0], r[1], form)
		got.is(http.StatusForbidden, "page-response")
		if !strings.Contains(got.text("response-content"), "administrators") {
			t.Errorf("%s %s: not the admins-only page:\n%s", r[0], r[1], got.body)
		}
		checkPageHeaders(t, got)
		if r[0] == "GET" {
			out.get(r[1]).redirects("/login")
		} else if got := out.do(r[0], r[1], url.Values{"password": {"x"}}); got.status != http.StatusForbidden {
			t.Errorf("signed out %s %s: %d", r[0], r[1], got.status)
		}
	}
	u, err := env.users.FindUserByID(context.Background(), ann)
	if err != nil || u.Disabled || u.Admin {
		t.Fatalf("a non-admin changed their account: %+v %v", u, err)
	}
	if r := env.do("GET", "/api/users/"+strconv.FormatInt(ann, 10), "", "Authorization: "+tok); r.status != 200 {
		t.Fatalf("a non-admin's POST ended their sessions: %d", r.status)
	}
	if m, _ := ob.FindEmail(context.Background(), mail); m.DeadAt.IsZero() {
		t.Fatal("a non-admin retried mail")
	}

	// Made an admin, the same session sees the nav link and the pages at once.
	if _, err := env.users.SetAdmin(context.Background(), ann, true, models.ClientMeta{Actor: models.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	a := b.get("/account")
	if a.testid("nav-admin").AttrOr("href", "") != "/admin" {
		t.Fatalf("an admin's nav does not link /admin:\n%s", a.body)
	}
	b.get("/admin").is(http.StatusOK, "page-admin-users")
	b.get("/admin/nothing-here").is(http.StatusNotFound, "")
	b.get("/admin/users/999").is(http.StatusNotFound, "")
	b.get("/admin/users/x").is(http.StatusNotFound, "")
	b.get("/admin/users/1/disable").is(http.StatusMethodNotAllowed, "")
	if r := b.do("HEAD", "/admin", nil); r.status != http.StatusOK || r.body != "" {
		t.Errorf("HEAD /admin: %d %q", r.status, r.body)
	}
	// Revoked, at once again.
	if _, err := env.users.SetAdmin(context.Background(), ann, false, models.ClientMeta{Actor: models.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	b.get("/admin").is(http.StatusForbidden, "page-response")
}

// TestAdminUserList: the list pages by 50 with Previous/Next, counts
// the matches, and searches part of an email or username, or an id.
func TestAdminUserList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	admin, b := newAdmin(t, env, "root@example.com")
	for i := range 60 {
		if _, err := env.users.CreateAccount(ctx, models.NewAccount{Email: fmt.Sprintf("user%02d@example.org", i)}, models.ClientMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	per := env.signup("per_cent@example.com", "per-cent-secret-1", "username", "Percival")
	if _, err := env.users.DisableUser(ctx, admin+1, models.ClientMeta{}); err != nil {
		t.Fatal(err)
	}

	p := b.get("/admin")
	p.is(http.StatusOK, "page-admin-users")
	checkPageHeaders(t, p)
	rows := p.testid("admin-user")
	if rows.Length() != 50 || p.text("admin-count") != "1–50 of 62" {
		t.Fatalf("first page: %d rows, %q", rows.Length(), p.text("admin-count"))
	}
	if first := rows.First(); first.AttrOr("data-id", "") != strconv.FormatInt(admin, 10) || !strings.Contains(first.Text(), "admin") ||
		first.Find(`a`).AttrOr("href", "") != "/admin/users/"+strconv.FormatInt(admin, 10) {
		t.Errorf("first row: %s", first.Text())
	}
	if !strings.Contains(rows.Eq(1).Text(), "disabled") || !strings.Contains(rows.Eq(1).Text(), "no password") {
		t.Errorf("a disabled account without a password: %s", rows.Eq(1).Text())
	}
	if p.testid("admin-prev").Length() != 0 || p.testid("admin-next").AttrOr("href", "") != "/admin?page=2" {
		t.Fatalf("pager on page 1:\n%s", p.testid("admin-pager").Text())
	}
	p = b.get("/admin?page=2")
	if p.testid("admin-user").Length() != 12 || p.text("admin-count") != "51–62 of 62" || p.testid("admin-next").Length() != 0 ||
		p.testid("admin-prev").AttrOr("href", "") != "/admin" {
		t.Fatalf("page 2: %q\n%s", p.text("admin-count"), p.testid("admin-pager").Text())
	}
	if p := b.get("/admin?page=9"); p.testid("admin-user").Length() != 0 || p.testid("admin-prev").AttrOr("href", "") != "/admin?page=2" {
		t.Fatalf("past the end: %q", p.text("admin-count"))
	}
	b.get("/admin?page=-3").is(http.StatusOK, "page-admin-users")

	for _, c := range []struct {
		q    string
		want []string
	}{
		{"USER0", []string{"user00@example.org", "user01@example.org", "user02@example.org", "user03@example.org", "user04@example.org",
			"user05@example.org", "user06@example.org", "user07@example.org", "user08@example.org", "user09@example.org"}},
		{"perciv", []string{"per_cent@example.com"}},
		{"_", []string{"per_cent@example.com"}}, // a LIKE wildcard matches itself only
		{"%", nil},
		{strconv.FormatInt(per, 10), []string{"per_cent@example.com"}}, // 62: an id, in no address
		{"ROOT", []string{"root@example.com"}},
	} {
		p := b.get("/admin?q=" + url.QueryEscape(c.q))
		var got []string
		p.testid("admin-user-link").Each(func(_ int, s *goquery.Selection) { got = append(got, s.Text()) })
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("q=%q: %v, want %v", c.q, got, c.want)
		}
		if p.testid("admin-q").AttrOr("value", "") != c.q {
			t.Errorf("q=%q: the search box lost it", c.q)
		}
	}
	// Pages keep the query.
	if p := b.get("/admin?q=example.org"); p.text("admin-count") != "1–50 of 60" || p.testid("admin-next").AttrOr("href", "") != "/admin?page=2&q=example.org" {
		t.Errorf("search pages: %q %q", p.text("admin-count"), p.testid("admin-next").AttrOr("href", ""))
	}
}

// TestA1AdminActions: each action does what it says, writes the audit row
// on the target's account naming the admin, and lands back with a flash.
func TestA1AdminActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	ev := recordAccount(env)
	admin, b := newAdmin(t, env, "root@example.com")
	actor := models.AdminActor(admin)
	ann := env.signup("ann@example.com", "ann-secret-pw-1")
	annTok := env.login("ann@example.com", "ann-secret-pw-1")
	annB := loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	page := "/admin/users/" + strconv.FormatInt(ann, 10)
	p := b.get(page)
	p.is(http.StatusOK, "page-admin-user")
	checkPageHeaders(t, p)
	if p.text("admin-user-email") != "ann@example.com" || p.testid("admin-session").Length() != 2 || p.testid("admin-self").Length() != 0 {
		t.Fatalf("detail:\n%s", p.body)
	}
	if strings.Contains(p.body, annTok) {
		t.Fatal("the detail page shows a session's token")
	}

	act := func(name string, extra url.Values, wantKind, wantFlash string) {
		t.Helper()
		p := b.get(page)
		form := url.Values{"password": {adminPW}}
		for k, v := range extra {
			form[k] = v
		}
		r := b.submit(p, `[data-testid="action-`+name+`"]`, form)
		to := page
		if name == "delete" {
			to = "/admin"
		}
		r.redirects(to)
		if a := lastAuditOf(t, env, ann); name != "delete" && (a.Kind != wantKind || a.Actor != actor) {
			t.Errorf("%s: audit %+v, want %s by %s", name, a, wantKind, actor)
		}
		if f := b.get(to).text("flash"); !strings.Contains(f, wantFlash) {
			t.Errorf("%s: flash %q, want %q", name, f, wantFlash)
		}
	}

	act("revoke-sessions", nil, "session.revoked-all", "logged out")
	if r := env.do("GET", "/api/users/"+strconv.FormatInt(ann, 10), "", "Authorization: "+annTok); r.status != 401 {
		t.Fatalf("after revoke-sessions the API token works: %d", r.status)
	}
	annB.get("/account").redirects("/login")

	act("reset-link", nil, "reset.requested", "reset link")
	if len(ev.resets) != 1 || ev.resets[0].Email != "ann@example.com" {
		t.Fatalf("reset events %+v", ev.resets)
	}
	if a := lastAuditOf(t, env, ann); a.Actor != actor {
		t.Fatalf("reset link audit %+v", a)
	}

	annTok = env.login("ann@example.com", "ann-secret-pw-1")
	act("disable", nil, "user.disabled", "disabled")
	if r := env.do("GET", "/api/users/"+strconv.FormatInt(ann, 10), "", "Authorization: "+annTok); r.status != 401 {
		t.Fatalf("after disable the API token works: %d", r.status)
	}
	if r := env.do("POST", "/api/users/login", `{"email":"ann@example.com","password":"ann-secret-pw-1"}`); r.status != 401 {
		t.Fatalf("a disabled account logs in: %d", r.status)
	}
	if p := b.get(page); !strings.Contains(p.text("admin-user-status"), "disabled") || p.testid("action-enable").Length() != 1 ||
		p.testid("action-disable").Length() != 0 || p.testid("action-reset-link").Length() != 0 {
		t.Fatalf("disabled detail:\n%s", p.body)
	}
	act("enable", nil, "user.enabled", "enabled")
	env.login("ann@example.com", "ann-secret-pw-1")

	act("reset-factors", nil, "mfa.reset", "Two-step verification is reset")
	act("grant-admin", nil, "admin.granted", "is an admin now")
	annB = loginInBrowser(t, env, "ann@example.com", "ann-secret-pw-1")
	annB.get("/admin").is(http.StatusOK, "page-admin-users")
	act("revoke-admin", nil, "admin.revoked", "no longer an admin")
	annB.get("/admin").is(http.StatusForbidden, "page-response")

	// The audit table shows the actor: the admin, by address, linked.
	p = b.get(page)
	actorCell := p.testid("audit-actor").First()
	if strings.TrimSpace(actorCell.Text()) != "root@example.com" || actorCell.Find("a").AttrOr("href", "") != "/admin/users/"+strconv.FormatInt(admin, 10) {
		t.Errorf("actor column: %q", actorCell.Text())
	}
	if strings.TrimSpace(p.testid("audit-kind").First().Text()) != "admin.revoked" {
		t.Errorf("newest audit row: %q", p.testid("audit-kind").First().Text())
	}

	// Delete: the confirmation must name the account.
	r := b.submit(b.get(page), `[data-testid="action-delete"]`, url.Values{"password": {adminPW}, "confirm": {"bob@example.com"}})
	r.is(http.StatusUnprocessableEntity, "page-response")
	if _, err := env.users.FindUserByID(ctx, ann); err != nil {
		t.Fatalf("deleted without the confirmation: %v", err)
	}
	act("delete", url.Values{"confirm": {" ANN@example.com "}}, "", "deleted")
	if _, err := env.users.FindUserByID(ctx, ann); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("not deleted: %v", err)
	}
	if len(ev.deleted) != 1 || ev.deleted[0].User.Email != "ann@example.com" {
		t.Fatalf("goodbye events %+v", ev.deleted)
	}
	b.get(page).is(http.StatusNotFound, "")
	b.post(page+"/disable", url.Values{"_csrf": {b.get("/admin").csrf()}, "password": {adminPW}}).is(http.StatusNotFound, "page-response")
}

// TestS9AdminReauth: every action asks for the admin's own password: none
// typed → 422, a wrong one → 401 (audited on the admin's account as
// reauth.failed), no CSRF token → 403; nothing happens. An admin cannot
// disable or delete themselves here. An admin without a password acts
// within a recent sign-in, and after it gets 403 with the way to confirm.
func TestS9AdminReauth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dex := newStub("dex")
	env := newEnv(t, withProviders(dex))
	admin, b := newAdmin(t, env, "root@example.com")
	ann := env.signup("ann@example.com", "ann-secret-pw-1")
	page := "/admin/users/" + strconv.FormatInt(ann, 10)
	p := b.get(page)
	for _, name := range []string{"disable", "revoke-sessions", "reset-link", "reset-factors", "grant-admin", "delete"} {
		form := `[data-testid="action-` + name + `"]`
		if in := p.find(form + ` input[name="password"]`); in.AttrOr("type", "") != "password" || in.AttrOr("autocomplete", "") != "current-password" {
			t.Errorf("%s: no password field", name)
		}
		extra := url.Values{"confirm": {"ann@example.com"}}
		r := b.submit(p, form, extra)
		r.is(http.StatusUnprocessableEntity, "page-response")
		extra.Set("password", "not-my-password")
		r = b.submit(p, form, extra)
		r.is(http.StatusUnauthorized, "page-response")
		if r.text("response-title") != "Wrong password" {
			t.Errorf("%s: %q", name, r.text("response-title"))
		}
		if a := lastAuditOf(t, env, admin); a.Kind != "reauth.failed" {
			t.Errorf("%s: the admin's audit %+v", name, a)
		}
		extra.Set("password", adminPW)
		noCSRF(t, b, page+"/"+name, extra)
	}
	if a := lastAuditOf(t, env, ann); a.Actor != "" {
		t.Fatalf("a refused action was audited on the target: %+v", a)
	}
	if u, _ := env.users.FindUserByID(ctx, ann); u.Disabled || u.Admin {
		t.Fatalf("a refused action changed the account: %+v", u)
	}

	// Not themselves.
	self := "/admin/users/" + strconv.FormatInt(admin, 10)
	sp := b.get(self)
	if sp.testid("admin-self").Length() != 1 || sp.testid("action-disable").Length() != 0 || sp.testid("action-delete").Length() != 0 {
		t.Fatalf("own page offers disable or delete:\n%s", sp.body)
	}
	for _, name := range []string{"disable", "delete"} {
		r := b.post(self+"/"+name, url.Values{"_csrf": {sp.csrf()}, "password": {adminPW}, "confirm": {"root@example.com"}})
		r.is(http.StatusUnprocessableEntity, "page-response")
		if !strings.Contains(r.text("response-content"), "your own account") {
			t.Errorf("self %s: %q", name, r.text("response-content"))
		}
	}
	if u, err := env.users.FindUserByID(ctx, admin); err != nil || u.Disabled {
		t.Fatalf("the admin disabled or deleted themselves: %+v %v", u, err)
	}
	// Giving up their own role is allowed, and lands outside /admin.
	second, sb := newAdmin(t, env, "second@example.com")
	own := "/admin/users/" + strconv.FormatInt(second, 10)
	sb.submit(sb.get(own), `[data-testid="action-revoke-admin"]`, url.Values{"password": {adminPW}}).redirects("/")
	if h := sb.get("/"); h.testid("nav-admin").Length() != 0 || !strings.Contains(h.text("flash"), "no longer an admin") {
		t.Errorf("after revoking their own role:\n%s", h.body)
	}
	sb.get(own).is(http.StatusForbidden, "page-response")

	// An admin without a password: a recent sign-in is enough; a stale one
	// gets 403 and the way to /account.
	gb := newBrowser(t, env, "http://localhost:3000")
	signInWith(t, gb, dex, oauth.Account{Subject: "gil", Email: "gil@example.com", EmailVerified: true}, nil).redirects("/")
	gil, err := env.users.FindUserByEmail(ctx, "gil@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.users.SetAdmin(ctx, gil.ID, true, models.ClientMeta{Actor: models.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	gp := gb.get(page)
	if gp.find(`input[name="password"]`).Length() != 0 || gp.testid("admin-stale").Length() != 0 {
		t.Fatalf("a recent admin without a password:\n%s", gp.body)
	}
	gb.submit(gp, `[data-testid="action-grant-admin"]`, nil).redirects(page)
	if a := lastAuditOf(t, env, ann); a.Kind != "admin.granted" || a.Actor != models.AdminActor(gil.ID) {
		t.Fatalf("audit %+v", a)
	}
	env.clock.Advance(11 * time.Minute)
	gp = gb.get(page)
	if gp.testid("admin-stale").Length() != 1 {
		t.Errorf("no notice for a stale admin:\n%s", gp.body)
	}
	r := gb.submit(gp, `[data-testid="action-revoke-admin"]`, nil)
	r.is(http.StatusForbidden, "page-response")
	if r.testid("response-link").AttrOr("href", "") != "/account" || !strings.Contains(r.text("response-content"), "recent sign-in") {
		t.Errorf("stale admin's 403:\n%s", r.body)
	}
	if u, _ := env.users.FindUserByID(ctx, ann); !u.Admin {
		t.Fatal("a stale admin revoked the role")
	}
}

// TestA1AdminOutbox: the dead mail shows kind, recipient, times and the
// last error, never a body; Retry (with the password) queues it again,
// audited on the recipient's account with the admin; a message whose link
// expired offers no retry and refuses one.
func TestA1AdminOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t)
	ob := withOutbox(env)
	admin, b := newAdmin(t, env, "root@example.com")
	ann := env.signup("ann@example.com", "ann-secret-pw-1")
	b.get("/admin/outbox").testid("outbox-empty").Length()
	secret := "http://localhost:3000/reset-password?token=" + strings.Repeat("Ab3", 22)
	failed := deadMail(t, env, ob, models.Email{Kind: "reset-password", To: "ann@example.com", Subject: "Reset",
		HTML: `<a href="` + secret + `">reset</a>`, Text: secret}, "550 5.1.1 mailbox unavailable", false)
	env.clock.Advance(time.Minute)
	expired := deadMail(t, env, ob, models.Email{Kind: "verify-email", To: "bob@example.com", Subject: "Verify", HTML: secret, Text: secret},
		"expired before it could be delivered", true)

	p := b.get("/admin/outbox")
	p.is(http.StatusOK, "page-admin-outbox")
	checkPageHeaders(t, p)
	if strings.Contains(p.body, "Ab3Ab3") || strings.Contains(p.body, "reset-password?token") {
		t.Fatal("the outbox page shows a body's link")
	}
	rows := p.testid("outbox-mail")
	if rows.Length() != 2 || rows.First().AttrOr("data-id", "") != strconv.FormatInt(expired, 10) {
		t.Fatalf("dead mail rows:\n%s", p.body)
	}
	if row := rows.Eq(1); !strings.Contains(row.Text(), "550 5.1.1 mailbox unavailable") || !strings.Contains(row.Text(), "ann@example.com") ||
		!strings.Contains(row.Text(), "reset-password") || row.Find(`[data-testid="outbox-retry"]`).Length() != 1 {
		t.Errorf("failed row: %s", row.Text())
	}
	if row := rows.First(); row.Find(`[data-testid="outbox-retry"]`).Length() != 0 || !strings.Contains(row.Text(), "cannot be sent again") {
		t.Errorf("expired row: %s", row.Text())
	}

	retry := `[data-testid="outbox-mail"][data-id="` + strconv.FormatInt(failed, 10) + `"] form`
	b.submit(p, retry, nil).is(http.StatusUnprocessableEntity, "page-response")
	b.submit(p, retry, url.Values{"password": {"nope-nope-nope"}}).is(http.StatusUnauthorized, "page-response")
	noCSRF(t, b, "/admin/outbox/"+strconv.FormatInt(failed, 10)+"/retry", url.Values{"password": {adminPW}})
	if m, _ := ob.FindEmail(ctx, failed); m.DeadAt.IsZero() {
		t.Fatal("a refused retry queued the mail")
	}
	b.submit(p, retry, url.Values{"password": {adminPW}}).redirects("/admin/outbox")
	p = b.get("/admin/outbox")
	if !strings.Contains(p.text("flash"), "queued again") || p.testid("outbox-mail").Length() != 1 {
		t.Fatalf("after the retry:\n%s", p.body)
	}
	due, err := ob.Claim(ctx, 10)
	if err != nil || len(due) != 1 || due[0].ID != failed || due[0].Text != secret {
		t.Fatalf("not due again: %+v %v", due, err)
	}
	if a := lastAuditOf(t, env, ann); a.Kind != "mail.retried" || a.Actor != models.AdminActor(admin) {
		t.Fatalf("audit %+v", a)
	}
	// Again (not dead any more): 404; the expired one: 422.
	csrf := p.csrf()
	b.post("/admin/outbox/"+strconv.FormatInt(failed, 10)+"/retry", url.Values{"_csrf": {csrf}, "password": {adminPW}}).
		is(http.StatusNotFound, "page-response")
	b.post("/admin/outbox/"+strconv.FormatInt(expired, 10)+"/retry", url.Values{"_csrf": {csrf}, "password": {adminPW}}).
		is(http.StatusUnprocessableEntity, "page-response")
}
