package boot

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/internal/testdb"
)

// pageClient is a browser for the pages of a testApp: it keeps cookies
// by name (the app's base URL is https, so they are __Host- and Secure,
// which a cookie jar would not send to the test's http listener) and posts
// forms with the CSRF token of the last page.
type pageClient struct {
	a       *testApp
	cookies map[string]string
	csrf    string
}

var csrfRE = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (a *testApp) browser() *pageClient { return &pageClient{a: a, cookies: map[string]string{}} }

func (b *pageClient) do(method, path string, form url.Values) httpResult {
	b.a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.a.url+path, body)
	if err != nil {
		b.a.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		b.a.t.Fatal(err)
	}
	defer res.Body.Close()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	raw, _ := io.ReadAll(res.Body)
	if m := csrfRE.FindStringSubmatch(string(raw)); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return httpResult{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// get fetches a page and fails unless it answers want.
func (b *pageClient) get(want int, path string) httpResult {
	b.a.t.Helper()
	r := b.do("GET", path, nil)
	if r.status != want {
		b.a.t.Fatalf("GET %s: %d, want %d\n%s", path, r.status, want, r.body)
	}
	return r
}

// post sends a form with the last page's CSRF token and fails unless it answers want.
func (b *pageClient) post(want int, path string, form url.Values) httpResult {
	b.a.t.Helper()
	form.Set("_csrf", b.csrf)
	r := b.do("POST", path, form)
	if r.status != want {
		b.a.t.Fatalf("POST %s: %d, want %d\n%s", path, r.status, want, r.body)
	}
	return r
}

var (
	changeConfirmRE = regexp.MustCompile(regexp.QuoteMeta(testBaseURL) + `/account/email/confirm\?token=([0-9a-f]{128})`)
	changeCancelRE  = regexp.MustCompile(regexp.QuoteMeta(testBaseURL) + `/account/email/cancel\?token=([0-9a-f]{128})`)
)

// linkIn finds re's link in both parts of m and returns its token.
func linkIn(t *testing.T, m smtptest.Message, re *regexp.Regexp) string {
	t.Helper()
	tm, hm := re.FindStringSubmatch(m.Text), re.FindStringSubmatch(html.UnescapeString(m.HTML))
	if tm == nil || hm == nil || tm[1] != hm[1] {
		t.Fatalf("%q: link %s not in both parts:\n%s\n%s", m.Subject, re, m.Text, m.HTML)
	}
	return tm[1]
}

// TestR10L8EmailChangeOverSMTP follows an address change from the account
// page through real mail: the new address gets the confirmation link; the
// old one gets the notice with a cancel link and no secret of the account
// (L8); cancel works; the login address stays the old one until the link
// is used; the link works once; the old address is told when it is done;
// the other sessions end. PATCH over the API is unchanged (it changes the
// address at once: TestEmailChangeNoticeOverSMTP). Finally the account is
// deleted and the goodbye notice arrives.
func TestR10L8EmailChangeOverSMTP(t *testing.T) {
	t.Parallel()
	sink := smtptest.Start(t)
	clk := newClock()
	a := startApp(t, testdb.DSN(t), sink.Port(), clk)
	id := a.signup("hana@example.com", "anah-pw-1-long")
	apiSession := a.login("hana@example.com", "anah-pw-1-long")
	b := a.browser()
	b.get(200, "/login")
	b.post(303, "/login", url.Values{"email": {"hana@example.com"}, "password": {"anah-pw-1-long"}})
	b.get(200, "/account")

	// S9: without the current password nothing is sent.
	b.post(422, "/account/email", url.Values{"newEmail": {"hana.new@example.com"}})
	b.post(303, "/account/email", url.Values{"newEmail": {"hana.new@example.com"}, "emailPassword": {"anah-pw-1-long"}})
	confirmMail := sink.WaitFor(t, "hana.new@example.com", "Confirm your new email address", 5*time.Second)
	notice := sink.WaitFor(t, "hana@example.com", "A change of your email address was requested", 5*time.Second)
	confirm1 := linkIn(t, confirmMail, changeConfirmRE)
	cancel1 := linkIn(t, notice, changeCancelRE)
	for _, part := range []string{notice.Text, html.UnescapeString(notice.HTML)} {
		if !strings.Contains(part, "hana.new@example.com") || strings.Contains(part, confirm1) || strings.Contains(part, "access_token") ||
			strings.Contains(part, apiSession) || strings.Contains(part, "/confirm") {
			t.Fatalf("the notice to the old address carries a secret or the confirmation:\n%s", part)
		}
	}
	if strings.Contains(confirmMail.Text+confirmMail.HTML, cancel1) || strings.Contains(confirmMail.Text+confirmMail.HTML, "hana@example.com") {
		t.Fatal("the mail to the new address carries the cancel link or the old address")
	}
	// R10: the login address is still the old one.
	a.must(401, "POST", "/api/users/login", `{"email":"hana.new@example.com","password":"anah-pw-1-long"}`)
	a.login("hana@example.com", "anah-pw-1-long")

	// The owner of the old address cancels, from a browser without a session.
	stranger := a.browser()
	stranger.get(200, "/account/email/cancel?token="+cancel1)
	stranger.post(200, "/account/email/cancel", url.Values{"token": {cancel1}})
	stranger.get(400, "/account/email/confirm?token="+confirm1)

	// Asked again (past the one-a-minute limit per address), and confirmed
	// from another browser: the link works once.
	clk.Advance(time.Minute)
	b.get(200, "/account")
	b.post(303, "/account/email", url.Values{"newEmail": {"hana.new@example.com"}, "emailPassword": {"anah-pw-1-long"}})
	confirm2 := linkIn(t, sink.WaitFor(t, "hana.new@example.com", "Confirm your new email address", 5*time.Second), changeConfirmRE)
	sink.WaitFor(t, "hana@example.com", "A change of your email address was requested", 5*time.Second)
	mailbox := a.browser()
	mailbox.get(200, "/account/email/confirm?token="+confirm2)
	mailbox.post(303, "/account/email/confirm", url.Values{"token": {confirm2}})
	mailbox.get(400, "/account/email/confirm?token="+confirm2)
	mailbox.post(400, "/account/email/confirm", url.Values{"token": {confirm2}})
	a.must(401, "POST", "/api/users/login", `{"email":"hana@example.com","password":"anah-pw-1-long"}`)
	fresh := a.login("hana.new@example.com", "anah-pw-1-long")
	a.must(401, "GET", fmt.Sprintf("/api/users/%d", id), "", "Authorization: "+apiSession)
	u := a.must(200, "GET", fmt.Sprintf("/api/users/%d", id), "", "Authorization: "+fresh)
	if !strings.Contains(u.body, `"email":"hana.new@example.com"`) || !strings.Contains(u.body, `"emailVerified":true`) {
		t.Fatalf("user after confirming: %s", u.body)
	}
	done := sink.WaitFor(t, "hana@example.com", "Your email address was changed", 5*time.Second)
	for _, part := range []string{done.Text, html.UnescapeString(done.HTML)} {
		if !strings.Contains(part, "hana.new@example.com") || strings.Contains(part, "http") {
			t.Fatalf("the notice of the change (L8):\n%s", part)
		}
	}

	// Goodbye: delete from the page (a new login: the change ended b's session).
	b = a.browser()
	b.get(200, "/login")
	b.post(303, "/login", url.Values{"email": {"hana.new@example.com"}, "password": {"anah-pw-1-long"}})
	b.get(200, "/account")
	b.post(401, "/account/delete", url.Values{"deletePassword": {"wrong-pw-1-long"}})
	b.post(303, "/account/delete", url.Values{"deletePassword": {"anah-pw-1-long"}})
	bye := sink.WaitFor(t, "hana.new@example.com", "Your account was deleted", 5*time.Second)
	if strings.Contains(bye.Text, "http") {
		t.Fatalf("goodbye carries a link:\n%s", bye.Text)
	}
	a.must(401, "POST", "/api/users/login", `{"email":"hana.new@example.com","password":"anah-pw-1-long"}`)

	logs := a.logs.String()
	for _, secret := range []string{confirm1, cancel1, confirm2, apiSession, fresh, "anah-pw-1-long"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds a secret %q", secret)
		}
	}
}
