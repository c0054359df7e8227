package oauth

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// defaultTimeout bounds each request to a provider when NewRegistry is
// given no client.
const defaultTimeout = 15 * time.Second

// Registry holds the configured providers, sorted by ID. It does not
// change after it is built; only the OIDC providers' readiness does.
type Registry struct {
	list []Provider
}

// Option tunes NewRegistry.
type Option func(*options)

type options struct {
	minRetry, maxRetry time.Duration
}

// WithRetry sets the wait after a failed discovery (first) and the most it
// doubles to (limit). The default is 1s doubling to 1 min.
func WithRetry(first, limit time.Duration) Option {
	return func(o *options) { o.minRetry, o.maxRetry = first, max(first, limit) }
}

// NewRegistry builds the providers in s. Each OIDC provider runs discovery
// in the background until it succeeds or ctx ends, logging each failure
// and waiting longer after each (1s doubling to 1 min): until then it is
// not Ready and the server works without it. The OAuth2 presets are ready
// at once. client (nil: one with a 15 s timeout) makes every request;
// response bodies are bounded to 1 MiB.
func NewRegistry(ctx context.Context, s []Settings, client *http.Client, log *slog.Logger, opts ...Option) *Registry {
	o := options{minRetry: time.Second, maxRetry: time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client = boundedClient(client)
	var ps []Provider
	for _, st := range s {
		if st.Kind != "oidc" && st.Kind != "google" {
			ps = append(ps, newPreset(st, client))
			continue
		}
		p := &oidcProvider{s: st, client: client}
		go p.discoverUntilReady(ctx, log, o)
		ps = append(ps, p)
	}
	return NewRegistryOf(ps...)
}

// NewRegistryOf is a registry of ps, as they are: for tests.
func NewRegistryOf(ps ...Provider) *Registry {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b Provider) int { return cmp.Compare(a.ID(), b.ID()) })
	return &Registry{list: ps}
}

// Get returns the provider with this id, ready or not.
func (r *Registry) Get(id string) (Provider, bool) {
	i, ok := slices.BinarySearchFunc(r.list, id, func(p Provider, id string) int { return cmp.Compare(p.ID(), id) })
	if !ok {
		return nil, false
	}
	return r.list[i], true
}

// List returns every configured provider, ready or not, sorted by ID.
func (r *Registry) List() []Provider { return slices.Clone(r.list) }

func (p *oidcProvider) discoverUntilReady(ctx context.Context, log *slog.Logger, o options) {
	wait := o.minRetry
	for {
		err := p.discover(ctx)
		if err == nil {
			log.Info("oauth: provider ready", "provider", p.s.ID, "issuer", p.s.Issuer)
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("oauth: discovery failed; the provider stays hidden until it works",
			"provider", p.s.ID, "issuer", p.s.Issuer, "err", detail(err), "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, o.maxRetry)
	}
}
