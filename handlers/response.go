package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// jsonContentType is what LoopBack sends with every JSON answer.
const jsonContentType = "application/json; charset=utf-8"

// hdrJSON is jsonContentType as a header value, shared like the security
// headers' (middleware.go): one allocation less per answer.
var hdrJSON = []string{jsonContentType}

// writeJSON encodes v as the whole response.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	return writeRaw(c, status, b)
}

// writeRaw writes already-encoded JSON, gzipped when large enough and
// asked for (compressJSON).
func writeRaw(c echo.Context, status int, b []byte) error {
	h := c.Response().Header()
	h[echo.HeaderContentType] = hdrJSON
	b = compressJSON(c, b)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(b)
	return err
}

// noContent is LoopBack's 204 for void methods.
func noContent(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderContentType, jsonContentType)
	return c.NoContent(http.StatusNoContent)
}

// jsonMarshal encodes without HTML escaping and without a trailing newline.
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
