package models_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
)

var cli = models.ClientMeta{Actor: models.ActorCLI}

// login signs in and returns the token.
func login(t *testing.T, u *models.Users, email, pw string) string {
	t.Helper()
	tok, _, err := u.Login(context.Background(), models.Credentials{Email: email, Password: pw}, models.ClientMeta{IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return tok.ID
}

func authenticated(t *testing.T, u *models.Users, tok string) bool {
	t.Helper()
	sess, err := u.Authenticate(context.Background(), tok, models.ScopeSession)
	if err != nil {
		t.Fatal(err)
	}
	return sess != nil
}

// lastAudit is the user's newest audit row.
func lastAudit(t *testing.T, u *models.Users, id int64) models.AuditEvent {
	t.Helper()
	rows, err := u.ListAudit(context.Background(), id, 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("audit of %d: %v %v", id, rows, err)
	}
	return rows[0]
}

// TestDisableUser (S8, A2, L1): a disable ends every session at once, and
// the account's right password then fails as a wrong one does; enable lets
// it sign in again (the old sessions stay ended). Each is audited with the
// actor.
func TestDisableUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newUsers(t, models.Config{})
	ann := mustCreate(t, u, "email", "ann@example.com", "password", "ann-secret-1")
	tok1, tok2 := login(t, u, "ann@example.com", "ann-secret-1"), login(t, u, "ann@example.com", "ann-secret-1")
	if !authenticated(t, u, tok1) { // now cached
		t.Fatal("the session does not work")
	}
	ended, err := u.DisableUser(ctx, ann.ID, cli)
	if err != nil || ended != 2 {
		t.Fatalf("disable: %d sessions ended, %v", ended, err)
	}
	if authenticated(t, u, tok1) || authenticated(t, u, tok2) {
		t.Error("a session of the disabled account still works")
	}
	if e := lastAudit(t, u, ann.ID); e.Kind != "user.disabled" || e.Actor != "cli" {
		t.Errorf("audit %+v", e)
	}
	_, _, right := u.Login(ctx, models.Credentials{Email: "ann@example.com", Password: "ann-secret-1"}, models.ClientMeta{})
	_, _, wrong := u.Login(ctx, models.Credentials{Email: "ann@example.com", Password: "not-her-pw"}, models.ClientMeta{})
	if !errors.Is(right, models.ErrLoginFailed) || right.Error() != wrong.Error() {
		t.Errorf("a disabled account's right password: %v; a wrong one: %v", right, wrong)
	}
	got, _ := u.FindUserByID(ctx, ann.ID)
	if !got.Disabled || got.DisabledAt.IsZero() {
		t.Errorf("after disable: %+v", got)
	}
	if n, err := u.DisableUser(ctx, ann.ID, cli); err != nil || n != 0 {
		t.Errorf("disable again: %d, %v", n, err)
	}
	if again, _ := u.FindUserByID(ctx, ann.ID); !again.DisabledAt.Equal(got.DisabledAt) {
		t.Errorf("disable again moved the time: %v → %v", got.DisabledAt, again.DisabledAt)
	}

	if changed, err := u.EnableUser(ctx, ann.ID, cli); err != nil || !changed {
		t.Fatalf("enable: %v %v", changed, err)
	}
	if changed, err := u.EnableUser(ctx, ann.ID, cli); err != nil || changed {
		t.Errorf("enable again: %v %v", changed, err)
	}
	if authenticated(t, u, tok1) {
		t.Error("enable brought an old session back")
	}
	login(t, u, "ann@example.com", "ann-secret-1")

	for name, fn := range map[string]func() error{
		"disable": func() error { _, err := u.DisableUser(ctx, 999, cli); return err },
		"enable":  func() error { _, err := u.EnableUser(ctx, 999, cli); return err },
		"admin":   func() error { _, err := u.SetAdmin(ctx, 999, true, cli); return err },
		"revoke":  func() error { _, err := u.RevokeSessions(ctx, 999, cli); return err },
		"reset":   func() error { _, err := u.SendResetLink(ctx, 999, cli); return err },
		"detail":  func() error { _, err := u.UserDetail(ctx, 999, 10); return err },
	} {
		if err := fn(); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("%s of an unknown user: %v", name, err)
		}
	}
}

