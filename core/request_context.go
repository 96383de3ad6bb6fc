package core

import (
	"context"
	"time"
)

// ctxMore is the part of a Request's context that few handlers use: the
// deadline timer (armed by Done) and the callbacks AfterFunc registered.
// It is made on first need, so that a Request stays 128 bytes, one size
// class: a pool handler's call allocates nothing else. A Request that has
// one is never reused (recycle): its timer may still fire, and its
// callbacks may still run or be stopped, after the handler returned.
type ctxMore struct {
	timer *time.Timer
	after []afterFunc  // registered, not yet started or stopped (Request.mu)
	seq   uint64       // the last afterFunc's id
	one   [1]afterFunc // after's first backing array: most handlers derive one context at a time
}

// afterFunc is one callback AfterFunc registered; id tells it apart for
// its stop function.
type afterFunc struct {
	id uint64
	f  func()
}

// moreLocked returns r.more, made if need be.
func (r *Request) moreLocked() *ctxMore {
	if r.more == nil {
		r.more = new(ctxMore)
	}
	return r.more
}

// AfterFunc arranges for f to run, on a goroutine of its own, once the
// request's context ends (the caller cancelled, the deadline passed, the
// connection closed, or the handler returned); if it has ended already, f
// starts now. The stop function unregisters f: it returns true if it
// stopped f from running, false if f has started or was stopped already.
// Both are safe from any goroutine.
//
// It is the method context.AfterFunc and context.WithCancel, WithTimeout
// and WithDeadline look for on a parent: a context derived from a Request
// costs no goroutine (without it, each derived context would start one to
// watch the Request's Done). A context the handler wraps first with
// context.WithValue hides the method, as Go's own value contexts do.
func (r *Request) AfterFunc(f func()) (stop func() bool) {
	r.mu.Lock()
	if r.doneCh == nil {
		// Arm the deadline timer and the teardown watch, as a waiter on
		// Done needs. (A derived context has called Done already.)
		r.mu.Unlock()
		r.Done()
		r.mu.Lock()
	}
	if r.err != nil {
		r.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	x := r.moreLocked()
	if x.after == nil {
		x.after = x.one[:0]
	}
	x.seq++
	id := x.seq
	x.after = append(x.after, afterFunc{id, f})
	r.mu.Unlock()
	return func() bool { return r.stopAfter(id) }
}

// stopAfter unregisters AfterFunc's callback id, if it has not started.
// Derived contexts are mostly cancelled last first (defer cancel()), so
// the search starts from the end.
func (r *Request) stopAfter(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	after := r.more.after
	for i := len(after) - 1; i >= 0; i-- {
		if after[i].id == id {
			copy(after[i:], after[i+1:])
			after[len(after)-1] = afterFunc{} // drop f's reference
			r.more.after = after[:len(after)-1]
			return true
		}
	}
	return false
}

// setDeadline sets the deadline the caller sent, if any. It is enforced
// lazily: Err and Cause compare it with the clock, and a timer is armed
// only if someone waits on Done. A handler that never waits pays for no
// timer.
func (r *Request) setDeadline(timeoutMicros uint64) {
	if timeoutMicros != 0 {
		r.deadline = time.Now().Add(time.Duration(min(timeoutMicros, uint64(1<<62)/1000)) * time.Microsecond)
	}
}

// cancel ends the request's context with err (the first cause wins).
func (r *Request) cancel(err error) {
	r.mu.Lock()
	r.endLocked(err)
	r.mu.Unlock()
}

// endLocked is cancel's work, with r.mu held (or with r reachable by
// nobody else: finish's solo request): the first cause wins; the Done
// channel closes, the deadline timer stops and AfterFunc's callbacks
// start, each on a goroutine of its own (they read r.Err, so they must
// not run under r.mu).
func (r *Request) endLocked(err error) {
	if r.err != nil {
		return
	}
	r.err = err
	if r.doneCh != nil {
		close(r.doneCh)
	}
	if x := r.more; x != nil {
		if x.timer != nil {
			x.timer.Stop()
		}
		for _, a := range x.after {
			go a.f()
		}
		x.after = nil
	}
}

// Deadline implements context.Context: the caller's deadline, if it sent one.
func (r *Request) Deadline() (time.Time, bool) { return r.deadline, !r.deadline.IsZero() }

// expiredLocked ends the context if its deadline has passed or its
// connection is down: checked when asked (Err, Cause, Done), so that a
// handler that already replied, and so left the inbound table, still sees
// the end (rule 33).
func (r *Request) expiredLocked() {
	if r.err != nil {
		return
	}
	switch {
	case r.conn != nil && r.conn.down() != nil:
		r.endLocked(ErrConnectionClosed)
	case !r.deadline.IsZero() && !time.Now().Before(r.deadline):
		r.endLocked(context.DeadlineExceeded)
	}
}

// Done implements context.Context. With a deadline, the first call arms
// the timer that closes the channel when it passes.
func (r *Request) Done() <-chan struct{} {
	r.mu.Lock()
	if r.doneCh != nil {
		defer r.mu.Unlock()
		return r.doneCh
	}
	r.expiredLocked() // before the channel exists: it would close it
	r.doneCh = make(chan struct{})
	ch := r.doneCh
	if r.err != nil {
		close(ch)
		r.mu.Unlock()
		return ch
	}
	if !r.deadline.IsZero() {
		r.moreLocked().timer = time.AfterFunc(time.Until(r.deadline), func() { r.cancel(context.DeadlineExceeded) })
	}
	r.mu.Unlock()
	r.conn.watch(r) // outside r.mu: teardown takes watchMu, then r.mu
	return ch
}

// watch puts r on the list of Done channels teardown closes, while its
// context is still live; if the connection is down already, r is
// cancelled now. A context that has ended (the handler is over, so finish
// may already have run unwatch) is never put on the list.
func (c *conn) watch(r *Request) {
	c.watchMu.Lock()
	if c.down() != nil {
		c.watchMu.Unlock()
		r.cancel(ErrConnectionClosed)
		return
	}
	r.mu.Lock() // lock order: watchMu, then r.mu (as in cancelWatched)
	if r.err == nil {
		r.wnext = c.watching
		if c.watching != nil {
			c.watching.wprev = r
		}
		c.watching = r
		r.watched.Store(true)
	}
	r.mu.Unlock()
	c.watchMu.Unlock()
}

// unwatch takes r off the list once its handler is over and its context
// has ended (so watch will not add it again). Most Requests were never
// watched: they cost no lock here.
func (c *conn) unwatch(r *Request) {
	if !r.watched.Load() {
		return
	}
	c.watchMu.Lock()
	if r.wprev != nil {
		r.wprev.wnext = r.wnext
	} else {
		c.watching = r.wnext
	}
	if r.wnext != nil {
		r.wnext.wprev = r.wprev
	}
	r.wprev, r.wnext = nil, nil
	r.watched.Store(false)
	c.watchMu.Unlock()
}

// cancelWatched ends the context of every handler that waits on Done
// (teardown; down() is already set, so watch registers no more).
func (c *conn) cancelWatched() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	for r := c.watching; r != nil; r = r.wnext {
		r.cancel(ErrConnectionClosed)
	}
}

