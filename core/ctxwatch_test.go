package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// installedWatch returns c's watch of done, or nil.
func installedWatch(c *conn, done <-chan struct{}) *ctxWatch {
	for i := range c.watches.slots {
		if w := c.watches.slots[i].Load(); w != nil && w.done == done {
			return w
		}
	}
	return nil
}

// makeWatch makes ctx's watch on client's root connection the way callers
// do, with two calls in a row on ctx, and returns it.
func makeWatch(t *testing.T, client *Session, cl *Caller, ctx context.Context) *ctxWatch {
	t.Helper()
	for range 2 {
		if _, err := call(ctx, cl, mEcho, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	w := installedWatch(client.root, ctx.Done())
	if w == nil {
		t.Fatal("a context two calls in a row shared has no watch")
	}
	return w
}

func watchCount(c *conn) int {
	n := 0
	for i := range c.watches.slots {
		if c.watches.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// spec:19,21 calls that share one context wait under its watch, not on
// its Done channel: cancelling the context still releases every caller at
// once with Cancelled, cancels every handler, keeps each call's slot until
// its late response, and leaves the connection working.
func TestSharedContextCancelsEveryCall(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		const n = 32
		var cancelled atomic.Int64
		r := echoRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			<-ctx.Done()
			if errors.Is(req.Cause(), ErrCancelled) {
				cancelled.Add(1)
			}
			return req.Reply([]byte("too late"), nil)
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w := makeWatch(t, client, cl, ctx)
		errs := make(chan error, n)
		for range n {
			go func() { _, err := call(ctx, cl, mBlock, nil); errs <- err }()
		}
		waitInflight(t, server.root, n)
		testwait.For(t, "callers waiting under the watch", func() bool {
			k := 0
			slots := *client.root.pending.tab.Load()
			for i := range slots {
				if oc := slots[i].Load(); oc != nil && oc.watch.Load() == w {
					k++
				}
			}
			return k == n
		})
		cancel()
		for range n {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
					t.Fatalf("caller got %v", err)
				}
			case <-time.After(testwait.Timeout):
				t.Fatal("a caller under the watch was not released by cancel")
			}
		}
		testwait.For(t, "every handler cancelled", func() bool { return cancelled.Load() == n })
		testwait.For(t, "the late responses to free every slot", func() bool { return client.root.slots.inUse() == 0 })
		if installedWatch(client.root, ctx.Done()) != nil {
			t.Error("the fired watch kept its slot")
		}
		for range 5 {
			if got, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil || string(got) != "x" {
				t.Fatalf("after cancel: %q %v", got, err)
			}
		}
	})
}

// spec:19 a shared context cancelled while its calls start, are sent and
// wait: every call ends, with its reply or Cancelled, and no slot is lost.
func TestSharedContextCancelRace(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	defer cl.Close()
	for round := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var failed atomic.Value
		for range 16 {
			wg.Go(func() {
				for range 20 {
					got, err := call(ctx, cl, mEcho, []byte("x"))
					switch {
					case err == nil && string(got) == "x":
					case errors.Is(err, ErrCancelled) && errors.Is(err, context.Canceled):
					default:
						failed.Store(err)
					}
				}
			})
		}
		for range round % 7 {
			if _, err := call(ctx, cl, mEcho, nil); err != nil {
				break
			}
		}
		cancel()
		ended := make(chan struct{})
		go func() { wg.Wait(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(testwait.Timeout):
			t.Fatal("a caller hung")
		}
		if err := failed.Load(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		testwait.For(t, "every slot back", func() bool { return client.root.slots.inUse() == 0 })
		testwait.For(t, "the fired watches gone", func() bool { return watchCount(client.root) == 0 })
	}
}

// spec:19 a context that has already ended when its watch is made: the
// calls end Cancelled and the watch does not keep the slot.
func TestWatchOfEndedContext(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	defer cl.Close()
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for range 3 {
			if _, err := call(ctx, cl, mEcho, []byte("x")); err != nil && !errors.Is(err, ErrCancelled) {
				t.Fatalf("got %v", err)
			}
		}
		testwait.For(t, "the fired watch gone", func() bool { return installedWatch(client.root, ctx.Done()) == nil })
	}
	testwait.For(t, "every slot back", func() bool { return client.root.slots.inUse() == 0 })
}

