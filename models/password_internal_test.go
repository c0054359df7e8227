package models

import (
	"context"
	"errors"
	"testing"
)

// TestHashingPoolBounded: when every worker is busy and the queue is full,
// a hash is refused with ErrHashingBusy instead of piling up. The test holds
// the one worker itself, so nothing depends on timing: of the two hashes
// that then arrive, whichever comes second finds the queue's one place
// taken and is refused at once, and the other waits for the worker.
func TestHashingPoolBounded(t *testing.T) {
	t.Parallel()
	h := NewHasher(HashConfig{BcryptCost: 4, Workers: 1, Queue: 1})
	ctx := context.Background()
	if err := h.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.Hash(ctx, "password")
			results <- err
		}()
	}
	// Nothing can finish a hash while the worker is held: the first answer
	// is the refusal.
	if err := <-results; !errors.Is(err, ErrHashingBusy) {
		t.Fatalf("with the worker busy and the queue full: %v, want ErrHashingBusy", err)
	}
	h.release()
	if err := <-results; err != nil {
		t.Fatalf("the queued hash, once the worker is free: %v", err)
	}
}
