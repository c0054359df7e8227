package models

import (
	"context"
	"sync"
	"time"
)

// inflight counts the login attempts under way, per throttle key (an
// account, a client IP), so that a burst of parallel guesses cannot all
// pass the limiter before the first of their failures is written.
//
// It is per process: each replica keeps its own counts in memory and knows
// nothing of the attempts another replica has under way. The throttle
// counters themselves (failures per account, the per-IP buckets) are rows
// of the throttle table, shared by all replicas; what a guard per process
// leaves open is only the burst: with N replicas, up to N times the
// attempts one replica allows can be in flight at once, and each failure
// still counts once it is recorded.
type inflight struct {
	mu       sync.Mutex
	held     map[string]int
	released chan struct{} // closed (and replaced) whenever an attempt ends
	wait     time.Duration // how long an attempt waits for a slot (LimitConfig.InflightWait)
}

func newInflight(wait time.Duration) *inflight {
	return &inflight{held: map[string]int{}, released: make(chan struct{}), wait: wait}
}

// take holds one slot of each of keys for an attempt. room decides, under
// the guard's one lock, so two attempts cannot both take the last free
// slot: it sees how many slots each key holds now, and either refuses the
// attempt outright (an error), or says whether there is room for one more.
// While there is none, take waits for an attempt to end and asks room
// again, for up to g.wait; then the attempt is throttled after all.
// What take holds, release gives back.
func (g *inflight) take(ctx context.Context, keys [][]byte, room func(held func(key []byte) int) (bool, error)) error {
	deadline := time.NewTimer(g.wait)
	defer deadline.Stop()
	for {
		wait, err := g.try(keys, room)
		if wait == nil {
			return err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return throttled(time.Second, "in-flight")
		}
	}
}

// try is one round of take: nil and room's error, or nil, nil with the
// slots taken, or a channel closed when an attempt ends.
func (g *inflight) try(keys [][]byte, room func(held func(key []byte) int) (bool, error)) (<-chan struct{}, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ok, err := room(func(k []byte) int { return g.held[string(k)] })
	if err != nil {
		return nil, err
	}
	if !ok {
		return g.released, nil
	}
	for _, k := range keys {
		g.held[string(k)]++
	}
	return nil, nil
}

// release gives back one slot of each of keys and wakes the attempts that
// wait for one.
func (g *inflight) release(keys ...[]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		if g.held[string(k)] <= 1 {
			delete(g.held, string(k))
		} else {
			g.held[string(k)]--
		}
	}
	close(g.released)
	g.released = make(chan struct{})
}