// A context per call never gets a watch (it would cost an AfterFunc per
// call): such calls select on their own context.
func TestContextPerCallHasNoWatch(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	defer cl.Close()
	var keep []context.Context // alive, so no two share a channel's address
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		keep = append(keep, ctx)
		if _, err := call(ctx, cl, mEcho, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if n := watchCount(client.root); n != 0 {
		t.Fatalf("%d watches for %d one-call contexts", n, len(keep))
	}
}

// spec:33 teardown unregisters the connection's watches, so a long-lived
// context does not keep an ended session (nor fire into it), and the
// callers waiting under a watch get the teardown's error.
func TestTeardownDropsWatches(t *testing.T) {
	r := blockRouter()
	r.HandleInline(mEcho, echo)
	client, server := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := makeWatch(t, client, cl, ctx)
	errc := make(chan error, 1)
	go func() { _, err := call(ctx, cl, mBlock, nil); errc <- err }()
	waitInflight(t, server.root, 1)
	server.Close()
	if err := <-errc; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("caller under the watch got %v", err)
	}
	waitDone(t, client)
	if watchCount(client.root) != 0 {
		t.Error("teardown left a watch in its slot")
	}
	if w.stop() {
		t.Error("teardown left the watch registered with the context")
	}
}

// spec:19 a call that joins a watch after the watch has fired (its scan
// could not see the call) cancels itself instead of waiting for ever.
func TestJoinFiredWatch(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	c := client.root
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &ctxWatch{c: c, done: ctx.Done(), stop: func() bool { return false }}
	w.fire() // nothing to cancel yet

	// A call as callBound leaves it once its request is out (this one
	// never goes out: the peer ignores the Cancel for an id it never saw).
	c.slots.tryAcquire()
	oc := outCallPool.Get().(*outCall)
	if c.pending.insert(oc) == 0 {
		t.Fatal("no id")
	}
	errc := make(chan error, 1)
	go func() { errc <- c.awaitWatched(ctx, oc, w, nil) }()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(testwait.Timeout):
		t.Fatal("the call waited under a watch that had already fired")
	}
}

// A call's watch goes with it: an outCall that waited under a shared
// context's watch and is then reused for a call on a context of its own
// must not be cancelled when the shared context ends (the watch's scan
// matches calls by the watch they hold, so freeCall must clear it).
func TestReusedCallForgetsItsWatch(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		release := make(chan struct{})
		r := echoRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return req.Reply([]byte("done"), nil)
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		shared, cancel := context.WithCancel(context.Background())
		defer cancel()
		makeWatch(t, client, cl, shared)
		// Each round frees a call that waited under the watch into this
		// P's pool slot, then starts a call on its own context that runs
		// next on this P and so most likely takes that outCall.
		const n = 8
		errs := make(chan error, n)
		for i := range n {
			if _, err := call(shared, cl, mEcho, []byte("x")); err != nil {
				t.Fatal(err)
			}
			go func() { _, err := call(context.Background(), cl, mBlock, nil); errs <- err }()
			waitInflight(t, server.root, int64(i+1))
		}
		// A call that does wait under the watch: its caller is back once
		// the watch has fired. A stale watch on the other calls would have
		// claimed them in the same scan, long before their responses (a
		// round trip after the release below) could complete them.
		werr := make(chan error, 1)
		go func() { _, err := call(shared, cl, mBlock, nil); werr <- err }()
		waitInflight(t, server.root, n+1)
		cancel()
		if err := <-werr; !errors.Is(err, ErrCancelled) {
			t.Fatalf("the call under the watch: %v, want Cancelled", err)
		}
		close(release)
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("a call on its own context, after another's ended: %v", err)
			}
		}
	})
}
