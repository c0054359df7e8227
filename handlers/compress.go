package handlers

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/static"
)

// What is compressed, and why:
//   - the JSON API's answers of 1 KiB or more, when the client accepts gzip
//     (offerGzip, writeRaw). Smaller ones are sent as they are: most
//     LoopBack answers (a user, a token, an error) are a few hundred bytes,
//     where gzip's 18 bytes of framing and the CPU buy nothing, and a 204
//     has no body at all;
//   - the stylesheet and any SVG over 1 KiB, once at start-up (static);
//   - never the HTML pages: see render.
//
// gzip only. Brotli (andybalholm/brotli, pure Go) makes style.css 1925
// bytes instead of gzip's 2282, once per visitor per year (the file is
// immutable), and adds about 3.6 MB to the binary.

// gzipMinJSON is the smallest JSON answer worth compressing.
const gzipMinJSON = 1024

// gzipJSON marks an /api response whose client accepts gzip, and holds the
// compressors. It passes everything through; writeRaw, which has the whole
// body before the headers go out, asks it to compress.
type gzipJSON struct {
	http.ResponseWriter
	pool *sync.Pool // of *gzip.Writer
}

// Unwrap lets http.ResponseController reach the connection.
func (w *gzipJSON) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// compress returns b gzipped and sets Content-Encoding, or returns b as it
// is when that would not make it smaller.
func (w *gzipJSON) compress(hdr http.Header, b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 2)
	zw := w.pool.Get().(*gzip.Writer)
	defer w.pool.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return b
	}
	if err := zw.Close(); err != nil || buf.Len() >= len(b) {
		return b
	}
	hdr.Set(echo.HeaderContentEncoding, "gzip")
	return buf.Bytes()
}

// newGzipPool returns a pool of gzip writers at the default level: a
// writer holds about 800 KB of tables, so one is never made per answer.
func newGzipPool() *sync.Pool {
	return &sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		return zw
	}}
}

// offerGzip lets writeRaw gzip the answers of /api when the client
// accepts gzip. Everything else passes untouched.
func (h *Handler) offerGzip(c echo.Context) {
	r := c.Request()
	if isAPI(r.URL.Path) && static.AcceptsGzip(r.Header.Get(echo.HeaderAcceptEncoding)) {
		res := c.Response()
		res.Writer = &gzipJSON{ResponseWriter: res.Writer, pool: h.gzipPool}
	}
}

// compressJSON is writeRaw's step: a body large enough is marked as
// varying with Accept-Encoding, and gzipped when offerGzip saw that the
// client accepts it.
func compressJSON(c echo.Context, b []byte) []byte {
	if len(b) < gzipMinJSON {
		return b
	}
	hdr := c.Response().Header()
	hdr.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if w, ok := c.Response().Writer.(*gzipJSON); ok {
		return w.compress(hdr, b)
	}
	return b
}
