package core

import (
	"context"
	"sync/atomic"
)

// callSlots bounds a connection's calls in flight by the peer's limit
// (rule 18). Taking and giving back a slot is one atomic operation each:
// callers on every core share this word, and a channel used as a
// semaphore cost two contended channel locks per call. Only a caller that
// finds every slot taken waits, on room, where a release puts a token
// when someone waits.
//
// No lost wake-up: a waiter counts itself in waiting before it looks at
// used again, and a release gives back its slot before it looks at
// waiting, so either the waiter sees the free slot or the release sees the
// waiter and puts a token in room. room holds up to limit tokens, so a
// token is dropped only when limit of them wait to be read, at least as
// many as there are free slots; each token read is followed by a try. So
// while a slot is free and callers wait, a token waits for one of them.
// (Tokens may go stale, taken slots; a stale one costs one more try.)
type callSlots struct {
	used    atomic.Int64
	waiting atomic.Int64
	limit   int64
	room    chan struct{} // capacity limit (no memory: empty elements); nil until the limit is known
}

func (s *callSlots) init(limit int) {
	s.limit = int64(limit)
	s.room = make(chan struct{}, limit)
}

// ready reports whether init ran (the peer's limit is known).
func (s *callSlots) ready() bool { return s.room != nil }

// inUse returns the slots taken.
func (s *callSlots) inUse() int { return int(s.used.Load()) }

// tryAcquire takes a slot if one is free.
func (s *callSlots) tryAcquire() bool {
	for {
		n := s.used.Load()
		if n >= s.limit {
			return false
		}
		if s.used.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// acquire takes a slot, waiting for one until ctx ends or down closes,
// and says which came first.
func (s *callSlots) acquire(ctx context.Context, down <-chan struct{}) slotWait {
	if s.tryAcquire() {
		return slotTaken
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	for {
		if s.tryAcquire() {
			return slotTaken
		}
		select {
		case <-s.room:
		case <-ctx.Done():
			return slotCancelled
		case <-down:
			return slotDown
		}
	}
}

// slotWait is how acquire ended.
type slotWait uint8

const (
	slotTaken slotWait = iota
	slotCancelled
	slotDown
)

// release gives a slot back.
func (s *callSlots) release() {
	s.used.Add(-1)
	if s.waiting.Load() > 0 {
		select {
		case s.room <- struct{}{}:
		default: // limit tokens wait already
		}
	}
}
