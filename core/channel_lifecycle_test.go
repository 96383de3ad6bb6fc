package core

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// spec:26 a grant of several credits wakes as many waiting senders: three
// Sends blocked on a window-8 channel all go on when the receiver grants
// 4, not just the first one woken.
func TestGrantWakesEveryWaitingSender(t *testing.T) {
	mHold := NewMethod("testbed", "hold")
	release := make(chan struct{})
	got := make(chan int, 1)
	r := NewRouter()
	r.Handle(mHold, func(ctx context.Context, req *Request) error {
		rx, err := req.Rx(0)
		if err != nil {
			return err
		}
		defer rx.Close()
		<-release
		n := 0
		for ; n < 11; n++ {
			it, err := rx.Recv(ctx)
			if err != nil {
				break
			}
			it.Release()
		}
		got <- n
		return req.Reply(nil, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	tx := cl.Conn().NewTx(8)
	callDone := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), cl, mHold, nil, &CallOptions{Channels: []Channel{tx}})
		callDone <- err
	}()
	for range 8 {
		if err := tx.Send(context.Background(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := tx.Send(context.Background(), []byte("y")); err != nil {
				t.Error(err)
			}
		})
	}
	testwait.Blocked(t, "core.(*chanState).takeCredit", 3)
	close(release) // the handler takes items: grants of 4 come back
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()
	select {
	case <-sent:
	case <-time.After(testwait.Timeout):
		t.Fatalf("senders still blocked with %d credits available", tx.Credit())
	}
	if err := <-callDone; err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 11 {
		t.Fatalf("handler got %d items, want 11", n)
	}
	tx.Close()
}

// spec:25 a channel end closed before any call bound it ends at once: the
// peer never heard of it, so there is nothing to wait for, and it leaves
// the connection's table.
func TestCloseUnboundChannelEnds(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	conn := client.Root()
	tx, rx := conn.NewTx(4), conn.NewRx(4)
	closed := make(chan struct{})
	go func() { tx.Close(); rx.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(testwait.Timeout):
		t.Fatal("Close of a channel never bound to a call blocked")
	}
	if n := conn.chans.size(); n != 0 {
		t.Fatalf("%d channels left in the table", n)
	}
	if err := tx.Send(context.Background(), []byte("x")); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	// A closed end cannot be bound afterwards.
	cl := client.Caller()
	defer cl.Close()
	if _, err := call(context.Background(), cl, mEcho, nil, &CallOptions{Channels: []Channel{tx}}); !errors.Is(err, ErrChannelBound) {
		t.Fatalf("call binding a closed channel: %v", err)
	}
}

