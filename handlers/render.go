package handlers

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/views"
)

// pageCSP allows the site's own styles, images and form targets, and its
// own script files (static/passkeys.js, which asks its own origin for a
// passkey ceremony's options): no inline script, no eval. Every page works
// without the script; it only adds passkeys. %s is where forms may go
// besides 'self' (see formActions).
const pageCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'%s; frame-ancestors 'none'; base-uri 'none'"

// setPageHeaders adds what every HTML page sends on top of the common
// security headers: the CSP, no-store, since pages carry a CSRF token and
// often account data (the Back button after logout must not show them),
// and noindex: every page is an account page, none belongs in a search
// engine (robotsTxt).
func (h *Handler) setPageHeaders(c echo.Context) {
	hd := c.Response().Header()
	hd.Set("Content-Security-Policy", strings.Replace(pageCSP, "%s", h.formActions(), 1))
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set(echo.HeaderCacheControl, "no-store")
	hd.Set("X-Robots-Tag", "noindex")
}

// pageHeaders is setPageHeaders as middleware for the page routes.
func (h *Handler) pageHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h.setPageHeaders(c)
		return next(c)
	}
}

// formActions is " origin origin…": the origins of the ready providers'
// authorization endpoints. A "Continue with …" (or "Link …", "Confirm
// with …") button is a form posting to /auth/<id> or /link/<id>, which
// answers with a redirect to the provider, and browsers check
// form-action on every redirect of a form submission (Chromium blocks
// the navigation otherwise): 'self' alone would stop every sign-in at
// the provider's door.
func (h *Handler) formActions() string {
	if h.Providers == nil {
		return ""
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, pr := range h.Providers.List() {
		if !pr.Ready() {
			continue
		}
		origin := h.authOrigin(pr)
		if origin != "" && !seen[origin] {
			seen[origin] = true
			b.WriteString(" " + origin)
		}
	}
	return b.String()
}

// authOrigin is the origin of a ready provider's authorization endpoint,
// worked out once (a throwaway flow's URL) and kept: it never changes once
// discovery has succeeded, and every page's CSP needs it.
func (h *Handler) authOrigin(pr oauth.Provider) string {
	if v, ok := h.origins.Load(pr.ID()); ok {
		return v.(string)
	}
	to, err := pr.AuthURL("csp", "csp", strings.Repeat("v", 43))
	if err != nil {
		return ""
	}
	u, err := url.Parse(to)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	origin := u.Scheme + "://" + u.Host
	h.origins.Store(pr.ID(), origin)
	return origin
}

// render writes a templ component with a status. It renders into a buffer
// first, so a failing component becomes a clean 500 instead of half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	// Pages are never compressed, though HTML compresses well: a page
	// carries the CSRF token (constant per cookie in Echo v4, not masked per
	// response) next to reflected input (the email typed into a form), which
	// is what BREACH needs to read the token byte by byte from compressed
	// sizes. Compress pages only once the token is masked per response.
	hdr := c.Response().Header()
	hdr.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	// Set here, so GET is not chunked and HEAD (dropHeadBody) answers
	// with the same length.
	hdr.Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(buf.Bytes())
	return err
}

// errorText is what an error page says for a status. It never shows the
// error itself: causes go to the log.
func errorText(status int) (title, message string) {
	switch status {
	case http.StatusBadRequest:
		return "That request didn't work", "Something in it could not be understood. Go back and try again."
	case http.StatusUnauthorized:
		return "Please log in", "You need to be logged in to see this page."
	case http.StatusForbidden:
		return "This form can't be accepted",
			"It was sent from another site, or the page was open too long and its security token expired. " +
				"For your safety we only accept forms sent from this site's own pages: go back, reload the page and try again."
	case http.StatusNotFound:
		return "Page not found", "There is no page at this address. Check the link, or start again from the home page."
	case http.StatusMethodNotAllowed:
		return "That action isn't available here", "This page can't be used that way. Start again from the home page."
	case http.StatusRequestEntityTooLarge:
		return "That was too much", "What you sent is larger than we accept. Go back and send less."
	case http.StatusUnsupportedMediaType:
		return "That request didn't work", "It was sent in a format this page doesn't accept."
	case http.StatusTooManyRequests:
		return "Too many attempts", "Please wait a little and try again."
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable", "We can't complete this right now. Nothing was lost: please try again in a moment."
	}
	if status >= 500 {
		return "Something went wrong", "We couldn't complete your request. Please try again in a moment."
	}
	return http.StatusText(status), "Go back and try again, or start again from the home page."
}

// renderErrorPage answers a failed page request (the central error handler
// calls it for every non-/api path): the HTML error page in the site's look.
// It is given only the status: the error's text is never shown (errorText).
func (h *Handler) renderErrorPage(c echo.Context, status int) error {
	h.setPageHeaders(c)
	p := views.Page{Asset: h.assets.URL, Wide: true, Brand: h.Brand}
	if s := sessionOf(c); s != nil {
		p.Email = s.User.Email
	}
	if tok, ok := c.Get(ctxCSRF).(string); ok {
		p.CSRF = tok
	}
	title, text := errorText(status)
	p.Title = title
	return render(c, status, views.ErrorPage(p, views.ErrorView{Status: status, Title: title, Message: text,
		Reference: requestID(c)}))
}