// TestRevokeSessionsAndAdmin: revoke ends every session of the user and no
// one else's; the admin role is granted and revoked once, and a cached
// session's user sees it at once.
func TestRevokeSessionsAndAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newUsers(t, models.Config{})
	ann := mustCreate(t, u, "email", "ann@example.com", "password", "ann-secret-1")
	mustCreate(t, u, "email", "bob@example.com", "password", "bob-secret-1")
	a1, a2 := login(t, u, "ann@example.com", "ann-secret-1"), login(t, u, "ann@example.com", "ann-secret-1")
	b := login(t, u, "bob@example.com", "bob-secret-1")
	sess, _ := u.Authenticate(ctx, a1, models.ScopeSession)
	if sess.User.Admin {
		t.Fatal("admin by default")
	}
	if changed, err := u.SetAdmin(ctx, ann.ID, true, models.ClientMeta{Actor: models.AdminActor(7)}); err != nil || !changed {
		t.Fatalf("grant: %v %v", changed, err)
	}
	if e := lastAudit(t, u, ann.ID); e.Kind != "admin.granted" || e.Actor != "admin:7" {
		t.Errorf("audit %+v", e)
	}
	if sess, _ := u.Authenticate(ctx, a1, models.ScopeSession); !sess.User.Admin {
		t.Error("the cached session's user is not an admin after the grant")
	}
	if changed, _ := u.SetAdmin(ctx, ann.ID, true, cli); changed {
		t.Error("a second grant changed something")
	}
	if changed, err := u.SetAdmin(ctx, ann.ID, false, cli); err != nil || !changed {
		t.Fatalf("revoke: %v %v", changed, err)
	}
	if sess, _ := u.Authenticate(ctx, a1, models.ScopeSession); sess.User.Admin {
		t.Error("still an admin after the revoke")
	}

	n, err := u.RevokeSessions(ctx, ann.ID, cli)
	if err != nil || n != 2 {
		t.Fatalf("revoke sessions: %d %v", n, err)
	}
	if authenticated(t, u, a1) || authenticated(t, u, a2) || !authenticated(t, u, b) {
		t.Error("revoke ended the wrong sessions")
	}
	if e := lastAudit(t, u, ann.ID); e.Kind != "session.revoked-all" || e.Actor != "cli" {
		t.Errorf("audit %+v", e)
	}
}

// TestCreateAccount: with a password the account signs in; without one it
// has none and its address gets a reset link in the same transaction;
// a taken or malformed address and a weak password are refused.
func TestCreateAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newUsers(t, models.Config{})
	var links []models.ResetPasswordRequest
	u.OnResetPasswordRequest(func(_ context.Context, _ *models.Tx, ev models.ResetPasswordRequest) error {
		links = append(links, ev)
		return nil
	})
	admin, err := u.CreateAccount(ctx, models.NewAccount{Email: "Root@Example.com", Password: "op-chosen-pw-1", Admin: true}, cli)
	if err != nil || !admin.Admin || len(links) != 0 {
		t.Fatalf("create with a password: %+v %v (%d links)", admin, err, len(links))
	}
	login(t, u, "root@example.com", "op-chosen-pw-1")
	if got, _ := u.FindUserByID(ctx, admin.ID); !got.Admin || !got.HasPassword() || got.Email != "Root@Example.com" {
		t.Errorf("stored %+v", got)
	}

	nopw, err := u.CreateAccount(ctx, models.NewAccount{Email: "new@example.com"}, cli)
	if err != nil || nopw.HasPassword() || nopw.Admin {
		t.Fatalf("create without a password: %+v %v", nopw, err)
	}
	if len(links) != 1 || links[0].Email != "new@example.com" || links[0].AccessToken.ID == "" {
		t.Fatalf("set-password links: %+v", links)
	}
	if err := u.ResetPassword(ctx, links[0].AccessToken.ID, "first-pw-123", models.ClientMeta{}); err != nil {
		t.Fatalf("setting the first password through the link: %v", err)
	}
	login(t, u, "new@example.com", "first-pw-123")
	if e, _ := u.ListAudit(ctx, nopw.ID, 10); len(e) < 3 || e[len(e)-1].Kind != "user.created" || e[len(e)-1].Actor != "cli" {
		t.Errorf("audit %+v", e)
	}

	for _, a := range []models.NewAccount{{Email: "ROOT@example.com"}, {Email: "not-an-email"}, {Email: ""}} {
		if _, err := u.CreateAccount(ctx, a, cli); err == nil {
			t.Errorf("%q accepted", a.Email)
		} else if _, ok := models.AsValidation(err); !ok {
			t.Errorf("%q: %v, want a validation error", a.Email, err)
		}
	}
	if _, err := u.CreateAccount(ctx, models.NewAccount{Email: "weak@example.com", Password: "short"}, cli); !errors.Is(err, models.ErrPasswordTooSht) {
		t.Errorf("a short password: %v", err)
	}
}

