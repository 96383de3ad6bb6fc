package core

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:13 exactly one response goes on the wire per request, counted by a
// raw peer: a handler that replies, replies again and then returns an
// error still produces one Response for its id.
func TestOneResponseOnTheWire(t *testing.T) {
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		_ = req.Reply([]byte("first"), nil)
		_ = req.Reply([]byte("second"), nil)
		return errors.New("and an error")
	})
	s, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID})
	if m := p.nextKind(t, wire.KindResponse); m.ID != 1 || string(m.Payload) != "first" {
		t.Fatalf("response %d %q", m.ID, m.Payload)
	}
	// Ping once the handler is over: its Pong comes after anything the
	// handler's end could have sent.
	testwait.For(t, "the handler to finish", func() bool { return s.active.state.Load()&hcCount == 0 })
	p.send(t, wire.Message{Kind: wire.KindPing, ID: 7})
	for m := p.next(t); m.Kind != wire.KindPong; m = p.next(t) {
		if m.Kind == wire.KindResponse {
			t.Fatalf("a second response for id %d: %q", m.ID, m.Payload)
		}
	}
}

// spec:15 an error is scoped to its call: a call that fails does not
// cancel the other calls in flight on the connection.
func TestFailedCallLeavesOthersRunning(t *testing.T) {
	mFail := NewMethod("test", "fail")
	release := make(chan struct{})
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		select {
		case <-release:
			return req.Reply([]byte("ok"), nil)
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	r.Handle(mFail, func(ctx context.Context, req *Request) error { panic("boom") })
	eachTransport(t, func(t *testing.T, tr transport) {
		release = make(chan struct{})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		blocked := make(chan error, 1)
		go func() { _, err := call(context.Background(), cl, mBlock, nil); blocked <- err }()
		waitInflight(t, server.root, 1)
		if _, err := call(context.Background(), cl, mFail, nil); !errors.Is(err, ErrInternal) {
			t.Fatalf("failing call: %v", err)
		}
		if _, err := call(context.Background(), cl, NewMethod("test", "none"), nil); !errors.Is(err, ErrUnknownMethod) {
			t.Fatalf("unknown method: %v", err)
		}
		close(release)
		if err := <-blocked; err != nil {
			t.Fatalf("the other call: %v", err)
		}
	})
}

// spec:6 a request that arrives after we sent GoAway is answered
// Unavailable and never run.
func TestDrainingRefusesNewRequests(t *testing.T) {
	release := make(chan struct{})
	ran := make(chan uint64, 4)
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		ran <- req.ID()
		<-release
		return req.Reply(nil, nil)
	})
	s, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mBlock.ID})
	if id := <-ran; id != 1 {
		t.Fatalf("ran %d", id)
	}
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	p.nextKind(t, wire.KindGoAway)
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 3, Method: mBlock.ID})
	if m := p.nextKind(t, wire.KindResponse); m.ID != 3 || m.Status != wire.StatusUnavailable {
		t.Fatalf("response %d %v, want Unavailable for 3", m.ID, m.Status)
	}
	close(release)
	if m := p.nextKind(t, wire.KindResponse); m.ID != 1 || m.Status != wire.StatusOK {
		t.Fatalf("response %d %v, want OK for 1", m.ID, m.Status)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if len(ran) != 0 {
		t.Fatalf("request %d ran while draining", <-ran)
	}
}

// spec:26 grants are additive: credit granted while some is left adds to
// it (a grant that replaced the count would lose credit).
func TestGrantsAreAdditive(t *testing.T) {
	mOut := NewMethod("testbed", "out")
	credit := make(chan int64, 1)
	r := NewRouter()
	r.Handle(mOut, func(ctx context.Context, req *Request) error {
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		defer tx.Close()
		// Wait (without failing from this goroutine) for the credit to
		// reach 8; the test checks what it was.
		testwait.Until(func() bool { return tx.Credit() >= 8 })
		credit <- tx.Credit()
		return req.Reply(nil, nil)
	})
	_, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CalleeSends, Window: 2}))
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mOut.ID, Channels: chans})
	p.send(t, wire.Message{Kind: wire.KindGrantCredit, ID: 1, Credit: 3})
	p.send(t, wire.Message{Kind: wire.KindGrantCredit, ID: 1, Credit: 3})
	if c := <-credit; c != 8 {
		t.Fatalf("credit %d after a window of 2 and grants of 3 and 3", c)
	}
}