// spec:30 the channels of a call that no handler ran (unknown method)
// end: the caller's Rx sees the end, its Tx is reset, and the callee
// forgets them, so they do not count against MaxChannels: with room for
// 8, fifty such calls and then a valid one all work. Each call follows at
// once on the Tx seeing its reset, so the acknowledgement of that reset
// must reach the callee before the next request (with nine calls, a
// request overtaking it failed only now and then; with fifty, every run).
func TestChannelsOfRefusedCallEnd(t *testing.T) {
	client, server := transports()[0].pair(t, Options{}, Options{Router: testbedRouter(), MaxChannels: 8})
	cl := client.Caller()
	defer cl.Close()
	unknown := NewMethod("testbed", "nope")
	for i := range 50 {
		rx, tx := cl.Conn().NewRx(4), cl.Conn().NewTx(4)
		_, err := call(context.Background(), cl, unknown, nil, &CallOptions{Channels: []Channel{rx, tx}})
		if !errors.Is(err, ErrUnknownMethod) {
			t.Fatalf("call %d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), testwait.Timeout)
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("call %d: Rx got %v, want the end", i, err)
		}
		cancel()
		testwait.For(t, "the reset to reach the Tx", func() bool {
			return errors.Is(tx.Send(context.Background(), []byte("x")), ErrChannelReset)
		})
	}
	testwait.For(t, "the callee to forget the channels", func() bool { return server.root.chans.size() == 0 })
	raw := cl.Conn().NewTx(4)
	sum := TxOf[int](raw, nil)
	done := make(chan error, 1)
	go func() {
		out, err := call(context.Background(), cl, mSum, nil, &CallOptions{Channels: []Channel{raw}})
		if err == nil && string(out) != "6" {
			err = errors.New("sum " + string(out))
		}
		done <- err
	}()
	for _, v := range []int{1, 2, 3} {
		if err := sum.Send(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	sum.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// spec:16,35 an item over the peer's maximum frame size fails with a
// clear error (not retryable, errors.Is netpoll.ErrFrameTooLarge), costs
// no credit, sends nothing, and the channel and session keep working.
func TestOversizedItemFails(t *testing.T) {
	mOut := NewMethod("testbed", "out")
	sendErr := make(chan error, 2)
	r := NewRouter()
	r.Handle(mOut, func(ctx context.Context, req *Request) error {
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		before := tx.Credit()
		err = tx.Send(ctx, make([]byte, wire.MinMaxFrameSize))
		if tx.Credit() != before {
			err = errors.New("an oversized item cost credit")
		}
		sendErr <- err
		sendErr <- tx.Send(ctx, []byte("small"))
		tx.Close()
		return req.Reply(nil, nil)
	})
	s, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CalleeSends, Window: 4}))
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mOut.ID, Channels: chans})
	err := <-sendErr
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, netpoll.ErrFrameTooLarge) || IsRetryable(err) {
		t.Fatalf("oversized Send: %v (retryable %v)", err, IsRetryable(err))
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("small Send after it: %v", err)
	}
	if m := p.next(t); m.Kind != wire.KindChannelItem || string(m.Payload) != "small" {
		t.Fatalf("got %v %q, want the small item", m.Kind, m.Payload)
	}
	if m := p.next(t); m.Kind != wire.KindChannelClose {
		t.Fatalf("got %v, want ChannelClose", m.Kind)
	}
	if m := p.next(t); m.Kind != wire.KindResponse || m.Status != wire.StatusOK {
		t.Fatalf("got %v %v, want the response", m.Kind, m.Status)
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// spec:27 a grant that could not be sent (Recv's ctx ended while the
// outbound buffer was full) is not lost: the next Recv sends it before it
// waits, so the sender is not left without the credit the receiver
// counted as given.
func TestFailedGrantIsSentAgain(t *testing.T) {
	mRecv, mBig := NewMethod("testbed", "recv"), NewMethod("testbed", "big")
	step := make(chan context.Context)
	defer close(step) // before the session closes: the handler returns
	took := make(chan error, 1)
	r := NewRouter()
	r.Handle(mRecv, func(ctx context.Context, req *Request) error {
		rx, err := req.Rx(0)
		if err != nil {
			return err
		}
		defer rx.Close()
		for recvCtx := range step {
			it, err := rx.Recv(recvCtx)
			if err == nil {
				it.Release()
			}
			took <- err
		}
		return req.Reply(nil, nil)
	})
	r.Handle(mBig, func(ctx context.Context, req *Request) error {
		return req.Reply(make([]byte, 1<<20), nil) // fills the 1 MiB outbound buffer by itself
	})
	_, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 2}))
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mRecv.ID, Channels: chans})
	p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("a")})

	resume := p.pause()
	// Responses: one read by the paused peer, one in the pipe, one in the
	// outbound buffer, and the rest waiting for room.
	for id := uint64(3); id <= 11; id += 2 {
		p.send(t, wire.Message{Kind: wire.KindRequest, ID: id, Method: mBig.ID})
	}
	testwait.Blocked(t, "netpoll.(*outbound).waitLocked", 1) // the buffer is full
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	step <- cancelled // takes item "a"; its grant cannot be queued
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	resume()
	step <- context.Background() // nothing queued: the owed grant goes out before it waits
	if m := p.nextKind(t, wire.KindGrantCredit); m.ID != 1 || m.Credit != 1 {
		t.Fatalf("grant %+v", m)
	}
	p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("b")})
	if err := <-took; err != nil {
		t.Fatal(err)
	}
}

