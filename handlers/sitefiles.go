package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// faviconMaxAge is how long a browser keeps /favicon.ico before it asks
// again (with its ETag): the address cannot carry a content hash as
// /static names do, so a changed icon shows within a day.
const faviconMaxAge = 24 * time.Hour

// robotsTxt keeps well-behaved crawlers off the account pages and the API
// (a crawler following an emailed link must not use it up). "/$" is the
// home page alone (RFC 9309 §2.2.3). Each page also says noindex
// (X-Robots-Tag, setPageHeaders) for crawlers that arrive anyway; a
// crawler that obeys this file never fetches a page, so an address linked
// from elsewhere can still be listed, without its content.
const robotsTxt = `User-agent: *
Disallow: /$
Disallow: /login
Disallow: /signup
Disallow: /logout
Disallow: /check-email
Disallow: /verified
Disallow: /sessions
Disallow: /reset-password
Disallow: /request-password-reset
Disallow: /auth/
Disallow: /link/
Disallow: /unlink/
Disallow: /account
Disallow: /api/
`

// registerSiteFiles adds the files browsers and crawlers ask for by a fixed
// name: /favicon.ico and /robots.txt.
func (h *Handler) registerSiteFiles(e *echo.Echo) {
	e.GET("/favicon.ico", h.handleFavicon)
	e.GET("/robots.txt", handleRobots)
}

// handleFavicon serves the app's icon as an ICO (static/favicon.ico, made
// from icon.svg), for the request every browser makes on a first visit.
func (h *Handler) handleFavicon(c echo.Context) error {
	h.assets.ServeAt(c.Response(), c.Request(), "favicon.ico", faviconMaxAge)
	return nil
}

func handleRobots(c echo.Context) error {
	hdr := c.Response().Header()
	hdr.Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
	hdr.Set(echo.HeaderContentLength, strconv.Itoa(len(robotsTxt)))
	hdr.Set(echo.HeaderCacheControl, "public, max-age=86400")
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write([]byte(robotsTxt))
	return err
}