// Err implements context.Context: nil while the call runs; then
// context.DeadlineExceeded if the deadline passed, context.Canceled
// otherwise. errors.Is(context.Cause(ctx), ...) is not supported; use
// Cause.
func (r *Request) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expiredLocked()
	switch r.err {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// Cause returns why the request's context ended: ErrCancelled (the caller
// cancelled), context.DeadlineExceeded, ErrConnectionClosed, or
// context.Canceled after the handler returned; nil while it runs.
func (r *Request) Cause() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expiredLocked()
	return r.err
}

// Value implements context.Context with the values of Options.Context
// (and the Request itself, for RequestFrom).
func (r *Request) Value(key any) any {
	if key == (requestKey{}) {
		return r
	}
	return r.conn.s.opts.Context.Value(key)
}

type requestKey struct{}

// RequestFrom returns the Request a handler's ctx belongs to: the ctx
// itself, or a context derived from it (with Options.ProfileLabels the
// handler gets one; a typed handler gets only ctx). It is how a handler
// reaches the request's metadata and channels from any ctx it was given.
// Valid while the handler runs, as the Request is.
func RequestFrom(ctx context.Context) (*Request, bool) {
	if r, ok := ctx.(*Request); ok {
		return r, true
	}
	r, ok := ctx.Value(requestKey{}).(*Request)
	return r, ok
}
