package handlers

import "github.com/labstack/echo/v4"

// registerAPIReset adds reset, reset-password, verify and confirm. (Owned by the mail work; filled in there.)
func (h *Handler) registerAPIReset(g *echo.Group) {}
