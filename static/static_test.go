package static

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

func TestAssets(t *testing.T) {
	a, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	url := a.URL("style.css")
	if !regexp.MustCompile(`^/static/style\.[0-9a-f]{10}\.css$`).MatchString(url) {
		t.Fatalf("URL(style.css) = %q, want a hashed name", url)
	}

	t.Run("versioned", func(t *testing.T) {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		if got := rec.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control = %q", got)
		}
		if got := rec.Header().Get("Content-Type"); got != "text/css; charset=utf-8" {
			t.Errorf("Content-Type = %q", got)
		}
		if rec.Body.Len() == 0 {
			t.Error("empty body")
		}
	})
	t.Run("plain name revalidates", func(t *testing.T) {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/static/icon.svg", nil))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Fatalf("status %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
		}
		if got := rec.Header().Get("Content-Type"); got != "image/svg+xml" {
			t.Errorf("Content-Type = %q", got)
		}
	})
	t.Run("etag", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("If-None-Match", a.byName["style.css"].etag)
		a.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Fatalf("status %d, want 304", rec.Code)
		}
	})
	for _, p := range []string{"/static/nope.css", "/static/static.go", "/static/style.0000000000.css", "/static/"} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != 404 {
			t.Errorf("%s: status %d, want 404", p, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, url, nil))
	if rec.Code != 405 {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}
