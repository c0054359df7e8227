package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// renderErrorPage answers a failed page request. (Owned by the pages work; replaced by the templ error page there.)
func (h *Handler) renderErrorPage(c echo.Context, status int, message string) error {
	return c.String(status, http.StatusText(status)+": "+message)
}
