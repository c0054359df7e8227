// Package webtest is a browser without a screen for tests that drive the
// app's HTML pages over HTTP: a cookie jar, redirects left to the test
// (each answer is returned as it is, so a test can check a 303 and where
// it goes), and forms submitted as a browser would, hidden fields (the
// CSRF token) included.
//
//	b := webtest.New(t, base)
//	login := b.Get("/login").Is(200, "page-login")
//	r := b.Submit(login, `form[action="/auth/dex"]`, nil) // 303 to the provider
package webtest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// Browser is one browser: its own cookies, one app's base URL.
type Browser struct {
	t      testing.TB
	Base   *url.URL
	Client *http.Client // with the jar; follows no redirect
}

// New returns a browser with an empty cookie jar for the app at base
// (http://127.0.0.1:port).
func New(t testing.TB, base string) *Browser {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || !u.IsAbs() {
		t.Fatalf("webtest: base %q is not an absolute URL", base)
	}
	jar, _ := cookiejar.New(nil) // never fails without options
	return &Browser{t: t, Base: u, Client: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Page is one answer.
type Page struct {
	t      testing.TB
	URL    *url.URL // what was asked for
	Status int
	Header http.Header
	Body   string
	Doc    *goquery.Document
}

// URL resolves a path (or an absolute URL) against the base.
func (b *Browser) URL(ref string) *url.URL {
	b.t.Helper()
	u, err := b.Base.Parse(ref)
	if err != nil {
		b.t.Fatalf("webtest: %q: %v", ref, err)
	}
	return u
}

// Get asks for ref (a path of the app, or an absolute URL).
func (b *Browser) Get(ref string) *Page {
	b.t.Helper()
	return b.do(http.MethodGet, b.URL(ref), nil)
}

// Post sends fields as a form to ref.
func (b *Browser) Post(ref string, fields url.Values) *Page {
	b.t.Helper()
	return b.do(http.MethodPost, b.URL(ref), fields)
}

// Submit fills the form of p that sel selects (its inputs' values, with
// fields over them) and sends it to its action, as pressing its button
// does.
func (b *Browser) Submit(p *Page, sel string, fields url.Values) *Page {
	b.t.Helper()
	form := p.Doc.Find(sel).First()
	if form.Length() == 0 || !form.Is("form") {
		b.t.Fatalf("webtest: no form %s on %s (%d):\n%s", sel, p.URL, p.Status, p.Body)
	}
	values := url.Values{}
	form.Find("input[name]").Each(func(_ int, s *goquery.Selection) {
		switch strings.ToLower(s.AttrOr("type", "text")) {
		case "submit", "button", "image", "reset":
			return
		}
		values.Set(s.AttrOr("name", ""), s.AttrOr("value", ""))
	})
	for k, v := range fields {
		values[k] = v
	}
	action, err := p.URL.Parse(form.AttrOr("action", ""))
	if err != nil {
		b.t.Fatalf("webtest: the action of %s on %s: %v", sel, p.URL, err)
	}
	method := strings.ToUpper(form.AttrOr("method", "get"))
	if method == http.MethodGet {
		action.RawQuery = values.Encode()
		return b.do(method, action, nil)
	}
	return b.do(method, action, values)
}

// Follow asks for where p redirects to (its Location).
func (b *Browser) Follow(p *Page) *Page {
	b.t.Helper()
	loc := p.Location()
	if loc == "" {
		b.t.Fatalf("webtest: %s answered %d, not a redirect:\n%s", p.URL, p.Status, p.Body)
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		b.t.Fatalf("webtest: Location %q: %v", loc, err)
	}
	return b.do(http.MethodGet, u, nil)
}

// Cookie is the value of the cookie named name the jar would send to the
// base URL, "" when there is none.
func (b *Browser) Cookie(name string) string {
	for _, c := range b.Client.Jar.Cookies(b.Base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *Browser) do(method string, u *url.URL, form url.Values) *Page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		b.t.Fatalf("webtest: %s %s: %v", method, u, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	resp, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("webtest: %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("webtest: reading %s %s: %v", method, u, err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(raw)))
	if err != nil {
		b.t.Fatalf("webtest: parsing %s: %v", u, err)
	}
	return &Page{t: b.t, URL: u, Status: resp.StatusCode, Header: resp.Header, Body: string(raw), Doc: doc}
}

// Location is the redirect target, "" if none.
func (p *Page) Location() string { return p.Header.Get("Location") }

// TestID selects the elements with data-testid id.
func (p *Page) TestID(id string) *goquery.Selection {
	return p.Doc.Find(`[data-testid="` + id + `"]`)
}

// Text is the trimmed text of the element with data-testid id.
func (p *Page) Text(id string) string { return strings.TrimSpace(p.TestID(id).Text()) }

// Is fails the test unless p has the status and, when testid is not "",
// an element with that data-testid. It returns p.
func (p *Page) Is(status int, testid string) *Page {
	p.t.Helper()
	if p.Status != status || testid != "" && p.TestID(testid).Length() == 0 {
		p.t.Fatalf("webtest: %s answered %d, want %d with %q:\n%s", p.URL, p.Status, status, testid, p.Body)
	}
	return p
}

// Redirects fails the test unless p is a 303 or 302 to path. It returns p.
func (p *Page) Redirects(path string) *Page {
	p.t.Helper()
	if (p.Status != http.StatusSeeOther && p.Status != http.StatusFound) || p.Location() != path {
		p.t.Fatalf("webtest: %s answered %d to %q, want a redirect to %q:\n%s", p.URL, p.Status, p.Location(), path, p.Body)
	}
	return p
}
