package core

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// Callers that share one context (a worker pool's, a server's run
// context) would each wait with select on its Done channel beside their
// call's own: every wait locks that shared channel twice, and the profile
// of 4 x 256 calls on one context put a fifth of the caller's CPU there.
// A ctxWatch takes the shared channel off the hot path: it is registered
// once per connection with context.AfterFunc (no goroutine while it
// waits), callers wait on their call alone, and when the context ends
// the watch cancels every call of the connection that named it.
//
// A connection keeps up to ctxWatchSlots watches. One is made for a
// Done channel the second time in a row a call brings it (a context per
// call never qualifies, and keeps using select); it lives until its
// context ends or the connection is torn down, which unregisters it, so
// a connection never keeps a context (or a context the connection) beyond
// that. When the slots are taken, other contexts use select.

const ctxWatchSlots = 4

// ctxWatches is a connection's set of watches (see above).
type ctxWatches struct {
	slots [ctxWatchSlots]atomic.Pointer[ctxWatch]
	last  atomic.Uintptr // the Done channel the last select-waiting call brought
}

// ctxWatch cancels the calls of one connection that wait on one context.
type ctxWatch struct {
	c     *conn
	done  <-chan struct{}
	stop  func() bool // unregisters fire; set before the watch is published
	fired atomic.Bool // set by fire before it looks for calls to cancel
}

// chanID identifies a channel without keeping it alive. Two channels may
// share one after a collection; that only makes a watch needlessly.
func chanID(ch <-chan struct{}) uintptr { return uintptr(*(*unsafe.Pointer)(unsafe.Pointer(&ch))) }

// watchFor returns the watch of done (ctx's Done channel), making one if
// this channel qualifies and a slot is free; nil means wait with select.
// Any goroutine.
func (c *conn) watchFor(ctx context.Context, done <-chan struct{}) *ctxWatch {
	ws := &c.watches
	for i := range ws.slots {
		if w := ws.slots[i].Load(); w != nil && w.done == done {
			return w
		}
	}
	if id := chanID(done); ws.last.Swap(id) != id {
		return nil // first sight
	}
	for i := range ws.slots {
		if ws.slots[i].Load() != nil {
			continue
		}
		w := &ctxWatch{c: c, done: done}
		w.stop = context.AfterFunc(ctx, w.fire)
		if !ws.slots[i].CompareAndSwap(nil, w) {
			w.stop()
			return nil // another caller took the slot: select this once
		}
		// fire may have run before w was published (its context ended
		// already), and teardown may have swept the slots meanwhile:
		// either way the slot must not keep w.
		if w.fired.Load() || c.down() != nil {
			c.dropWatch(w)
		}
		return w
	}
	return nil
}

// dropWatch frees w's slot and unregisters it (both idempotent).
func (c *conn) dropWatch(w *ctxWatch) {
	for i := range c.watches.slots {
		c.watches.slots[i].CompareAndSwap(w, nil)
	}
	w.stop()
}

// dropWatches unregisters every watch, at teardown: the calls they would
// cancel are failed by the teardown itself.
func (c *conn) dropWatches() {
	for i := range c.watches.slots {
		if w := c.watches.slots[i].Swap(nil); w != nil {
			w.stop()
		}
	}
}

// fire runs (on a goroutine of context.AfterFunc's) once the context has
// ended: it cancels every sent call that waits on it, as a caller
// waiting with select would (rule 19): Cancel to the peer, ErrCancelled
// to the caller at once, the call's slot kept until the late response.
func (w *ctxWatch) fire() {
	w.fired.Store(true) // calls that join from now on see it and cancel themselves
	c := w.c
	for i := range c.watches.slots {
		c.watches.slots[i].CompareAndSwap(w, nil)
	}
	c.pending.wake(w, func(id uint64, oc *outCall) {
		c.sendSoon(&wire.Message{Kind: wire.KindCancel, Conn: c.id, ID: id})
		oc.err = errWoken
		oc.done <- struct{}{}
	})
}

// errWoken marks, in a woken call's result, that its watch cancelled it.
var errWoken = &CallError{Kind: ErrCancelled}

// awaitWatched waits for the outcome of a sent call whose caller joined
// watch w (and, as its context may already have ended, cancels the call
// itself if fire may have missed it).
func (c *conn) awaitWatched(ctx context.Context, oc *outCall, w *ctxWatch, fn func(Reply) error) error {
	// Publish the watch, then look at fired: either fire's scan sees the
	// watch (fired is stored before the scan) or we see fired.
	oc.watch.Store(w)
	if w.fired.Load() {
		return c.abandonCancelled(ctx, oc, fn)
	}
	<-oc.done
	return c.result(ctx, oc, fn)
}

// leaveWoken is the caller's side of a call its watch cancelled: the
// table still holds the call for the late response, unless it claimed it
// already, in which case the caller frees it.
func (c *conn) leaveWoken(ctx context.Context, oc *outCall) error {
	st := oc.state.Load()
	if st == 0 || !oc.state.CompareAndSwap(st, st&^woken) {
		c.freeCall(oc) // the table claimed it and left it to us
	}
	return &CallError{Kind: ErrCancelled, Cause: ctx.Err()}
}
