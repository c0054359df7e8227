package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// addHeadRoutes gives every GET route without a HEAD route of its own a
// HEAD route that runs the same handler, middleware included (Echo v4
// bakes a route's and its group's middleware into the handler it stores).
// RFC 9110 §9.3.2: HEAD is GET without the body; load balancers, uptime
// monitors and link checkers use it. Express did the same for LoopBack.
// Routes with their own HEAD keep it: the API's HEAD /api/users/:id is
// LoopBack's "exists", not a GET. Register calls it once, after every
// route is added, so no route can forget it.
func addHeadRoutes(e *echo.Echo) {
	hasHead := map[string]bool{}
	var gets []string
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodHead:
			hasHead[r.Path] = true
		case http.MethodGet:
			gets = append(gets, r.Path)
		}
	}
	c := e.NewContext(nil, nil)
	for _, p := range gets {
		if hasHead[p] {
			continue
		}
		hasHead[p] = true
		// The route's own pattern, looked up as a path, finds the route
		// itself (":id" is a value of the parameter, "*" of the wildcard).
		e.Router().Find(http.MethodGet, p, c)
		if c.Path() != p {
			panic("handlers: HEAD for GET " + p + " found the route " + c.Path())
		}
		e.Add(http.MethodHead, p, c.Handler())
	}
}

// dropHeadBody makes every answer to HEAD bodiless in one place: the
// handler runs as for GET and sets the same headers (Content-Length
// included), and the body it writes goes nowhere. net/http drops a HEAD
// body too, but only on a real connection; this also holds for
// httptest and for anything that wraps the writer.
func dropHeadBody(c echo.Context) {
	if c.Request().Method == http.MethodHead {
		res := c.Response()
		res.Writer = headWriter{res.Writer}
	}
}

// headWriter is a ResponseWriter that keeps headers and drops the body.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// Unwrap lets http.ResponseController reach the connection (Flush).
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
