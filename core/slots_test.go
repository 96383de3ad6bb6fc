package core

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:18 the slots never let more calls run than the limit, and every
// waiter gets a slot as they come free: many goroutines taking and giving
// back 3 slots, most of them waiting, all finish.
func TestCallSlotsLimitAndWake(t *testing.T) {
	var s callSlots
	s.init(3)
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				if s.acquire(context.Background(), nil) != slotTaken {
					t.Error("acquire failed")
					return
				}
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				running.Add(-1)
				s.release()
			}
		})
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(testwait.Timeout):
		t.Fatalf("waiters stuck with %d slots taken, %d waiting", s.inUse(), s.waiting.Load())
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d calls held slots at once, limit 3", p)
	}
	if s.inUse() != 0 {
		t.Fatalf("%d slots taken after all released", s.inUse())
	}
}

// spec:18 n slots freed while n callers wait parked: each gets one, for
// one waiter and for two (the second release may find the first one's
// wake-up still unread).
func TestCallSlotsParkedWaiters(t *testing.T) {
	for _, n := range []int{1, 2} {
		for range 20 {
			var s callSlots
			s.init(n)
			for range n {
				s.tryAcquire()
			}
			got := make(chan slotWait, n)
			for range n {
				go func() { got <- s.acquire(context.Background(), nil) }()
			}
			testwait.Blocked(t, "core.(*callSlots).acquire", n)
			for range n {
				s.release()
			}
			for range n {
				select {
				case w := <-got:
					if w != slotTaken {
						t.Fatalf("waiter got %v", w)
					}
				case <-time.After(testwait.Timeout):
					t.Fatalf("%d waiters: a free slot was left with a caller waiting", n)
				}
			}
		}
	}
}

// A waiter is released by its context and by the connection's end.
func TestCallSlotsWaitEnds(t *testing.T) {
	var s callSlots
	s.init(1)
	s.tryAcquire()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w := s.acquire(ctx, nil); w != slotCancelled {
		t.Fatalf("cancelled wait: %v", w)
	}
	down := make(chan struct{})
	close(down)
	if w := s.acquire(context.Background(), down); w != slotDown {
		t.Fatalf("wait on a closed connection: %v", w)
	}
	if s.waiting.Load() != 0 || s.inUse() != 1 {
		t.Fatalf("waiting %d, in use %d", s.waiting.Load(), s.inUse())
	}
}

// spec:18 releases while callers have counted themselves as waiting but
// not yet parked (the window between their last try and their wait):
// each freed slot leaves a token, none is dropped, so none of those
// callers can park with a slot free and nobody to wake it.
func TestCallSlotsTokenPerFreedSlot(t *testing.T) {
	var s callSlots
	s.init(3)
	for range 3 {
		s.tryAcquire()
	}
	s.waiting.Add(3) // three callers past their last try, about to wait
	for range 3 {
		s.release()
	}
	if n := len(s.room); n != 3 {
		t.Fatalf("%d tokens for 3 freed slots and 3 callers about to wait", n)
	}
}
