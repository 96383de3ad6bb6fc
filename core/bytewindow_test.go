package core

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

var mSink = NewMethod("test", "sink")

// sinkRouter serves mSink: its handler takes the request's Rx and, for
// each number sent on take, takes that many items, then says so on taken.
// It replies once take is closed, and ends with its ctx.
func sinkRouter(take <-chan int, taken chan<- error) *Router {
	r := NewRouter()
	r.Handle(mSink, func(ctx context.Context, req *Request) error {
		rx, err := req.Rx(0)
		if err != nil {
			return err
		}
		defer rx.Close()
		report := func(err error) {
			select {
			case taken <- err:
			case <-ctx.Done():
			}
		}
		for {
			var n int
			var ok bool
			select {
			case n, ok = <-take:
			case <-ctx.Done():
				return ctx.Err()
			}
			if !ok {
				return req.Reply(nil, nil)
			}
			for range n {
				it, err := rx.Recv(ctx)
				if err != nil {
					report(err)
					return err
				}
				it.Release()
			}
			report(nil)
		}
	})
	return r
}

// streamCall calls m on conn with a new Tx of window 1024 bound, on a
// goroutine: it returns the Tx and where the call's error comes.
func streamCall(t *testing.T, conn *Conn, m Method) (*RawTx, <-chan error) {
	t.Helper()
	cl := conn.Caller()
	t.Cleanup(func() { cl.Close() })
	tx := conn.NewTx(1024)
	called := make(chan error, 1)
	go func() {
		called <- cl.Call(context.Background(), m, nil, &CallOptions{Channels: []Channel{tx}}, nil)
	}()
	return tx, called
}

// endSink waits for the sink's handler to have taken what it was told,
// lets it reply, and waits for the call.
func endSink(t *testing.T, take chan<- int, taken, called <-chan error) {
	t.Helper()
	if err := testwait.Recv(t, "the items taken", taken); err != nil {
		t.Fatal(err)
	}
	close(take)
	if err := testwait.Recv(t, "the call", called); err != nil {
		t.Fatal(err)
	}
}

// spec:26 a channel's items in flight are bounded by their payload bytes
// as well as by count: a sender whose receiver advertised a byte window
// (64 KiB here) waits once half of it is unacknowledged and the next item
// would pass it, with credit to spare, and goes on when the receiver's
// grant gives bytes back (the receiver grants once it has taken 32 KiB,
// not half the 1024-item window).
func TestByteWindowBoundsASender(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		take, taken := make(chan int), make(chan error)
		client, _ := tr.pair(t, Options{}, Options{Router: sinkRouter(take, taken), ChannelByteWindow: 64 << 10})
		tx, called := streamCall(t, client.Root(), mSink)
		var sent atomic.Int64
		sendDone := make(chan error, 1)
		go func() {
			for range 8 {
				if err := tx.Send(context.Background(), make([]byte, 16<<10)); err != nil {
					sendDone <- err
					return
				}
				sent.Add(1)
			}
			sendDone <- tx.Close()
		}()
		waiting := func(n int64) func() bool {
			return func() bool { return sent.Load() == n && testwait.Parked("core.(*chanState).takeBytes") == 1 }
		}
		testwait.For(t, "the sender to wait with 64 KiB sent", waiting(4))
		take <- 2 // 32 KiB: a grant
		if err := testwait.Recv(t, "two items taken", taken); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "the sender to wait again after two more", waiting(6))
		take <- 6
		if err := testwait.Recv(t, "the sender to finish", sendDone); err != nil {
			t.Fatal(err)
		}
		endSink(t, take, taken, called)
	})
}

