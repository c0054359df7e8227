// Package rrproxy is an HTTP reverse proxy that sends each request to the
// next of N backends in turn, for cluster tests: "3 replicas behind any
// round-robin proxy" means no stickiness, so a login on one replica must
// hold on the next, and a rate limit must count across all three.
//
// It is deliberately plain: no retries (a backend that is down answers 502,
// httputil's default, and the next request goes to the next backend), no
// health checks, no affinity.
package rrproxy

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
)

// BackendHeader is the response header naming the index (0-based, in New's
// order) of the backend that served the request, so that a test can prove
// requests were spread. It is set even when the backend could not be
// reached.
const BackendHeader = "X-Rrproxy-Backend"

// Proxy is an http.Handler that spreads requests over its backends.
type Proxy struct {
	backends  []*httputil.ReverseProxy
	transport *http.Transport // its own, so one test's idle connections are not another's
	next      atomic.Uint64   // requests routed so far
}

// New returns a proxy in front of backends, base URLs such as
// "http://127.0.0.1:8080". It panics on none, or on one that is not an
// absolute http(s) URL: a test's setup is wrong.
func New(backends ...string) *Proxy {
	if len(backends) == 0 {
		panic("rrproxy: no backends")
	}
	p := &Proxy{transport: http.DefaultTransport.(*http.Transport).Clone()}
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			panic(fmt.Sprintf("rrproxy: backend %q: want a base URL such as http://127.0.0.1:8080", b))
		}
		p.backends = append(p.backends, &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				// The app builds links from its Host, which must be the one
				// the client asked for, not the backend's address.
				r.Out.Host = r.In.Host
				// X-Forwarded-For carries the client's address; any the
				// client sent was dropped (httputil's Rewrite default), as a
				// proxy the app trusts must do.
				r.SetXForwarded()
			},
			Transport: p.transport,
			// A backend that is down answers 502; that is the test's to
			// judge, not a line on the test's output.
			ErrorLog: log.New(io.Discard, "", 0),
		})
	}
	return p
}

// ServeHTTP sends r to the next backend in turn.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := (p.next.Add(1) - 1) % uint64(len(p.backends))
	w.Header().Set(BackendHeader, strconv.FormatUint(i, 10))
	p.backends[i].ServeHTTP(w, r)
}

// Start serves the proxy on a free loopback port until t ends, and returns
// its base URL ("http://127.0.0.1:port").
func (p *Proxy) Start(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(p)
	return p.serve(t, srv)
}

// StartOn serves the proxy on ln, a listener the test opened before the
// backends started (so that they could be told the proxy's URL, their
// LATCHKEY_BASE_URL), until t ends, and returns its base URL.
func (p *Proxy) StartOn(t testing.TB, ln net.Listener) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(p)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return p.serve(t, srv)
}

func (p *Proxy) serve(t testing.TB, srv *httptest.Server) string {
	t.Cleanup(func() {
		srv.Close()
		p.transport.CloseIdleConnections()
	})
	return srv.URL
}
