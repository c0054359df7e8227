package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// TestExplorer: /explorer is a page in the site's frame with no script,
// made from the OpenAPI document: one entry per operation (as many as the
// document has, each method and path of it), each with its summary, its
// token requirement, its parameters, its body's fields and every status
// it answers; HEAD answers as GET.
func TestExplorer(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	r := env.do("GET", "/explorer", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("CSP %q: the pages' own, no inline script", csp)
	}
	dom, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	// The layout's one script is the passkeys' (a file, no inline code);
	// the reference itself needs none.
	dom.Find("script").Each(func(_ int, sc *goquery.Selection) {
		if src, _ := sc.Attr("src"); !strings.Contains(src, "/static/passkeys.") || strings.TrimSpace(sc.Text()) != "" {
			t.Errorf("a script element: src %q, %d bytes inline", src, len(sc.Text()))
		}
	})
	if dom.Find(`[data-testid="brand"]`).Length() != 1 || dom.Find(`[data-testid="nav-login"]`).Length() != 1 {
		t.Error("not in the site's frame")
	}

	doc := mustSpec(t).doc
	want := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want++
			sel := `[data-testid="api-op"][data-method="` + method + `"][data-path="` + path + `"]`
			el := dom.Find(sel)
			if el.Length() != 1 {
				t.Errorf("%s %s: %d entries", method, path, el.Length())
				continue
			}
			if id, _ := el.Attr("id"); id != op.OperationID {
				t.Errorf("%s %s: anchor %q, want the operationId %q", method, path, id, op.OperationID)
			}
			if !strings.Contains(el.Find("h3").Text(), path) || !strings.Contains(el.Text(), op.Summary) {
				t.Errorf("%s %s: heading %q, no summary %q", method, path, el.Find("h3").Text(), op.Summary)
			}
			auth := strings.TrimSpace(el.Find(`[data-testid="api-op-auth"]`).Text())
			if wantAuth := map[bool]string{true: "token", false: "no token"}[len(*op.Security) > 0]; auth != wantAuth {
				t.Errorf("%s %s: auth %q, want %q", method, path, auth, wantAuth)
			}
			var statuses []string
			el.Find(`[data-testid="api-op-status"]`).Each(func(_ int, s *goquery.Selection) { statuses = append(statuses, s.Text()) })
			if len(statuses) != op.Responses.Len() {
				t.Errorf("%s %s: statuses %v, the document has %d", method, path, statuses, op.Responses.Len())
			}
			for _, s := range statuses {
				if op.Responses.Value(s) == nil {
					t.Errorf("%s %s: status %s is not the document's", method, path, s)
				}
			}
			if got := el.Find(`[data-testid="api-op-params"] dt`).Length(); got != len(op.Parameters) {
				t.Errorf("%s %s: %d parameters shown, the document has %d", method, path, got, len(op.Parameters))
			}
			if op.RequestBody != nil {
				props := op.RequestBody.Value.Content.Get("application/json").Schema.Value.Properties
				if got := el.Find(`[data-testid="api-op-body"] dt`).Length(); got != len(props) {
					t.Errorf("%s %s: %d body fields shown, the schema has %d", method, path, got, len(props))
				}
			}
		}
	}
	if got := dom.Find(`[data-testid="api-op"]`).Length(); got != want {
		t.Errorf("%d operations shown, the document has %d", got, want)
	}
	if got, wantS := dom.Find(`[data-testid="api-schema"]`).Length(), len(doc.Components.Schemas); got != wantS {
		t.Errorf("%d schemas shown, the document has %d", got, wantS)
	}
	// The three token transports, and the login the reference points to.
	auth := dom.Find(`[data-testid="explorer-auth"]`).Text()
	for _, s := range []string{"access_token", "X-Access-Token", "Authorization"} {
		if !strings.Contains(auth, s) {
			t.Errorf("the token section does not name %s", s)
		}
	}
	if dom.Find(`#login[data-path="/api/users/login"]`).Length() != 1 {
		t.Error("no #login anchor")
	}
	// Every in-page link lands on an anchor of the page.
	dom.Find(`a[href^="#"]`).Each(func(_ int, a *goquery.Selection) {
		href, _ := a.Attr("href")
		if dom.Find(`[id="`+href[1:]+`"]`).Length() != 1 {
			t.Errorf("link %s leads nowhere", href)
		}
	})

	h := env.do("HEAD", "/explorer", "")
	if h.status != http.StatusOK || h.body != "" || h.header.Get("Content-Length") != r.header.Get("Content-Length") {
		t.Errorf("HEAD: %d %d bytes, Content-Length %q (GET %q)", h.status, len(h.body), h.header.Get("Content-Length"), r.header.Get("Content-Length"))
	}
}