// TestSendResetLink: an operator's link is queued even past the mail
// limits; a disabled account or a placeholder address gets none.
func TestSendResetLink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _, _, _ := newLimitedUsers(t, models.Config{}, &models.LimitConfig{})
	var links int
	u.OnResetPasswordRequest(func(context.Context, *models.Tx, models.ResetPasswordRequest) error { links++; return nil })
	ann := mustCreate(t, u, "email", "ann@example.com", "password", "ann-secret-1")
	for i := range 10 {
		got, err := u.SendResetLink(ctx, ann.ID, cli)
		if err != nil || got.Email != "ann@example.com" || links != i+1 {
			t.Fatalf("link %d: %v (%d queued)", i+1, err, links)
		}
	}
	u.DisableUser(ctx, ann.ID, cli)
	if _, err := u.SendResetLink(ctx, ann.ID, cli); !errors.Is(err, models.ErrUserDisabled) || links != 10 {
		t.Errorf("a disabled account: %v", err)
	}
}

// TestListUsersAndDetail: search by part of an email or username (LIKE's
// wildcards taken literally) or by id, pages with the total, and a user's
// detail with sessions, factors, last login and audit.
func TestListUsersAndDetail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, _ := newUsers(t, models.Config{})
	for i := 1; i <= 12; i++ {
		mustCreate(t, u, "email", fmt.Sprintf("user%02d@example.com", i), "password", "some-secret-1", "username", fmt.Sprintf("name_%d", i))
	}
	mustCreate(t, u, "email", "nameX1@other.org", "password", "some-secret-1")
	login(t, u, "user03@example.com", "some-secret-1")
	login(t, u, "user03@example.com", "some-secret-1")

	page, err := u.ListUsers(ctx, models.UserQuery{Limit: 5, Offset: 10})
	if err != nil || page.Total != 13 || len(page.Users) != 3 || page.Users[0].ID != 11 {
		t.Fatalf("page 3: %+v %v", page, err)
	}
	page, _ = u.ListUsers(ctx, models.UserQuery{Query: "USER0"})
	if page.Total != 9 {
		t.Errorf("user0: %d", page.Total)
	}
	page, _ = u.ListUsers(ctx, models.UserQuery{Query: "name_1"})
	if page.Total != 4 { // name_1, name_10, name_11, name_12; not nameX1
		t.Errorf("name_1 matched %d: %+v", page.Total, page.Users)
	}
	page, _ = u.ListUsers(ctx, models.UserQuery{Query: "13"})
	if page.Total != 1 || page.Users[0].Email != "nameX1@other.org" { // by its id
		t.Errorf("13: %+v", page.Users)
	}
	page, _ = u.ListUsers(ctx, models.UserQuery{Query: "user03"})
	if page.Total != 1 || page.Users[0].Sessions != 2 || page.Users[0].LastLogin.IsZero() || !page.Users[0].HasPassword {
		t.Errorf("user03: %+v", page.Users)
	}

	d, err := u.UserDetail(ctx, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d.User.Email != "user03@example.com" || len(d.Sessions) != 2 || d.Sessions[0].IP != "192.0.2.1" || d.Factors.Any() ||
		d.LastLogin.IsZero() || len(d.Audit) != 3 || d.Audit[0].Kind != "login.ok" || d.Audit[2].Kind != "user.created" {
		t.Errorf("detail %+v", d)
	}
	for _, s := range d.Sessions {
		if s.Current {
			t.Error("an operator's view marks a session current")
		}
	}
}

// TestOtherProcessDisable (A2): a disable made through another handle on
// the same store (the CLI beside a running server: another process on
// SQLite, another replica on PostgreSQL) fails the server's cached session
// within a second. The test clock stands still, so without a signal the
// cached entry would stay fresh for ever.
func TestOtherProcessDisable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.DSN(t)
	open := func(cache int) *models.Users {
		db, err := models.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return models.NewUsers(db, models.NewHasher(models.HashConfig{BcryptCost: 4}), nil,
			models.Config{CacheSize: cache, Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }})
	}
	server := open(0)
	ann := mustCreate(t, server, "email", "ann@example.com", "password", "ann-secret-1")
	tok := login(t, server, "ann@example.com", "ann-secret-1")
	if !authenticated(t, server, tok) || !authenticated(t, server, tok) {
		t.Fatal("no session")
	}
	other := open(-1)
	start := time.Now()
	if _, err := other.DisableUser(ctx, ann.ID, cli); err != nil {
		t.Fatal(err)
	}
	for authenticated(t, server, tok) {
		if time.Since(start) > time.Second {
			t.Fatal("the server's cached session still works a second after the disable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the session failed %v after the disable", time.Since(start).Round(time.Millisecond))
}
