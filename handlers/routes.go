package handlers

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Register installs the error handler, the middleware and every route on e.
// The API routes mirror LoopBack 3's User remote methods; the pages mirror
// the boot script of loopback-example-user-management.
func (h *Handler) Register(e *echo.Echo) {
	e.HTTPErrorHandler = h.HandleError
	e.IPExtractor = h.ipExtractor()

	e.Pre(h.prelude)
	if h.AccessLog || h.Observer != nil {
		e.Use(h.finish)
	}
	e.Use(h.recoverPanics, secureHeaders, middleware.BodyLimit(h.BodyLimit))

	e.GET("/healthz", h.handleHealth)

	api := e.Group("/api")
	if len(h.CORSOrigins) > 0 {
		// An allow-list without credentials; with no origins configured no
		// CORS header is sent at all (Echo's default would allow "*").
		api.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:     h.CORSOrigins,
			AllowMethods:     []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodPost, http.MethodDelete},
			AllowHeaders:     []string{"Content-Type", "Authorization", "X-Access-Token"},
			AllowCredentials: false,
			MaxAge:           86400,
		}))
	}
	api.GET("/openapi.json", h.handleOpenAPI) // the document /explorer shows (openapi.go)
	users := api.Group("/users")
	users.POST("", h.handleAPICreate)
	users.POST("/login", h.handleAPILogin)
	users.POST("/login/mfa", h.handleAPILoginMFA)
	users.POST("/logout", h.handleAPILogout)
	users.POST("/change-password", h.handleAPIChangePassword)
	users.GET("/:id", h.handleAPIGetUser)
	users.HEAD("/:id", h.handleAPIDenied)
	users.PATCH("/:id", h.handleAPIPatchUser)
	users.PUT("/:id", h.handleAPIReplaceUser)
	users.POST("/:id/replace", h.handleAPIReplaceUser)
	users.DELETE("/:id", h.handleAPIDeleteUser)
	// Denied to everyone by the User ACLs, as LoopBack denies them.
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, ""}, {http.MethodHead, ""}, {http.MethodPut, ""}, {http.MethodPatch, ""},
		{http.MethodGet, "/count"}, {http.MethodGet, "/findone"}, {http.MethodPost, "/update"},
		{http.MethodPost, "/replaceorcreate"}, {http.MethodPost, "/upsertwithwhere"},
		{http.MethodGet, "/change-stream"}, {http.MethodPost, "/change-stream"},
		{http.MethodGet, "/:id/exists"},
		{http.MethodGet, "/:id/accesstokens"}, {http.MethodPost, "/:id/accesstokens"}, {http.MethodDelete, "/:id/accesstokens"},
		{http.MethodGet, "/:id/accesstokens/count"},
		{http.MethodGet, "/:id/accesstokens/:fk"}, {http.MethodPut, "/:id/accesstokens/:fk"}, {http.MethodDelete, "/:id/accesstokens/:fk"},
	} {
		users.Add(r.method, r.path, h.handleAPIDenied)
	}
	h.registerAPIReset(users)
	h.registerAPISessions(users)
	h.registerAPIIdentities(users)
	users.Any("/*", notFound)
	api.Any("/*", notFound)
	api.Any("", notFound)

	h.registerPages(e)
	h.registerSiteFiles(e)
	addHeadRoutes(e)
	h.routes = routePatterns(e)
}

// routePatterns are the paths of every route of e (routeOf).
func routePatterns(e *echo.Echo) map[string]bool {
	out := map[string]bool{}
	for _, r := range e.Routes() {
		out[r.Path] = true
	}
	return out
}

func notFound(c echo.Context) error { return echo.ErrNotFound }

// handleHealth answers 200 when the database answers a read, and 503 with
// Retry-After when it does not (a load balancer then sends traffic to
// another replica). On PostgreSQL it also says when this replica's change
// feed is down and its auth cache therefore bypassed (still correct, slower).
func (h *Handler) handleHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	body := map[string]any{"status": "ok"}
	if h.FeedUp != nil && !h.FeedUp() {
		body["cache"] = "bypassed"
	}
	if err := h.Ping(ctx); err != nil {
		h.reqLog(c).Warn("health check failed", "err", err)
		c.Response().Header().Set("Retry-After", "5")
		body["status"] = "unavailable"
		return writeJSON(c, http.StatusServiceUnavailable, body)
	}
	if h.MailStats != nil {
		// Mail that cannot get out is worth seeing from the outside, but it
		// does not make the service unhealthy: requests are still answered.
		if st, err := h.MailStats(ctx); err == nil {
			body["mail"] = map[string]int64{"pending": st.Pending, "retrying": st.Retrying, "dead": st.Dead}
			body["webhooks"] = map[string]int64{"pending": st.Webhooks.Pending, "retrying": st.Webhooks.Retrying, "dead": st.Webhooks.Dead}
		}
	}
	return writeJSON(c, http.StatusOK, body)
}

// ipExtractor believes X-Forwarded-For only from the configured proxies;
// without any, the client is the peer address.
func (h *Handler) ipExtractor() echo.IPExtractor {
	if len(h.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range h.TrustedProxies {
		if _, ipnet, err := net.ParseCIDR(p.String()); err == nil {
			opts = append(opts, echo.TrustIPRange(ipnet))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
