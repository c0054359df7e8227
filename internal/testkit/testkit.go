// Package testkit holds small helpers that tests in several packages share:
// a settable clock and a log buffer, both safe for concurrent use (a server
// under test reads the clock and writes its log from its own goroutines).
package testkit

import (
	"bytes"
	"sync"
	"time"
)

// Clock is a settable clock: Now returns the time it was made with, moved on
// only by Advance. Pass its Now method wherever the code under test takes a
// func() time.Time. The zero Clock stands at the zero time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at t until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d (back, if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// SyncBuffer collects what is written to it, e.g. a server's log, and
// returns it all with String. The zero SyncBuffer is empty and ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
