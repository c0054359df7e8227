package dextest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// Login signs in at Dex's login page the way a browser does, over HTTP:
//
//  1. GET authURL, following redirects: authURL may be Dex's authorization
//     URL or the app's /auth/<id>, which redirects to Dex; Dex sends the
//     browser on to its password page (/dex/auth/local/login?…).
//  2. Read the page's login form (the form with a "login" field), fill in
//     login and password, and POST it to the form's action.
//  3. Stop at the first redirect that leaves Dex (to the client's redirect
//     URI) and return that response unfollowed: a 303 whose Location is
//     redirect_uri?code=…&state=…. The caller follows it with its own
//     client, whose cookie jar holds the app's flow cookie.
//
// client may be nil (a client with an empty cookie jar is used). Its Jar
// and Transport are used; its CheckRedirect is not. The caller closes the
// returned body.
//
// What comes back when Dex does not let the user through:
//   - wrong login or password: Dex's login page again, 401, with a
//     #login-error box (Rejected reports it);
//   - a redirect out of Dex before any login page (e.g. to the redirect
//     URI with error=… for a bad scope), or a page that is not on Dex:
//     returned as it is, with nothing posted;
//   - Dex's error page (e.g. 400 "Unregistered redirect_uri."): returned
//     as it is.
//
// Transport errors, and a 200 page on Dex without a login form, fail t.
func (d *Dex) Login(t testing.TB, client *http.Client, authURL, login, password string) *http.Response {
	t.Helper()
	c := d.browser(client)
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatalf("dextest: GET %s: %v", authURL, err)
	}
	if !d.onDex(resp.Request.URL) || resp.StatusCode != http.StatusOK {
		return resp
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("dextest: reading %s: %v", resp.Request.URL, err)
	}
	page := resp.Request.URL
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("dextest: parsing %s: %v", page, err)
	}
	form := doc.Find("form").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return s.Find(`input[name="login"]`).Length() > 0
	}).First()
	if form.Length() == 0 {
		t.Fatalf("dextest: no login form on %s:\n%s", page, body)
	}
	if m, ok := form.Attr("method"); !ok || !strings.EqualFold(m, http.MethodPost) {
		t.Fatalf("dextest: the login form on %s has method %q, want post", page, m)
	}
	action, err := page.Parse(form.AttrOr("action", ""))
	if err != nil {
		t.Fatalf("dextest: the login form's action on %s: %v", page, err)
	}
	fields := url.Values{}
	form.Find("input[name]").Each(func(_ int, s *goquery.Selection) {
		switch strings.ToLower(s.AttrOr("type", "text")) {
		case "submit", "button", "image", "reset":
			return
		}
		fields.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	fields.Set("login", login)
	fields.Set("password", password)
	resp, err = c.PostForm(action.String(), fields)
	if err != nil {
		t.Fatalf("dextest: POST %s: %v", action, err)
	}
	return resp
}

// Rejected reports whether resp, from Login, is Dex's login page shown
// again because the login or the password was wrong.
func (d *Dex) Rejected(resp *http.Response) bool {
	return resp != nil && resp.StatusCode == http.StatusUnauthorized &&
		resp.Request != nil && d.onDex(resp.Request.URL)
}

// browser returns a copy of client (or a new client with a cookie jar)
// that follows redirects within and into Dex, and stops at one out of it.
func (d *Dex) browser(client *http.Client) *http.Client {
	var c http.Client
	if client != nil {
		c = *client
	} else {
		jar, _ := cookiejar.New(nil) // never fails without options
		c.Jar = jar
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if d.onDex(via[len(via)-1].URL) && !d.onDex(req.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return &c
}

// onDex reports whether u is served by this Dex (under the issuer).
func (d *Dex) onDex(u *url.URL) bool {
	iss, err := url.Parse(d.Issuer)
	if err != nil || u == nil {
		return false
	}
	return u.Scheme == iss.Scheme && u.Host == iss.Host &&
		(u.Path == iss.Path || strings.HasPrefix(u.Path, iss.Path+"/"))
}
