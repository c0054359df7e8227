// Package handlers is the HTTP face of Latchkey: the LoopBack-compatible
// JSON API under /api/users and the HTML pages. It holds no SQL and no SMTP:
// every action is a models.Users method.
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/oauth"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/static"
	"github.com/latchkey/latchkey/views"
)

// Options are the dependencies and settings of the handlers.
type Options struct {
	Users          *models.Users
	Log            *slog.Logger
	BaseURL        string // public URL; links and the cookie's Secure flag come from it
	SecureCookies  bool   // base URL is https
	CORSOrigins    []string
	TrustedProxies []netip.Prefix
	BodyLimit      string // e.g. "1M"
	AccessLog      bool   // one log line per request
	// MailStats, when set, adds the outbox counts to /healthz.
	MailStats func(context.Context) (models.OutboxStats, error)
	// Outbox, when set, is the mail queue the admin pages list dead mail
	// from and retry it in.
	Outbox *models.Outbox
	// Ping checks the database for /healthz (models.DB.Ping).
	Ping func(context.Context) error
	// FeedUp, when set, reports whether this replica hears the others'
	// changes (models.DB.FeedUp); /healthz says "cache": "bypassed" when
	// it does not.
	FeedUp func() bool
	// Providers are the third-party sign-in providers (an
	// oauth.Registry); nil: none.
	Providers Providers
	// Observer, when set, hears of every request once it is answered
	// (boot's Prometheus metrics); nil: nothing is observed.
	Observer RequestObserver
	// Assets are the static files with the brand's logo and stylesheet
	// (boot); nil: the embedded files alone.
	Assets *static.Assets
	// Brand is the app's name, logo and colour on the pages; the zero
	// Brand is Latchkey's.
	Brand views.Brand
}

// RequestObserver hears of each answered request. It is called on every
// request, so it must be cheap and safe for concurrent use.
type RequestObserver interface {
	// ObserveRequest: route is the pattern of the route that served the
	// request (/api/users/:id) or UnmatchedRoute, never the raw path;
	// method a standard method or OTHER; status the code sent; elapsed
	// the time from routing to the answer written.
	ObserveRequest(route, method string, status int, elapsed time.Duration)
}

// Providers is the set of configured third-party sign-in providers.
type Providers interface {
	Get(id string) (oauth.Provider, bool)
	List() []oauth.Provider
}

// Handler serves every route. Build it with New; its settings are the
// Options it was given, with defaults filled in.
type Handler struct {
	Options
	assets   *static.Assets  // the embedded stylesheet and icons, with their hashed names
	gzipPool *sync.Pool      // gzip writers for the API's answers (compress.go)
	routes   map[string]bool // every route's pattern, set by Register (routeOf)
	// openAPIETag and explorer are made once from the embedded OpenAPI
	// document (openapi.go, explorer.go).
	openAPIETag string
	explorer    views.APIReference
	// origins keeps each ready provider's authorization origin for the
	// pages' CSP (authOrigin): provider id → origin.
	origins sync.Map
}

// New returns a Handler with defaults filled in.
func New(o Options) *Handler {
	assets := o.Assets
	if assets == nil {
		assets = static.MustLoad()
	}
	h := &Handler{Options: o, assets: assets, gzipPool: newGzipPool(), openAPIETag: openAPIETag()}
	ref, err := buildExplorer([]byte(openAPIJSON))
	if err != nil {
		panic("handlers: the embedded OpenAPI document: " + err.Error())
	}
	h.explorer = ref
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	if h.Ping == nil {
		// Built without a store check (benchmarks, fuzzing): /healthz
		// then speaks for the process only. boot always sets Ping.
		h.Ping = func(context.Context) error { return nil }
	}
	if h.BodyLimit == "" {
		h.BodyLimit = "1M"
	}
	return h
}
