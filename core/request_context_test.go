package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

// Contexts a handler derives from its Request (context.WithCancel,
// WithTimeout, context.AfterFunc) go through Request.AfterFunc: they
// start no goroutine, and they end when the Request's context ends.

var mDerive = NewMethod("test", "derive")

// callOnce calls mDerive once, served by r over a pipe.
func callOnce(t *testing.T, r *Router) {
	t.Helper()
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	if _, err := call(context.Background(), cl, mDerive, nil); err != nil {
		t.Fatal(err)
	}
}

// propagators counts the goroutines Go's context package starts to carry
// a parent's end to a derived context, for a parent without AfterFunc.
func propagators() int { return testwait.Goroutines("context.(*cancelCtx).propagateCancel") }

// A handler that derives contexts, as one that makes downstream calls
// does, starts no goroutine per derived context, inline or pooled; the
// derived contexts end with the call.
func TestDerivedContextsStartNoGoroutine(t *testing.T) {
	const n = 100
	for _, inline := range []bool{false, true} {
		name := map[bool]string{false: "pool", true: "inline"}[inline]
		t.Run(name, func(t *testing.T) {
			derived := make(chan []context.Context, 1)
			var cancels []context.CancelFunc // called after the test: the call's end must end them first
			defer func() {
				for _, cancel := range cancels {
					cancel()
				}
			}()
			h := func(ctx context.Context, req *Request) error {
				ctxs := make([]context.Context, 0, 2*n)
				for range n {
					c, cancelC := context.WithCancel(ctx)
					d, cancelD := context.WithTimeout(ctx, time.Hour)
					ctxs = append(ctxs, c, d)
					cancels = append(cancels, cancelC, cancelD)
				}
				if got := propagators(); got != 0 {
					t.Errorf("%d goroutines propagate the Request's end to contexts derived from it, want 0", got)
				}
				derived <- ctxs
				return req.Reply(nil, nil)
			}
			r := NewRouter()
			if inline {
				r.HandleInline(mDerive, h)
			} else {
				r.Handle(mDerive, h)
			}
			callOnce(t, r)
			for _, c := range testwait.Recv(t, "the derived contexts", derived) {
				testwait.Recv(t, "a derived context's end", c.Done())
				if !errors.Is(c.Err(), context.Canceled) {
					t.Fatalf("derived context ended with %v, want context.Canceled", c.Err())
				}
			}
		})
	}
}

// spec:19 spec:20 spec:33 a context derived from the handler's ends when
// the handler's does: the caller cancelled, the deadline it sent passed,
// or the connection closed; with the handler's Err. So does a callback
// registered with Request.AfterFunc, by a handler that never asked for
// Done.
func TestDerivedContextEndsWithTheRequest(t *testing.T) {
	// Each returns what only the Request's end closes, and a release the
	// handler calls once that happened.
	derive := map[string]func(req *Request) (<-chan struct{}, func()){
		"WithCancel": func(req *Request) (<-chan struct{}, func()) {
			d, cancel := context.WithCancel(req)
			return d.Done(), cancel
		},
		"AfterFunc": func(req *Request) (<-chan struct{}, func()) {
			done := make(chan struct{})
			stop := req.AfterFunc(func() { close(done) })
			return done, func() { stop() }
		},
	}
	for _, c := range []struct {
		name    string
		timeout uint64 // µs
		end     func(t *testing.T, p *rawPeer)
		want    error // the Request's Cause
	}{
		{"caller cancels", 0, func(t *testing.T, p *rawPeer) {
			p.send(t, wire.Message{Kind: wire.KindCancel, ID: 1})
		}, ErrCancelled},
		{"deadline passes", 20_000, func(*testing.T, *rawPeer) {}, context.DeadlineExceeded},
		{"connection closes", 0, func(_ *testing.T, p *rawPeer) { p.link.Close() }, ErrConnectionClosed},
	} {
		for how, derive := range derive {
			t.Run(c.name+"/"+how, func(t *testing.T) {
				started := make(chan struct{})
				ended := make(chan error, 1)
				r := NewRouter()
				r.Handle(mDerive, func(_ context.Context, req *Request) error {
					done, release := derive(req)
					defer release()
					close(started)
					<-done // only the Request's end can end it
					ended <- req.Cause()
					return req.Err()
				})
				_, p := newRawPeer(t, false, Options{Router: r})
				p.hello(t, wire.Settings{})
				// A raw caller: it never cancels unless told to, so the
				// deadline case sees only the handler side's timer.
				p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mDerive.ID, TimeoutMicros: c.timeout})
				testwait.Recv(t, "the handler's start", started)
				c.end(t, p)
				if err := testwait.Recv(t, "the derived context's end", ended); err != c.want {
					t.Fatalf("the Request's context ended with %v, want %v", err, c.want)
				}
			})
		}
	}
}

