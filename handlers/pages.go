package handlers

import "github.com/labstack/echo/v4"

// registerPages adds the HTML pages. (Owned by the pages work; filled in there.)
func (h *Handler) registerPages(e *echo.Echo) {}
