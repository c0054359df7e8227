package handlers

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// openAPIJSON is the OpenAPI 3.1 description of every /api route: the one
// source of truth for /api/openapi.json and /explorer, and what every API
// handler test's answer is validated against (setup_test.go), so it cannot
// drift from the handlers. Edit the file, not a copy of it.
//
//go:embed openapi.json
var openAPIJSON string

// OpenAPIJSON returns the OpenAPI document served at /api/openapi.json.
func OpenAPIJSON() string { return openAPIJSON }

// openAPIMaxAge is how long a client may keep the document without asking
// again; after that it revalidates with its ETag (a 304 costs nothing). The
// document changes only with a new binary.
const openAPIMaxAge = "public, max-age=300"

// openAPIETag is the document's strong ETag: a hash of its bytes.
func openAPIETag() string {
	sum := sha256.Sum256([]byte(openAPIJSON))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// handleOpenAPI is GET /api/openapi.json: the document, cacheable (unlike
// the rest of /api, which is no-store), with an ETag.
func (h *Handler) handleOpenAPI(c echo.Context) error {
	hdr := c.Response().Header()
	hdr.Set(echo.HeaderCacheControl, openAPIMaxAge)
	hdr.Set("ETag", h.openAPIETag)
	if etagMatches(c.Request().Header.Get("If-None-Match"), h.openAPIETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return writeRaw(c, http.StatusOK, []byte(openAPIJSON))
}

// etagMatches reports whether an If-None-Match value names etag (or is *).
// The comparison is weak, as RFC 9110 §13.1.2 has it for If-None-Match.
func etagMatches(inm, etag string) bool {
	for _, v := range strings.Split(inm, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}