// AfterFunc's stop unregisters the callback: true the first time, false
// after; a handler that derives and cancels a context per item, as a
// long stream handler may, keeps no callback per item; a callback
// registered on an ended context starts at once.
func TestRequestAfterFunc(t *testing.T) {
	type result struct {
		firstStop, secondStop bool
		left                  int
		lateStop              func() bool
		ran                   chan struct{}
	}
	results := make(chan result, 1)
	r := NewRouter()
	r.Handle(mDerive, func(ctx context.Context, req *Request) error {
		var res result
		// req.AfterFunc itself: context.AfterFunc's stop answers from its
		// own state.
		stop := req.AfterFunc(func() { t.Error("a stopped callback ran") })
		later := req.AfterFunc(func() { t.Error("a stopped callback ran") })
		res.firstStop, res.secondStop = stop(), stop() // not the last registered
		later()
		for range 1000 {
			_, cancel := context.WithCancel(ctx)
			cancel()
		}
		res.ran = make(chan struct{})
		res.lateStop = req.AfterFunc(func() { close(res.ran) })
		req.mu.Lock()
		res.left = len(req.more.after)
		req.mu.Unlock()
		results <- res
		return req.Reply(nil, nil)
	})
	callOnce(t, r)
	res := testwait.Recv(t, "the handler's result", results)
	if !res.firstStop || res.secondStop {
		t.Errorf("stop returned %v then %v, want true then false", res.firstStop, res.secondStop)
	}
	if res.left != 1 {
		t.Errorf("%d callbacks registered after 1000 cancelled derived contexts and one live, want 1", res.left)
	}
	testwait.Recv(t, "the callback's run once the handler returned", res.ran)
	if res.lateStop() {
		t.Error("stop after the callback started returned true")
	}
}

// A callback registered once the context has ended starts at once, and
// cannot be stopped.
func TestRequestAfterFuncOnAnEndedContext(t *testing.T) {
	held := make(chan *Request, 1)
	r := NewRouter()
	r.Handle(mDerive, func(ctx context.Context, req *Request) error {
		held <- req // a pool handler's context stays valid, ended, once it returns
		return req.Reply(nil, nil)
	})
	callOnce(t, r)
	req := testwait.Recv(t, "the request", held)
	testwait.Recv(t, "the request's end", req.Done())
	ran := make(chan struct{})
	// Directly: context.AfterFunc would see the closed Done itself.
	if req.AfterFunc(func() { close(ran) })() {
		t.Error("stop of a callback on an ended context returned true")
	}
	testwait.Recv(t, "the callback's run", ran)
}

// An inline handler's Request is reused for the connection's next inline
// call, unless AfterFunc registered callbacks on it: a derived context's
// callback may still run after the handler returned, and reads the
// Request's Err (a reused Request's would be nil, which context's cancel
// refuses with a panic).
func TestInlineRequestWithCallbacksIsNotReused(t *testing.T) {
	seen := make(chan *Request, 3)
	r := NewRouter()
	r.HandleInline(mDerive, func(ctx context.Context, req *Request) error {
		seen <- req
		if len(req.Payload()) > 0 {
			context.AfterFunc(ctx, func() {})
		}
		return req.Reply(nil, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	for _, p := range [][]byte{nil, {1}, nil} { // one connection: its spare Request
		if _, err := call(context.Background(), cl, mDerive, p); err != nil {
			t.Fatal(err)
		}
	}
	first, second, third := <-seen, <-seen, <-seen
	if first != second {
		t.Fatal("an inline call without callbacks did not reuse the connection's Request")
	}
	if third == second {
		t.Fatal("the Request of an inline call that registered a callback was reused")
	}
}