// spec:26,27 the byte window on the wire, against a raw peer. As sender,
// the session keeps within the window the peer advertised (at least the
// 64 KiB floor) and sends on as the peer's grants count bytes back; with
// none advertised, items are bounded by credit alone. As receiver, its
// grants count the bytes taken, but only to a peer that advertised a
// window (one that did not would not parse them).
func TestByteWindowOnTheWire(t *testing.T) {
	const item = 32 << 10
	t.Run("sender", func(t *testing.T) {
		// A window under the 64 KiB floor is taken as the floor; one of
		// 2^63 bytes bounds nothing.
		for _, window := range []uint64{2 * item, 1 << 10, 0, 1 << 63} {
			advertised := window != 0 && window < 1<<62
			mOut := NewMethod("test", "out")
			r := NewRouter()
			r.Handle(mOut, func(ctx context.Context, req *Request) error {
				tx, err := req.Tx(0)
				if err != nil {
					return err
				}
				for range 4 {
					if err := tx.Send(ctx, make([]byte, item)); err != nil {
						return err
					}
				}
				tx.Close()
				return req.Reply(nil, nil)
			})
			_, p := newRawPeer(t, false, Options{Router: r})
			p.hello(t, wire.Settings{ChannelByteWindow: window})
			chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CalleeSends, Window: 1024}))
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mOut.ID, Channels: chans})
			items := func(n int) {
				t.Helper()
				for range n {
					if m := p.next(t); m.Kind != wire.KindChannelItem || len(m.Payload) != item {
						t.Fatalf("advertised %v: got %v of %d bytes, want an item", advertised, m.Kind, len(m.Payload))
					}
				}
			}
			if advertised {
				items(2)
				testwait.Blocked(t, "core.(*chanState).takeBytes", 1) // the third waits
				p.send(t, wire.Message{Kind: wire.KindGrantCredit, ID: 1, Credit: 1, Bytes: item})
				items(1)
				testwait.Blocked(t, "core.(*chanState).takeBytes", 1) // the fourth waits
				p.send(t, wire.Message{Kind: wire.KindGrantCredit, ID: 1, Credit: 1, Bytes: item})
				items(1)
			} else {
				items(4)
			}
			if m := p.next(t); m.Kind != wire.KindChannelClose {
				t.Fatalf("advertised %v: got %v, want ChannelClose", advertised, m.Kind)
			}
		}
	})
	t.Run("receiver", func(t *testing.T) {
		for _, advertised := range []bool{true, false} {
			take, taken := make(chan int, 1), make(chan error, 1)
			_, p := newRawPeer(t, false, Options{Router: sinkRouter(take, taken), ChannelByteWindow: 2 * item})
			var settings wire.Settings
			if advertised {
				settings.ChannelByteWindow = 1 << 20
			}
			p.hello(t, settings)
			chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1024}))
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSink.ID, Channels: chans})
			p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: make([]byte, item)})
			take <- 1 // 32 KiB taken: a grant
			if err := testwait.Recv(t, "the item taken", taken); err != nil {
				t.Fatal(err)
			}
			m := p.nextKind(t, wire.KindGrantCredit)
			want := uint64(0)
			if advertised {
				want = item
			}
			if m.ID != 1 || m.Credit != 1 || m.Bytes != want {
				t.Fatalf("advertised %v: grant %+v, want 1 item and %d bytes", advertised, m, want)
			}
			close(take)
			p.send(t, wire.Message{Kind: wire.KindChannelClose, ID: 1})
			if m := p.nextKind(t, wire.KindResponse); m.Status != wire.StatusOK {
				t.Fatalf("advertised %v: response %v", advertised, m.Status)
			}
		}
	})
}

