// Package static holds the stylesheet, the icons and the passkeys script,
// embedded in the binary and served under /static with content-hashed
// names, so a long cache is safe: a changed file gets a new name.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

//go:generate go run favicon_gen.go

//go:embed *.css *.svg *.ico *.js
var files embed.FS

// types are the content types of the files here, spelled out rather than
// read from the system's mime.types, which differs between machines and
// is missing from minimal images.
var types = map[string]string{
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
	".ico": "image/x-icon",
	".js":  "text/javascript; charset=utf-8",
	".png": "image/png",
}

// File is a file served beside the embedded ones, made at start-up: the
// brand's logo and stylesheet (boot).
type File struct {
	Name string // "logo.png", "brand.css"
	Body []byte
}

// gzipMin is the smallest file worth compressing: below about 1 KiB the
// gzip header and trailer (18 bytes) and the Content-Encoding and Vary
// headers eat most of what is saved, and the answer fits in one packet
// either way.
const gzipMin = 1024

// Prefix is where the assets are served.
const Prefix = "/static/"

// Assets maps each embedded file to its versioned URL and serves both names.
// It is built once at start-up and never changes afterwards.
type Assets struct {
	byName   map[string]asset // "style.css"
	byHashed map[string]asset // "style.1a2b3c4d5e.css"
}

type asset struct {
	name, hashed string
	body         []byte
	etag         string
	ctype        string
	// gz is body gzipped once at load, for clients that accept it; nil
	// for files too small to gain, or that do not compress (the ICO holds
	// PNGs).
	gz     []byte
	gzETag string
}

// Load reads the embedded files, adds extra (which replace an embedded
// file of the same name) and computes their versioned names.
func Load(extra ...File) (*Assets, error) {
	a := &Assets{byName: map[string]asset{}, byHashed: map[string]asset{}}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, err
		}
		if err := a.add(e.Name(), body); err != nil {
			return nil, err
		}
	}
	for _, f := range extra {
		if old, ok := a.byName[f.Name]; ok {
			delete(a.byHashed, old.hashed)
		}
		if err := a.add(f.Name, f.Body); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// add serves body as name and under its versioned name.
func (a *Assets) add(name string, body []byte) error {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:5])
	ext := path.Ext(name)
	ct, ok := types[ext]
	if !ok {
		ct = "application/octet-stream"
	}
	x := asset{name: name, hashed: strings.TrimSuffix(name, ext) + "." + h + ext, body: body,
		etag: `"` + h + `"`, ctype: ct}
	if (ext == ".css" || ext == ".svg") && len(body) > gzipMin {
		gz, err := gzipBytes(body)
		if err != nil {
			return err
		}
		if len(gz) < len(body) {
			// A representation of its own, so its own ETag (RFC 9110 §8.8.3).
			x.gz, x.gzETag = gz, `"`+h+`-gz"`
		}
	}
	a.byName[x.name] = x
	a.byHashed[x.hashed] = x
	return nil
}

// MustLoad is Load for start-up code; the files are compiled in, so an error
// is a build mistake.
func MustLoad() *Assets {
	a, err := Load()
	if err != nil {
		panic("static: " + err.Error())
	}
	return a
}

// URL returns the versioned path of a file ("/static/style.1a2b3c4d5e.css"),
// or the plain path when the file is unknown.
func (a *Assets) URL(name string) string {
	if x, ok := a.byName[name]; ok {
		return Prefix + x.hashed
	}
	return Prefix + name
}

// Has reports whether name (a plain or versioned file name) is served.
func (a *Assets) Has(name string) bool {
	_, hashed := a.byHashed[name]
	_, plain := a.byName[name]
	return hashed || plain
}

// ServeHTTP serves a file named by the rest of the path after Prefix.
// Versioned names are cached for a year and marked immutable; plain names
// must be revalidated (ETag). Anything else is 404.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	x, immutable := a.byHashed[name]
	if !immutable {
		var ok bool
		if x, ok = a.byName[name]; !ok {
			http.NotFound(w, r)
			return
		}
	}
	cache := "no-cache"
	if immutable {
		cache = "public, max-age=31536000, immutable"
	}
	x.serve(w, r, cache)
}

// ServeAt serves the file name at a fixed address outside Prefix, such as
// /favicon.ico, which browsers fetch by that name unprompted. The name
// cannot change with the content, so it is cached for maxAge and then
// revalidated with its ETag.
func (a *Assets) ServeAt(w http.ResponseWriter, r *http.Request, name string, maxAge time.Duration) {
	x, ok := a.byName[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	x.serve(w, r, "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
}

// serve answers GET or HEAD with the file, gzipped when it has a gzipped
// form and the client accepts one (http.ServeContent does conditional
// requests and ranges, over the representation chosen).
func (x asset) serve(w http.ResponseWriter, r *http.Request, cache string) {
	hdr := w.Header()
	hdr.Set("Content-Type", x.ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", cache)
	if x.ctype == "image/svg+xml" {
		// An SVG opened on its own is a document of this origin: the
		// operator's logo (LATCHKEY_LOGO) must not run script here.
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	}
	body, etag := x.body, x.etag
	if x.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if AcceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = x.gz, x.gzETag
			hdr.Set("Content-Encoding", "gzip")
			// ServeContent leaves Content-Length out when Content-Encoding
			// is set (it fears on-the-fly compressors); these bytes are the
			// whole answer. For a range it sets the range's own length.
			hdr.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	hdr.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// gzipBytes compresses b at the best ratio: done once per file at start-up.
func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// AcceptsGzip reports whether an Accept-Encoding header value accepts gzip
// (RFC 9110 §12.5.3): "gzip" or "x-gzip" or "*" with a q-value above 0; an
// explicit "gzip;q=0" refuses it even after "*".
func AcceptsGzip(header string) bool {
	if header == "" {
		return false
	}
	gzip, star := -1, -1 // -1: not named; 0: refused; 1: accepted
	for rest := header; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.TrimSpace(coding)
		ok := 1
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || q <= 0 {
					ok = 0
				}
			}
		}
		switch {
		case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
			gzip = ok
		case coding == "*":
			star = ok
		}
	}
	if gzip >= 0 {
		return gzip == 1
	}
	return star == 1
}