// spec:33 teardown empties the connection's tables: no request, call,
// channel or watched context is left once the session has ended.
func TestTeardownEmptiesTables(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		r := testbedRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			<-ctx.Done()
			return ctx.Err()
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		for range 3 {
			go call(context.Background(), cl, mBlock, nil)
		}
		rx := cl.Conn().NewRx(4)
		go call(context.Background(), cl, mGenerate, []byte("1000"), &CallOptions{Channels: []Channel{rx}})
		waitInflight(t, server.root, 4)
		server.Close()
		waitDone(t, client)
		for _, c := range []*conn{server.root, client.root} {
			if n := c.inflight.live.Load(); n != 0 {
				t.Errorf("%d requests counted in flight", n)
			}
			c.inflight.each(func(r *Request) { t.Errorf("request %d left in the inbound table", r.id) })
			if n := c.chans.size(); n != 0 {
				c.chans.each(func(st *chanState) {
					t.Errorf("channel %d left (initiator %v, send %v, bind %d, forgotten %v, err %v)", st.id, c.s.initiator, st.send, st.bind.Load(), st.forgotten.Load(), st.err)
				})
			}
			if c.watching != nil {
				t.Error("a watched context left")
			}
			if c.slots.ready() {
				c.pending.drain(func(oc *outCall, _ claimKind) { t.Errorf("call %d left pending", oc.id) })
			}
		}
		rx.Close()
	})
}

// spec:13 a handler that returned without replying has had its one
// response (Internal): a Reply made later, from a goroutine it left
// behind, is refused with ErrReplied and puts nothing on the wire.
func TestLateReplyAfterReturnIsRefused(t *testing.T) {
	mLeave := NewMethod("test", "leave")
	gate, late := make(chan struct{}), make(chan error, 1)
	r := NewRouter()
	r.Handle(mLeave, func(ctx context.Context, req *Request) error {
		go func() {
			<-gate
			late <- req.Reply([]byte("late"), nil)
		}()
		return nil // no reply
	})
	_, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mLeave.ID})
	if m := p.next(t); m.Kind != wire.KindResponse || m.Status != wire.StatusInternal {
		t.Fatalf("got %v %v, want the Internal response", m.Kind, m.Status)
	}
	close(gate)
	if err := <-late; !errors.Is(err, ErrReplied) {
		t.Fatalf("late Reply: %v, want ErrReplied", err)
	}
	p.send(t, wire.Message{Kind: wire.KindPing, ID: 3})
	if m := p.next(t); m.Kind != wire.KindPong {
		t.Fatalf("got %v (a second response?), want the Pong", m.Kind)
	}
}

// A Request's call state (served) is reused once its handler returns: a
// goroutine the handler left behind that sets reply metadata late must
// not write into what may be another call's state by now.
func TestLateSetReplyMetadataIsIgnored(t *testing.T) {
	mLeave := NewMethod("test", "leave-md")
	stale := make(chan *Request, 1)
	r := NewRouter()
	r.Handle(mLeave, func(ctx context.Context, req *Request) error {
		stale <- req
		return req.Reply(nil, nil)
	})
	sess, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mLeave.ID})
	if m := p.next(t); m.Kind != wire.KindResponse || m.Status != wire.StatusOK {
		t.Fatalf("got %v %v, want the response", m.Kind, m.Status)
	}
	req := <-stale
	if err := sess.active.waitIdle(context.Background()); err != nil { // recycled by now
		t.Fatal(err)
	}
	in := req.served
	req.SetReplyMetadata(Metadata{{Key: "late", Value: StringValue("x")}})
	if in.replyMD != nil {
		t.Fatal("a late SetReplyMetadata wrote into the reused call state")
	}
}

