// Package static holds the stylesheet and icons, embedded in the binary and
// served under /static with content-hashed names, so a long cache is safe:
// a changed file gets a new name.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed *.css *.svg
var files embed.FS

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
}

// Load reads the embedded files and computes their versioned names.
func Load() (*Assets, error) {
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
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:5])
		ext := path.Ext(e.Name())
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		if strings.HasPrefix(ct, "text/") && !strings.Contains(ct, "charset") {
			ct += "; charset=utf-8"
		}
		x := asset{name: e.Name(), hashed: strings.TrimSuffix(e.Name(), ext) + "." + h + ext, body: body,
			etag: `"` + h + `"`, ctype: ct}
		a.byName[x.name] = x
		a.byHashed[x.hashed] = x
	}
	return a, nil
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
	hdr := w.Header()
	hdr.Set("Content-Type", x.ctype)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("ETag", x.etag)
	if immutable {
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hdr.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(x.body))
}
