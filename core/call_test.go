package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime/pprof"
	"sync"
	"testing"
	"time"
)

func echoRouter() *Router {
	r := NewRouter()
	r.Handle(mEcho, echo)
	return r
}

// spec:11,17 many pipelined calls on one connection, handlers with random
// delays: every call gets its own answer, out of order.
func TestPipelinedCallsOutOfOrder(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		r := NewRouter()
		r.Handle(mSlow, func(ctx context.Context, req *Request) error {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			return req.Reply(req.Payload(), nil)
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		const n = 1000
		var wg sync.WaitGroup
		var mu sync.Mutex
		var order []int
		for i := range n {
			wg.Go(func() {
				req := binary.LittleEndian.AppendUint32(nil, uint32(i))
				got, err := call(context.Background(), cl, mSlow, req)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, req) {
					t.Errorf("call %d got the answer to %d", i, binary.LittleEndian.Uint32(got))
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(order) != n {
			t.Fatalf("%d of %d calls completed", len(order), n)
		}
		inOrder := true
		for i := range order {
			if order[i] != i {
				inOrder = false
			}
		}
		if inOrder {
			t.Error("1000 calls with random delays completed in issue order: responses are being serialized")
		}
	})
}

// spec:17 a slow handler does not delay a fast call on the same connection.
func TestSlowHandlerDoesNotBlockFast(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		release := make(chan struct{})
		r := echoRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			<-release
			return req.Reply(nil, nil)
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		slowDone := make(chan error)
		go func() { _, err := call(context.Background(), cl, mBlock, nil); slowDone <- err }()
		for range 10 {
			if _, err := call(context.Background(), cl, mEcho, []byte("fast")); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-slowDone:
			t.Fatalf("slow call finished early: %v", err)
		default:
		}
		close(release)
		if err := <-slowDone; err != nil {
			t.Fatal(err)
		}
	})
}

// spec:3,10 both peers call and serve on one session; each allocates
// request ids of its own parity.
func TestCallsBothWays(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		ids := make(chan uint64, 2)
		idRouter := func() *Router {
			r := NewRouter()
			r.Handle(mEcho, func(ctx context.Context, req *Request) error {
				ids <- req.ID()
				return req.Reply(req.Payload(), nil)
			})
			return r
		}
		client, server := tr.pair(t, Options{Router: idRouter()}, Options{Router: idRouter()})
		cc, sc := client.Caller(), server.Caller()
		defer cc.Close()
		defer sc.Close()
		if got, err := call(context.Background(), cc, mEcho, []byte("c->s")); err != nil || string(got) != "c->s" {
			t.Fatalf("client to server: %q %v", got, err)
		}
		if id := <-ids; id%2 != 1 {
			t.Fatalf("initiator used request id %d, want odd", id)
		}
		if got, err := call(context.Background(), sc, mEcho, []byte("s->c")); err != nil || string(got) != "s->c" {
			t.Fatalf("server to client: %q %v", got, err)
		}
		if id := <-ids; id%2 != 0 {
			t.Fatalf("acceptor used request id %d, want even", id)
		}
	})
}

// spec:13,14,15,16 every kind of failure comes back as its own error,
// scoped to its call; the connection stays usable.
func TestErrorOutcomes(t *testing.T) {
	mUser, mPanic, mNoReply, mInvalid, mTwice := NewMethod("t", "user"), NewMethod("t", "panic"), NewMethod("t", "noreply"), NewMethod("t", "invalid"), NewMethod("t", "twice")
	r := echoRouter()
	r.Handle(mUser, func(ctx context.Context, req *Request) error { return &UserError{Payload: []byte(`{"code":7}`)} })
	r.Handle(mPanic, func(ctx context.Context, req *Request) error { panic("boom") })
	r.Handle(mNoReply, func(ctx context.Context, req *Request) error { return nil })
	r.Handle(mInvalid, func(ctx context.Context, req *Request) error {
		return &InvalidPayloadError{Err: errors.New("want 4 bytes")}
	})
	secondReply := make(chan error, 1)
	r.Handle(mTwice, func(ctx context.Context, req *Request) error {
		if err := req.Reply([]byte("first"), nil); err != nil {
			return err
		}
		secondReply <- req.Reply([]byte("second"), nil)
		return errors.New("ignored: already replied")
	})
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()
		cases := []struct {
			m         Method
			want      error
			retryable bool
		}{
			{mUser, ErrUser, false},
			{mPanic, ErrInternal, false},
			{mNoReply, ErrInternal, false},
			{mInvalid, ErrInvalidPayload, false},
			{NewMethod("t", "missing"), ErrUnknownMethod, false},
		}
		for _, c := range cases {
			_, err := call(ctx, cl, c.m, nil)
			var ce *CallError
			if !errors.Is(err, c.want) || !errors.As(err, &ce) {
				t.Fatalf("%s: got %v, want %v", c.m, err, c.want)
			}
			if ce.Retryable() != c.retryable || IsRetryable(err) != c.retryable {
				t.Fatalf("%s: retryable = %v", c.m, ce.Retryable())
			}
			if c.want == ErrUser && string(ce.Payload) != `{"code":7}` {
				t.Fatalf("user error payload %q", ce.Payload)
			}
			// Scoped to the call (spec:15): the next call works.
			if got, err := call(ctx, cl, mEcho, []byte("ok")); err != nil || string(got) != "ok" {
				t.Fatalf("after %s: %q %v", c.m, got, err)
			}
		}
		got, err := call(ctx, cl, mTwice, nil)
		if err != nil || string(got) != "first" {
			t.Fatalf("twice: %q %v", got, err)
		}
		if err := <-secondReply; !errors.Is(err, ErrReplied) {
			t.Fatalf("second Reply: %v", err)
		}
	})
}