// A payload a pool handler retained may be released from another
// goroutine just as the handler's call state is reused: Release must be
// done with the frame before the count lets recycle reuse it (run with
// -race: otherwise recycle resets the frame while Release reads it, and
// the frame it then releases may be another call's).
func TestReleaseFromAnotherGoroutineAsTheHandlerReturns(t *testing.T) {
	mHand := NewMethod("test", "hand-off")
	r := NewRouter()
	var wg sync.WaitGroup
	r.Handle(mHand, func(ctx context.Context, req *Request) error {
		req.Retain()
		p := req.Payload()
		wg.Go(func() {
			_ = p[0] // the retained payload, after the handler returned
			req.Release()
		})
		return req.Reply(nil, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	for range 300 {
		if _, err := call(context.Background(), cl, mHand, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// A pool handler's Request still names its method after the handler
// returned (for a goroutine that logs it), though its call state went on
// to serve another call.
func TestMethodAfterReturn(t *testing.T) {
	mFirst, mSecond := NewMethod("test", "first"), NewMethod("test", "second")
	stale := make(chan *Request, 1)
	r := NewRouter()
	r.Handle(mFirst, func(ctx context.Context, req *Request) error {
		stale <- req
		return req.Reply(nil, nil)
	})
	r.Handle(mSecond, echo)
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	if _, err := call(context.Background(), cl, mFirst, nil); err != nil {
		t.Fatal(err)
	}
	req := <-stale
	for range 10 {
		if _, err := call(context.Background(), cl, mSecond, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := req.Method(); got != mFirst {
		t.Fatalf("the returned handler's Request names %v, want %v", got, mFirst)
	}
}

// A handler may return while a goroutine it started is still inside
// Reply: the call state must not be reused under that Reply (run with
// -race), and every call still gets exactly one response.
func TestReplyFromAnotherGoroutineAsTheHandlerReturns(t *testing.T) {
	mAsync := NewMethod("test", "async-reply")
	r := NewRouter()
	var wg sync.WaitGroup
	r.Handle(mAsync, func(ctx context.Context, req *Request) error {
		wg.Go(func() { _ = req.Reply([]byte("async"), nil) })
		return nil // without waiting: the first of Reply and the return answers
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	for range 300 {
		_, err := call(context.Background(), cl, mAsync, []byte("x"))
		var ce *CallError
		if err != nil && !(errors.As(err, &ce) && ce.Kind == ErrInternal) {
			t.Fatal(err) // the reply, or the Internal of returning without one
		}
	}
	wg.Wait()
}

// A reply callback that panics still gives back the response's frame and
// the call's slot: the panic is the caller's, the connection's memory and
// its in-flight count are not lost to it.
func TestReplyCallbackPanicFreesCall(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			client, _ := tr.pair(t, Options{}, Options{Router: echoRouter()})
			cl := client.Caller()
			defer cl.Close()
			func() {
				defer func() {
					if recover() == nil {
						t.Error("the callback's panic did not reach the caller")
					}
				}()
				_ = cl.Call(context.Background(), mEcho, make([]byte, 512), nil, func(Reply) error { panic("boom") })
			}()
			if n := client.root.slots.inUse(); n != 0 {
				t.Fatalf("%d call slots still in use", n)
			}
			testwait.For(t, "the response's frame released", func() bool { return client.link.Load().Held() == 0 })
			if err := cl.Call(context.Background(), mEcho, []byte("after"), nil, nil); err != nil {
				t.Fatalf("a call after the panic: %v", err)
			}
		})
	}
}

// A Release with no Retain to match is a bug in the handler, caught at
// once with a panic: releasing the payload's frame once more would let its
// read chunk be reused under another call's payload. After a matched
// Retain and Release, one more Release panics too.
func TestReleaseWithoutRetainPanics(t *testing.T) {
	mRel := NewMethod("test", "release")
	r := NewRouter()
	r.Handle(mRel, func(ctx context.Context, req *Request) error {
		unmatched := func() (p any) {
			defer func() { p = recover() }()
			req.Release()
			return nil
		}
		first := unmatched()
		req.Retain()
		req.Release()
		second := unmatched()
		str := func(v any) string { s, _ := v.(string); return s }
		return req.Reply([]byte(str(first)+"|"+str(second)), nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	got, err := call(context.Background(), cl, mRel, []byte("x"))
	const want = "rove: Request.Release without Retain"
	if err != nil || string(got) != want+"|"+want {
		t.Fatalf("got %q, %v; want both Releases to panic with %q", got, err, want)
	}
}
