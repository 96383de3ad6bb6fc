package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// Drain and Close wait until the last counted goroutine is done, however
// the count's drop to zero and the wait interleave: many goroutines
// counted in and out while waiters come and go; every waiter returns once
// the count is zero, and none before.
func TestHandlerCountWait(t *testing.T) {
	for range 200 {
		var h handlerCount
		var wg sync.WaitGroup
		release := make(chan struct{})
		for range 8 {
			if !h.add() {
				t.Fatal("add refused before close")
			}
			wg.Go(func() { <-release; h.done() })
		}
		waited := make(chan error, 3)
		for range 3 {
			go func() { waited <- h.waitIdle(context.Background()) }()
		}
		select {
		case <-waited:
			t.Fatal("a waiter returned while 8 were counted")
		default:
		}
		close(release)
		for range 3 {
			select {
			case err := <-waited:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testwait.Timeout):
				t.Fatal("a waiter was not woken when the count reached zero")
			}
		}
		wg.Wait()
		if err := h.waitIdle(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.close()
		if h.add() {
			t.Fatal("add after close")
		}
	}
}

// A wait ends with its context.
func TestHandlerCountWaitCancelled(t *testing.T) {
	var h handlerCount
	h.add()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.waitIdle(ctx); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
	h.done()
	if err := h.waitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
}
