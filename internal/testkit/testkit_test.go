package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance: Now() = %v, want %v", got, want)
	}
	var zero Clock
	if !zero.Now().IsZero() {
		t.Fatalf("zero Clock: Now() = %v, want the zero time", zero.Now())
	}
}

func TestSyncBufferConcurrent(t *testing.T) {
	var b SyncBuffer
	c := NewClock(time.Unix(0, 0))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				fmt.Fprintf(&b, "line %d\n", i)
				c.Advance(time.Second)
				_ = b.String()
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	if got := c.Now(); !got.Equal(time.Unix(800, 0)) {
		t.Fatalf("Now() = %v, want 800 advances of 1s", got)
	}
}
