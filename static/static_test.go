package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestFaviconFresh: favicon.ico is a well-formed ICO of PNGs (16, 32 and
// 48 px) made from the current icon.svg; when the SVG changes, run
// `go generate ./static`.
func TestFaviconFresh(t *testing.T) {
	svg, err := os.ReadFile("icon.svg")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile("favicon.sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(svg)
	if got, _, _ := strings.Cut(string(rec), " "); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("favicon.ico was made from another icon.svg: run go generate ./static")
	}
	ico, err := fs.ReadFile(files, "favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(ico) < 6 || le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 {
		t.Fatalf("not an ICO header: % x", ico[:min(6, len(ico))])
	}
	n := int(le.Uint16(ico[4:]))
	var sizes []int
	for i := range n {
		e := ico[6+16*i : 22+16*i]
		size, off := int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		cfg, err := png.DecodeConfig(bytes.NewReader(ico[off : off+size]))
		if err != nil || cfg.Width != int(e[0]) || cfg.Height != int(e[1]) {
			t.Fatalf("image %d: %v, %dx%d for an entry of %dx%d", i, err, cfg.Width, cfg.Height, e[0], e[1])
		}
		sizes = append(sizes, cfg.Width)
	}
	if !slices.Equal(sizes, []int{16, 32, 48}) {
		t.Errorf("sizes %v", sizes)
	}
}

// TestServeAtFavicon: /favicon.ico's answer, cached for the time asked.
func TestServeAtFavicon(t *testing.T) {
	a := MustLoad()
	rec := httptest.NewRecorder()
	a.ServeAt(rec, httptest.NewRequest(http.MethodGet, "/favicon.ico", nil), "favicon.ico", 24*time.Hour)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/x-icon" ||
		rec.Header().Get("Cache-Control") != "public, max-age=86400" || rec.Header().Get("ETag") == "" ||
		rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if !bytes.HasPrefix(rec.Body.Bytes(), []byte{0, 0, 1, 0}) {
		t.Error("not an ICO")
	}
}

// TestGzipPrecompressed: CSS and SVG over 1 KiB are gzipped once at load
// and served gzipped to clients that accept it, with Vary and an ETag of
// their own; small files and refusing clients get the plain bytes.
func TestGzipPrecompressed(t *testing.T) {
	a := MustLoad()
	css := a.byName["style.css"]
	if css.gz == nil {
		t.Fatal("style.css has no gzipped form")
	}
	t.Logf("style.css: %d bytes, gzip %d", len(css.body), len(css.gz))
	for name, x := range a.byName {
		if (x.gz != nil) != ((strings.HasSuffix(name, ".css") || strings.HasSuffix(name, ".svg")) && len(x.body) > gzipMin) {
			t.Errorf("%s (%d bytes): gzipped %v", name, len(x.body), x.gz != nil)
		}
	}
	get := func(path, ae string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if ae != "" {
			req.Header.Set("Accept-Encoding", ae)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		return rec
	}
	url := a.URL("style.css")
	z := get(url, "gzip, deflate, br")
	if z.Header().Get("Content-Encoding") != "gzip" || z.Header().Get("Vary") != "Accept-Encoding" ||
		z.Header().Get("Content-Length") != strconv.Itoa(len(css.gz)) || z.Header().Get("ETag") == css.etag {
		t.Fatalf("gzipped answer: %v", z.Header())
	}
	zr, err := gzip.NewReader(z.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, css.body) {
		t.Fatalf("gunzipped body differs: %v", err)
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "br", "*;q=0"} {
		r := get(url, ae)
		if r.Header().Get("Content-Encoding") != "" || r.Body.Len() != len(css.body) || r.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: %v", ae, r.Header())
		}
	}
	if r := get(a.URL("icon.svg"), "gzip"); r.Header().Get("Content-Encoding") != "" || r.Header().Get("Vary") != "" {
		t.Errorf("a 300-byte SVG: %v", r.Header())
	}
	// A revalidation of the gzipped form.
	req := httptest.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("If-None-Match", css.gzETag)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match of the gzipped form: %d", rec.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "x-gzip": true, "gzip, deflate, br, zstd": true,
		"br;q=1.0, gzip;q=0.8, *;q=0.1": true, "deflate": false, "identity": false, "*": true,
		"gzip;q=0": false, "gzip; q=0.000": false, "*;q=0": false, "*, gzip;q=0": false, "gzip;q=0, *": false,
		"gzip;q=0.001": true, "gzip;q=abc": false, " gzip ;q=0.5": true, "gzipx": false,
	} {
		if got := AcceptsGzip(h); got != want {
			t.Errorf("AcceptsGzip(%q) = %v", h, got)
		}
	}
}