// spec:19,21 cancelling the caller's context: the caller gets Cancelled at
// once, the handler's context is cancelled, the late response is ignored
// and the connection keeps working.
func TestCancelMidCall(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		handlerSaw := make(chan error, 1)
		started := make(chan struct{})
		r := echoRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			close(started)
			<-ctx.Done()
			handlerSaw <- req.Cause()
			return req.Reply([]byte("too late"), nil) // the late response
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { _, err := call(ctx, cl, mBlock, nil); errc <- err }()
		<-started
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("caller not released by cancel")
		}
		if cause := <-handlerSaw; !errors.Is(cause, ErrCancelled) {
			t.Fatalf("handler context ended with %v", cause)
		}
		for range 5 {
			if got, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil || string(got) != "x" {
				t.Fatalf("after cancel: %q %v", got, err)
			}
		}
	})
}

// spec:20 the caller's deadline travels with the request: the handler's
// context carries it and ends when it passes; the caller gets Cancelled.
func TestDeadline(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		seen := make(chan time.Time, 1)
		ended := make(chan error, 1)
		r := NewRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			d, ok := ctx.Deadline()
			if !ok {
				t.Error("handler context has no deadline")
			}
			seen <- d
			<-ctx.Done()
			ended <- ctx.Err()
			return nil
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		deadline := time.Now().Add(200 * time.Millisecond)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		_, err := call(ctx, cl, mBlock, nil)
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("caller got %v", err)
		}
		if d := <-seen; d.Sub(deadline).Abs() > 100*time.Millisecond {
			t.Fatalf("handler deadline %v, caller's %v", d, deadline)
		}
		if err := <-ended; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Fatalf("handler context ended with %v", err)
		}
	})
}

// spec:12 method ids come from service and method names: the same method
// name in two services never collides; both sides compute the same id.
func TestMethodIDs(t *testing.T) {
	a, b := NewMethod("alpha", "Get"), NewMethod("beta", "Get")
	if a.ID == b.ID {
		t.Fatal("same method name in two services collided")
	}
	if a.ID != MethodID("alpha", "Get") || a.String() != "alpha.Get" {
		t.Fatal("method id not deterministic")
	}
	if NewMethod("ab", "c").ID == NewMethod("a", "bc").ID {
		t.Fatal("the separator does not separate")
	}
}

// With ProfileLabels, a handler runs under pprof labels naming its
// service and method.
func TestProfileLabels(t *testing.T) {
	got := make(chan [2]string, 1)
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		svc, _ := pprof.Label(ctx, "service")
		m, _ := pprof.Label(ctx, "method")
		got <- [2]string{svc, m}
		return req.Reply(nil, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r, ProfileLabels: true})
	cl := client.Caller()
	defer cl.Close()
	if _, err := call(context.Background(), cl, mEcho, nil); err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != [2]string{"test", "echo"} {
		t.Fatalf("labels %v", l)
	}
}

// spec:20 a handler that never waits on its context still sees the
// deadline pass (it is enforced without a timer until someone waits), and
// a handler that gives up then answers Cancelled.
func TestDeadlineWithoutWaiting(t *testing.T) {
	saw := make(chan error, 1)
	r := NewRouter()
	r.HandleInline(mSlow, func(ctx context.Context, req *Request) error {
		time.Sleep(30 * time.Millisecond) // busy, never looking at Done
		saw <- ctx.Err()
		return nil
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := call(ctx, cl, mSlow, nil); !errors.Is(err, ErrCancelled) {
		t.Fatalf("caller: %v", err)
	}
	if err := <-saw; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler's ctx.Err() after its deadline: %v", err)
	}
}

// A Reply retained in its callback stays valid after Call returns, while
// the connection reads later replies into its buffers; Release gives it
// back. Without the Retain, the read chunk would be reused under it.
func TestReplyRetainOutlivesTheCall(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: echoRouter()})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()
		var kept Reply
		if err := cl.Call(ctx, mEcho, []byte("the first reply"), nil, func(r Reply) error {
			kept = r.Retain()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			if _, err := call(ctx, cl, mEcho, bytes.Repeat([]byte{byte(i)}, len("the first reply"))); err != nil {
				t.Fatal(err)
			}
		}
		if got := string(kept.Payload); got != "the first reply" {
			t.Fatalf("the retained reply reads %q after later calls", got)
		}
		kept.Release()
	})
}