// spec:25 a Send waiting for the receiver's byte window ends as soon as
// the channel does: ErrChannelReset when the receiver resets it,
// ErrChannelClosed when our own Close does.
func TestByteWindowWaitEndsWithTheChannel(t *testing.T) {
	for _, c := range []struct {
		name string
		want error
	}{{"reset", ErrChannelReset}, {"closed", ErrChannelClosed}} {
		t.Run(c.name, func(t *testing.T) {
			mHold := NewMethod("test", "hold")
			reset := make(chan struct{})
			r := NewRouter()
			r.Handle(mHold, func(ctx context.Context, req *Request) error {
				rx, err := req.Rx(0)
				if err != nil {
					return err
				}
				select {
				case <-reset:
					rx.Reset()
				case <-ctx.Done():
				}
				return req.Reply(nil, nil)
			})
			client, _ := transports()[0].pair(t, Options{}, Options{Router: r, ChannelByteWindow: 64 << 10})
			tx, called := streamCall(t, client.Root(), mHold)
			sendErr := make(chan error, 1)
			go func() {
				for {
					if err := tx.Send(context.Background(), make([]byte, 16<<10)); err != nil {
						sendErr <- err
						return
					}
				}
			}()
			testwait.Blocked(t, "core.(*chanState).takeBytes", 1)
			if c.want == ErrChannelReset {
				close(reset)
			} else {
				tx.Close()
			}
			if err := testwait.Recv(t, "the waiting Send", sendErr); !errors.Is(err, c.want) {
				t.Fatalf("Send: %v, want %v", err, c.want)
			}
			if c.want != ErrChannelReset {
				close(reset)
			}
			if err := testwait.Recv(t, "the call", called); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// spec:26 an item larger than the byte window still goes, alone once the
// items before it are acknowledged, and so does one that passes the
// window while less than half of it is unacknowledged: the receiver
// grants only once it has taken 32 KiB (half the 64 KiB window here), so
// a sender that waited with less would wait for ever.
func TestByteWindowLetsLargeItemsThrough(t *testing.T) {
	take, taken := make(chan int, 1), make(chan error, 1)
	client, _ := transports()[0].pair(t, Options{}, Options{Router: sinkRouter(take, taken), ChannelByteWindow: 64 << 10})
	tx, called := streamCall(t, client.Root(), mSink)
	sizes := []int{16 << 10, 60 << 10, 100 << 10, 8 << 10, 100 << 10}
	take <- len(sizes)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.Timeout)
	defer cancel()
	for i, n := range sizes {
		if err := tx.Send(ctx, make([]byte, n)); err != nil {
			t.Fatalf("item %d (%d bytes): %v", i, n, err)
		}
	}
	tx.Close()
	endSink(t, take, taken, called)
}

// spec:34 a stream of large items that nobody reads does not stop the
// session: its sender stops at the receiver's byte window (a sixteenth of
// the 1 MiB budget here, at least 64 KiB), far from the budget, so the
// receiver keeps reading and calls on the same session are still served.
// Without the window, the 1024-item credit lets the sender fill the
// budget: the receiver stops reading the link, calls included.
func TestUnreadStreamLeavesCallsServed(t *testing.T) {
	r := sinkRouter(nil, nil) // takes nothing until its ctx ends
	r.Handle(mEcho, echo)
	client, _ := transports()[1].pair(t, Options{}, Options{Router: r, ByteBudget: 1 << 20})
	tx, _ := streamCall(t, client.Root(), mSink) // ends with the session
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for tx.Send(ctx, make([]byte, 256<<10)) == nil {
		}
	}()
	testwait.Blocked(t, "core.(*chanState).takeBytes", 1)
	callCtx, stop := context.WithTimeout(context.Background(), testwait.Timeout)
	defer stop()
	cl := client.Caller()
	t.Cleanup(func() { cl.Close() })
	if got, err := call(callCtx, cl, mEcho, []byte("still served")); err != nil || string(got) != "still served" {
		t.Fatalf("a call beside the unread stream: %q, %v", got, err)
	}
}

// spec:26,27 through a relay the sender keeps within the relay session's
// byte window (64 KiB here, from its 1 MiB budget) while the grants come
// from the far receiver, which advertised a larger one (4 MiB) to its own
// peer: the far receiver grants every 32 KiB taken, whatever its window,
// so a stream of 48 KiB items still flows. (Granting per half of its own
// window, it would leave the sender waiting with 48 KiB unacknowledged.)
func TestByteWindowThroughARelay(t *testing.T) {
	take, taken := make(chan int, 1), make(chan error, 1)
	ctx := context.Background()
	farOpts := Options{AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		return ConnOptions{Router: sinkRouter(take, taken)}, nil
	}}
	middleToFar, _ := transports()[0].pair(t, Options{}, farOpts)
	middleOpts := Options{ByteBudget: 1 << 20, AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		c, err := middleToFar.OpenConn(ctx, ConnOptions{Parity: req.Parity, Relay: req.Conn})
		if err != nil {
			return ConnOptions{}, err
		}
		return ConnOptions{Relay: c}, nil
	}}
	client, _ := transports()[0].pair(t, Options{}, middleOpts)
	conn, err := client.OpenConn(ctx, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tx, called := streamCall(t, conn, mSink)
	const items = 8
	take <- items
	sendCtx, cancel := context.WithTimeout(ctx, testwait.Timeout)
	defer cancel()
	for i := range items {
		if err := tx.Send(sendCtx, make([]byte, 48<<10)); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	tx.Close()
	endSink(t, take, taken, called)
}

// A relay between a session that advertises a byte window and one that
// does not is refused, whichever side sets it up: a sender through it
// would keep within the window while the grants relayed to it carry no
// bytes, and stop for ever.
func TestRelayRefusedWhenWindowsDisagree(t *testing.T) {
	for _, c := range []struct {
		name         string
		relayOnOpen  bool // the middle opens the far half with Relay set, else only names it when it accepts
		wantOpenFail bool
	}{
		{"OpenConn", true, true},
		{"AcceptConn", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			farOpts := Options{AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
				return ConnOptions{Router: NewRouter()}, nil
			}}
			// The middle's session toward the far peer advertises no window;
			// its session toward the client advertises the default.
			middleToFar, far := transports()[0].pair(t, Options{ChannelByteWindow: -1}, farOpts)
			openErr := make(chan error, 1)
			middleOpts := Options{AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
				opts := ConnOptions{Parity: req.Parity}
				if c.relayOnOpen {
					opts.Relay = req.Conn
				}
				fc, err := middleToFar.OpenConn(ctx, opts)
				openErr <- err
				if err != nil {
					return ConnOptions{}, err
				}
				return ConnOptions{Relay: fc}, nil
			}}
			client, _ := transports()[0].pair(t, Options{}, middleOpts)
			_, err := client.OpenConn(ctx, ConnOptions{})
			var rejected *ConnRejectedError
			if !errors.As(err, &rejected) || rejected.Reason != ErrRelayWindows.Error() {
				t.Fatalf("the client's OpenConn through the relay: %v, want a refusal giving %q", err, ErrRelayWindows)
			}
			if err := testwait.Recv(t, "the middle's OpenConn", openErr); errors.Is(err, ErrRelayWindows) != c.wantOpenFail {
				t.Fatalf("the middle's OpenConn toward the far peer: %v", err)
			}
			// A far half opened for the refused relay closes with it.
			testwait.For(t, "the far half to close", func() bool {
				return middleToFar.vconns.Size()+far.vconns.Size() == 0
			})
		})
	}
}