// startWatch serves a method whose handler takes the Tx its request
// binds, replies at once, then runs body with it (as a handler streaming
// events does), and calls it over tr; it returns the caller's Rx.
func startWatch(t *testing.T, tr transport, body func(ctx context.Context, tx *RawTx)) *RawRx {
	t.Helper()
	watch := NewMethod("test", "watch")
	r := NewRouter()
	r.Handle(watch, func(ctx context.Context, req *Request) error {
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		defer tx.Close()
		if err := req.Reply(nil, nil); err != nil {
			return err
		}
		body(ctx, tx)
		return nil
	})
	client, _ := tr.pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	t.Cleanup(func() { cl.Close() })
	rx := cl.Conn().NewRx(4)
	if err := cl.Call(context.Background(), watch, nil, &CallOptions{Channels: []Channel{rx}}, nil); err != nil {
		t.Fatal(err)
	}
	return rx
}

// spec:25 Tx.Done tells a sender that waits on something else that the
// receiver has reset the channel (or the connection ended): a handler
// streaming events as they happen stops at once, not at its next Send.
func TestTxDoneOnReset(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		stopped := make(chan error, 1)
		rx := startWatch(t, tr, func(ctx context.Context, tx *RawTx) {
			if err := tx.Send(ctx, []byte("first")); err != nil {
				return
			}
			select {
			case <-tx.Done(): // no more events would come for an hour
				stopped <- tx.Send(ctx, []byte("late"))
			case <-time.After(time.Hour):
			}
		})
		if it, err := rx.Recv(context.Background()); err != nil || string(it.Payload) != "first" {
			t.Fatalf("first item: %v", err)
		}
		rx.Reset()
		if err := testwait.Recv(t, "the handler to see the reset", stopped); err == nil {
			t.Fatal("a Send after Done succeeded")
		}
	})
}

// spec:25 Done asked for only after the receiver reset the channel is
// closed already: a sender that looks late is not left waiting.
func TestTxDoneAfterReset(t *testing.T) {
	closedAtOnce := make(chan bool, 1)
	rx := startWatch(t, transports()[0], func(ctx context.Context, tx *RawTx) {
		// Send until a Send fails: the reset has come (once the credit
		// is spent, Send waits for it).
		for tx.Send(ctx, []byte("x")) == nil {
		}
		select {
		case <-tx.Done(): // its first use
			closedAtOnce <- true
		default:
			closedAtOnce <- false
		}
	})
	rx.Reset()
	if !testwait.Recv(t, "the handler to see the reset", closedAtOnce) {
		t.Fatal("Done, first asked for after the reset, was not closed")
	}
}

// A call refused because one of its channels is bound already leaves the
// others it named unbound: they can go with a later call.
func TestRefusedBindingLeavesTheOthersFree(t *testing.T) {
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		rx, err := req.Rx(0)
		if err != nil {
			return err
		}
		defer rx.Close()
		it, err := rx.Recv(ctx)
		if err != nil {
			return err
		}
		return req.Reply(it.Payload, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	conn := client.Root()
	closed := conn.NewTx(4)
	closed.Close() // can never be bound
	free := conn.NewTx(4)
	if _, err := call(context.Background(), cl, mEcho, nil, &CallOptions{Channels: []Channel{free, closed}}); !errors.Is(err, ErrChannelBound) {
		t.Fatalf("a call binding a closed channel: %v", err)
	}
	got := make(chan []byte, 1)
	go func() { // the handler answers with the first item it reads
		b, err := call(context.Background(), cl, mEcho, nil, &CallOptions{Channels: []Channel{free}})
		if err != nil {
			b = []byte(err.Error())
		}
		got <- b
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Timeout)
	defer cancel()
	if err := free.Send(ctx, []byte("item")); err != nil { // waits while it is not bound
		t.Fatal(err)
	}
	if b := testwait.Recv(t, "the call", got); string(b) != "item" {
		t.Fatalf("the later call binding the freed channel: %q", b)
	}
	free.Close()
}
