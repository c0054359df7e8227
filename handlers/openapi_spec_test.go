package handlers_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/latchkey/latchkey/handlers"
)

// apiSpec is the OpenAPI document (handlers/openapi.json, as served) with
// a router over its operations: every /api answer a handler test records
// is checked against it (testEnv.checkSpec), so the document cannot drift
// from the handlers.
type apiSpec struct {
	doc    *openapi3.T
	router routers.Router
}

// loadSpec parses and validates the document once per test binary; each
// testEnv holds the result (newEnv).
var loadSpec = sync.OnceValues(func() (*apiSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(handlers.OpenAPIJSON()))
	if err != nil {
		return nil, fmt.Errorf("loading openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing openapi.json: %w", err)
	}
	return &apiSpec{doc: doc, router: router}, nil
})

func mustSpec(t testing.TB) *apiSpec {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// offSpec is env for requests that deliberately leave the document: a
// path or method no route has (/api/nope, GET /api/users/1/verify). Their
// answer must still be the 404 error envelope the document describes
// for them (info.description), and is checked as such.
func (env *testEnv) offSpec() *testEnv {
	c := *env
	c.undocumented = true
	return &c
}

// checkSpec fails the test when an /api request is not an operation of the
// document, or its answer (status, headers the document requires, body) is
// not one the operation describes. Request bodies and parameters are not
// checked: tests send wrong ones on purpose. A CORS preflight is the CORS
// middleware's, not an operation: it is left alone.
func (env *testEnv) checkSpec(t testing.TB, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	if env.spec == nil || !isAPIPath(req.URL.Path) {
		return
	}
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return
	}
	body, err := responseBody(rec)
	if err != nil {
		t.Errorf("openapi: %s %s: %v", req.Method, req.URL.Path, err)
		return
	}
	if req.Method == http.MethodHead && len(body) > 0 {
		t.Errorf("openapi: HEAD %s answered with a body", req.URL.Path)
		return
	}
	// The routes are matched in lower case (lowerAPIPath): so is the document.
	u := *req.URL
	u.Path = strings.ToLower(u.Path)
	u.RawPath = ""
	u.Scheme, u.Host = "", ""
	probe, err := http.NewRequest(req.Method, u.String(), nil)
	if err != nil {
		t.Errorf("openapi: %v", err)
		return
	}
	probe.Header = req.Header.Clone()

	route, params, err := env.spec.find(probe)
	if env.undocumented {
		if err == nil {
			t.Errorf("openapi: %s %s is an operation of the document (%s %s): use env.do, not offSpec",
				req.Method, req.URL.Path, route.Method, route.Path)
			return
		}
		env.checkOffSpec(t, req, rec, body)
		return
	}
	if err != nil {
		t.Errorf("openapi: %s %s (%d) is no operation of handlers/openapi.json: %v\n%s",
			req.Method, req.URL.Path, rec.Code, err, body)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if req.Method == http.MethodHead {
		// openapi3filter leaves HEAD alone: the status must be the GET's.
		if route.Operation.Responses.Status(rec.Code) == nil {
			t.Errorf("openapi: HEAD %s answered %d, which %s %s does not list", req.URL.Path, rec.Code, route.Method, route.Path)
			return
		}
		return
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s %s → %d does not match %s %s (%s):\n%v\nbody: %s",
			req.Method, req.URL.Path, rec.Code, route.Method, route.Path, route.Operation.OperationID, trimSpecErr(err), body)
		return
	}
}

// checkOffSpec: a request the document has no operation for answers 404
// with the error envelope.
func (env *testEnv) checkOffSpec(t testing.TB, req *http.Request, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code != http.StatusNotFound {
		t.Errorf("openapi: %s %s is not in the document but answered %d, not 404", req.Method, req.URL.Path, rec.Code)
		return
	}
	if req.Method == http.MethodHead {
		return
	}
	schema := env.spec.doc.Components.Schemas["ErrorEnvelope"].Value
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("openapi: %s %s: 404 body is not JSON: %v\n%s", req.Method, req.URL.Path, err, body)
		return
	}
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		t.Errorf("openapi: %s %s: 404 body is not the error envelope: %v\n%s", req.Method, req.URL.Path, err, body)
		return
	}
}

// find is the document's operation for a request, routed as Echo (and
// Express before it) routes: HEAD without an operation of its own is the
// GET's (head.go), and a fixed path that lacks the method falls through to
// the {parameter} path beside it, so GET /api/users/logout is getUser with
// id "logout" (401), as the document's description says.
func (s *apiSpec) find(req *http.Request) (*routers.Route, map[string]string, error) {
	try := func(method, path string) (*routers.Route, map[string]string, error) {
		r := req.Clone(req.Context())
		r.Method = method
		u := *req.URL
		u.Path = path
		r.URL = &u
		return s.router.FindRoute(r)
	}
	methods := []string{req.Method}
	if req.Method == http.MethodHead {
		methods = append(methods, http.MethodGet)
	}
	path := req.URL.Path
	paths := []string{path}
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		paths = append(paths, path[:i+1]+"~") // no fixed path ends so: only a {parameter} matches
	}
	var first error
	for _, p := range paths {
		for _, m := range methods {
			route, params, err := try(m, p)
			if err == nil {
				return route, params, nil
			}
			if first == nil {
				first = err
			}
			if !errors.Is(err, routers.ErrMethodNotAllowed) {
				return nil, nil, first
			}
		}
	}
	return nil, nil, first
}

// responseBody is the recorded body, un-gzipped when it was compressed.
func responseBody(rec *httptest.ResponseRecorder) ([]byte, error) {
	b := rec.Body.Bytes()
	if rec.Header().Get("Content-Encoding") != "gzip" || len(b) == 0 {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return io.ReadAll(zr)
}

func isAPIPath(p string) bool {
	return len(p) >= 4 && strings.EqualFold(p[:4], "/api") && (len(p) == 4 || p[4] == '/')
}

// trimSpecErr keeps a validation error readable: the schema dumps go.
func trimSpecErr(err error) string {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var parts []string
		for _, e := range me {
			parts = append(parts, firstLines(e.Error(), 6))
		}
		return strings.Join(parts, "\n")
	}
	return firstLines(err.Error(), 12)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
