package handlers_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/latchkey/latchkey/handlers"
)

// TestOpenAPIDocumentServed: /api/openapi.json is the embedded document, an
// OpenAPI 3.1 document that loads and validates; it is cacheable with an
// ETag (304 on a match), and HEAD answers as GET without the body.
func TestOpenAPIDocumentServed(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	r := env.do("GET", "/api/openapi.json", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %q", r.status, r.header.Get("Content-Type"))
	}
	if r.body != handlers.OpenAPIJSON() {
		t.Fatal("the served document is not the embedded one")
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	for _, name := range []string{"accessTokenQuery", "accessTokenHeader", "authorization"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("no security scheme %s", name)
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	if r := env.do("GET", "/api/openapi.json", "", "If-None-Match: "+etag); r.status != http.StatusNotModified || r.body != "" {
		t.Errorf("If-None-Match: %d, %d bytes", r.status, len(r.body))
	}
	if r := env.do("GET", "/api/openapi.json", "", `If-None-Match: "other"`); r.status != http.StatusOK {
		t.Errorf("another ETag: %d", r.status)
	}
	h := env.do("HEAD", "/api/openapi.json", "")
	if h.status != http.StatusOK || h.body != "" || h.header.Get("Content-Length") != r.header.Get("Content-Length") ||
		h.header.Get("ETag") != etag {
		t.Errorf("HEAD: %d %q %v", h.status, h.body, h.header)
	}
	// Any case, as every /api path.
	if r := env.do("GET", "/API/OpenAPI.json", ""); r.status != http.StatusOK {
		t.Errorf("/API/OpenAPI.json: %d", r.status)
	}
}

// TestOpenAPICoversEveryAPIRoute: each /api route Echo has (but the 404
// catch-alls and the HEAD routes made from GETs) is an operation of the
// document, and each operation of the document is a route: neither can be
// added without the other.
func TestOpenAPICoversEveryAPIRoute(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	routes := map[string]bool{}
	for _, r := range env.e.Routes() {
		if !isAPIPath(r.Path) || strings.HasSuffix(r.Path, "*") || r.Path == "/api" || r.Method == echoRouteNotFound {
			continue
		}
		routes[r.Method+" "+echoToOpenAPI(r.Path)] = true
	}
	ops := map[string]bool{}
	for path, item := range env.spec.doc.Paths.Map() {
		for method := range item.Operations() {
			ops[method+" "+path] = true
		}
	}
	for k := range ops {
		if !routes[k] {
			t.Errorf("the document has %s, the server has no such route", k)
		}
	}
	for k := range routes {
		method, path, _ := strings.Cut(k, " ")
		if ops[k] || method == http.MethodHead && ops[http.MethodGet+" "+path] {
			continue
		}
		t.Errorf("the server has %s, the document does not", k)
	}
	if len(ops) < 30 {
		t.Errorf("only %d operations", len(ops))
	}
}

// echoRouteNotFound is the method Echo lists for its own not-found routes.
const echoRouteNotFound = "echo_route_not_found"

// echoToOpenAPI turns /api/users/:id/sessions/:sid into /api/users/{id}/sessions/{sid}.
func echoToOpenAPI(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// TestOpenAPIErrorResponsesUseTheEnvelope: every error answer of every
// operation is the error envelope (a component response built on
// ErrorEnvelope).
func TestOpenAPIErrorResponsesUseTheEnvelope(t *testing.T) {
	t.Parallel()
	doc := mustSpec(t).doc
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				if !strings.HasPrefix(resp.Ref, "#/components/responses/") {
					t.Errorf("%s %s %s: not a component error response (%q)", method, path, code, resp.Ref)
					continue
				}
				s := resp.Value.Content.Get("application/json").Schema.Value
				if !slices.ContainsFunc(s.AllOf, func(r *openapi3.SchemaRef) bool { return r.Ref == "#/components/schemas/ErrorEnvelope" }) {
					t.Errorf("%s %s %s: %s is not built on ErrorEnvelope", method, path, code, resp.Ref)
				}
			}
		}
	}
}

// TestOpenAPIRareAnswers asks for the answers the other handler tests do
// not reach (a body too large or of another type on every operation that
// reads one, the denied LoopBack methods, a replace's malformed body), so
// that the document's word on them is validated too (env.do checks each).
func TestOpenAPIRareAnswers(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	id := env.signup("rare@example.com", "seldom-pw-123456")
	tok := env.login("rare@example.com", "seldom-pw-123456")
	auth := "Authorization: " + tok
	big := `{"email":"` + strings.Repeat("a", 2<<20) + `"}`
	user := "/api/users/" + strconv.FormatInt(id, 10)
	for _, path := range []string{"/api/users", "/api/users/login", "/api/users/login/mfa", "/api/users/change-password",
		"/api/users/reset", "/api/users/reset-password", user + "/replace"} {
		if r := env.do("POST", path, big, auth); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s, 2 MiB: %d", path, r.status)
		}
		if r := env.do("POST", path, "email=x", auth, "Content-Type: text/plain"); r.status != http.StatusUnsupportedMediaType &&
			path != "/api/users/reset-password" { // a session token: 401 before the body is read
			t.Errorf("POST %s, text/plain: %d", path, r.status)
		}
	}
	for _, m := range []string{"PATCH", "PUT"} {
		if r := env.do(m, user, big, auth); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s, 2 MiB: %d", m, user, r.status)
		}
		if r := env.do(m, user, "x", auth, "Content-Type: text/plain"); r.status != http.StatusUnsupportedMediaType {
			t.Errorf("%s %s, text/plain: %d", m, user, r.status)
		}
		if r := env.do(m, user, "[1]", auth); r.status != http.StatusBadRequest {
			t.Errorf("%s %s, an array: %d", m, user, r.status)
		}
	}
	for path, item := range env.spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Tags[0] != "Denied" {
				continue
			}
			p := strings.NewReplacer("{id}", strconv.FormatInt(id, 10), "{fk}", "1").Replace(path)
			if r := env.do(method, p, "", auth); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s: %d", method, p, r.status)
			}
		}
	}
	if r := env.do("DELETE", "/api/users/me/identities/1", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unlink without a token: %d", r.status)
	}
}
