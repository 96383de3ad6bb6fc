package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

var (
	mSum       = NewMethod("testbed", "sum")
	mGenerate  = NewMethod("testbed", "generate")
	mTransform = NewMethod("testbed", "transform")
)

// testbedRouter serves roam's conformance shapes: sum (caller streams),
// generate (callee streams), transform (both at once).
func testbedRouter() *Router {
	r := NewRouter()
	r.Handle(mSum, func(ctx context.Context, req *Request) error {
		raw, err := req.Rx(0)
		if err != nil {
			return err
		}
		rx := RxOf[int](raw, nil)
		defer rx.Close()
		total := 0
		for {
			v, err := rx.Recv(ctx)
			if err == io.EOF {
				return req.Reply(fmt.Appendf(nil, "%d", total), nil)
			}
			if err != nil {
				return err
			}
			total += v
		}
	})
	r.Handle(mGenerate, func(ctx context.Context, req *Request) error {
		var n int
		fmt.Sscan(string(req.Payload()), &n)
		raw, err := req.Tx(0)
		if err != nil {
			return err
		}
		tx := TxOf[int](raw, nil)
		for i := range n {
			if err := tx.Send(ctx, i); err != nil {
				return req.Reply([]byte("stopped: "+err.Error()), nil)
			}
		}
		tx.Close()
		return req.Reply([]byte("done"), nil)
	})
	r.Handle(mTransform, func(ctx context.Context, req *Request) error {
		in, err := req.Rx(0)
		if err != nil {
			return err
		}
		out, err := req.Tx(1)
		if err != nil {
			return err
		}
		rx, tx := RxOf[string](in, nil), TxOf[string](out, nil)
		defer rx.Close()
		for {
			s, err := rx.Recv(ctx)
			if err == io.EOF {
				tx.Close()
				return req.Reply(nil, nil)
			}
			if err != nil {
				return err
			}
			if err := tx.Send(ctx, strings.ToUpper(s)); err != nil {
				return err
			}
		}
	})
	return r
}

// spec:24,25,26 sum: the caller streams numbers with credit flow control,
// closes, and the handler returns the total.
func TestChannelSum(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: testbedRouter()})
		cl := client.Caller()
		defer cl.Close()
		for _, window := range []int{1, 16, 256} {
			tx := NewTx[int](cl.Conn(), window)
			go func() {
				for i := 1; i <= 1000; i++ {
					if err := tx.Send(context.Background(), i); err != nil {
						t.Error(err)
						return
					}
				}
				tx.Close()
			}()
			got, err := call(context.Background(), cl, mSum, nil, &CallOptions{Channels: []Channel{tx}})
			if err != nil || string(got) != "500500" {
				t.Fatalf("window %d: sum %q %v", window, got, err)
			}
		}
	})
}

// spec:24,26,27 generate: the handler streams N items back; the caller
// sees each exactly once, in order, then the end.
func TestChannelGenerate(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: testbedRouter()})
		cl := client.Caller()
		defer cl.Close()
		for _, window := range []int{1, 16, 256} {
			const n = 2000
			rx := NewRx[int](cl.Conn(), window)
			got := make(chan error, 1)
			go func() { got <- expectSequence(rx, n) }()
			reply, err := call(context.Background(), cl, mGenerate, fmt.Appendf(nil, "%d", n), &CallOptions{Channels: []Channel{rx}})
			if err != nil || string(reply) != "done" {
				t.Fatalf("window %d: %q %v", window, reply, err)
			}
			if err := <-got; err != nil {
				t.Fatalf("window %d: %v", window, err)
			}
		}
	})
}

func expectSequence(rx *Rx[int], n int) error {
	defer rx.Close()
	for i := range n {
		v, err := rx.Recv(context.Background())
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		if v != i {
			return fmt.Errorf("item %d is %d", i, v)
		}
	}
	if _, err := rx.Recv(context.Background()); err != io.EOF {
		return fmt.Errorf("after %d items: %v, want io.EOF", n, err)
	}
	return nil
}

// spec:24 transform: two channels on one call, both directions at once.
func TestChannelTransform(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: testbedRouter()})
		cl := client.Caller()
		defer cl.Close()
		in, out := NewTx[string](cl.Conn(), 4), NewRx[string](cl.Conn(), 4)
		words := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}
		errc := make(chan error, 2)
		go func() {
			for _, w := range words {
				if err := in.Send(context.Background(), w); err != nil {
					errc <- err
					return
				}
			}
			errc <- in.Close()
		}()
		go func() {
			for _, w := range words {
				got, err := out.Recv(context.Background())
				if err != nil || got != strings.ToUpper(w) {
					errc <- fmt.Errorf("got %q %v, want %q", got, err, strings.ToUpper(w))
					return
				}
			}
			_, err := out.Recv(context.Background())
			if err != io.EOF {
				errc <- fmt.Errorf("end: %v", err)
				return
			}
			errc <- nil
		}()
		if _, err := call(context.Background(), cl, mTransform, nil, &CallOptions{Channels: []Channel{in, out}}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// spec:26 window 0: nothing flows until the receiver grants; then items
// flow as credit allows.
func TestChannelWindowZero(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: testbedRouter()})
	cl := client.Caller()
	defer cl.Close()
	rx := NewRx[int](cl.Conn(), 0)
	done := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), cl, mGenerate, []byte("5"), &CallOptions{Channels: []Channel{rx}})
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := rx.Recv(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an item arrived without credit: %v", err)
	}
	if err := rx.Raw().Grant(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := expectSequence(rx, 5); err != nil { // each taken item grants the next
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// spec:27 grants are batched: one GrantCredit per half window (at least
// 1), as the seed's replenisher does; and, with a byte window advertised,
// as soon as the payload bytes taken since the last grant reach 32 KiB,
// whatever the window (a sender waiting for its window has at least that
// much unacknowledged), each grant counting those bytes.
func TestGrantBatching(t *testing.T) {
	const k = 1 << 10
	for _, c := range []struct {
		window     uint64
		byteWindow int      // ChannelByteWindow (-1: not advertised)
		size       int      // each item's payload bytes
		grants     []uint64 // credit granted after each of 16 takes (0: none)
	}{
		{16, -1, 10 * k, []uint64{0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8}},
		{1, -1, 10 * k, []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{5, -1, 10 * k, []uint64{0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2}},
		{16, 4 << 20, 10 * k, []uint64{0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4}}, // 40 KiB reach 32, in a 4 MiB window
		{16, 64 * k, 0, []uint64{0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8}},       // empty items: by count
		{4, 64 * k, 40 * k, []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},   // one item is enough
	} {
		s := &session{opts: Options{ChannelByteWindow: c.byteWindow}}
		st := &chanState{c: &conn{s: s}, window: c.window, allowed: c.window, windowNow: uint32(c.window)}
		for i, want := range c.grants {
			got := st.takenLocked(c.size)
			if got.items != want || got.bytes != want*uint64(c.size) {
				t.Fatalf("window %d, byte window %d, take %d: granted %+v, want %d items of %d bytes",
					c.window, c.byteWindow, i+1, got, want, c.size)
			}
		}
		if st.allowed != c.window+16 {
			t.Fatalf("window %d: allowed %d after 16 takes", c.window, st.allowed)
		}
	}
}

// spec:28 items and Close that arrive before the handler takes its Rx are
// kept, in order, and delivered when it does: a window's worth within the
// receive queue's first size (16), and one that outgrows it twice.
func TestChannelItemsBeforeRegistration(t *testing.T) {
	r := NewRouter()
	r.Handle(mSum, func(ctx context.Context, req *Request) error {
		// Take the Rx only once all n items and the Close are queued.
		n, _ := strconv.Atoi(string(req.Payload()))
		st := req.channels[0].st
		if !testwait.Until(func() bool {
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.received == uint64(n) && st.peerDone
		}) {
			return errors.New("the items never arrived")
		}
		raw, err := req.Rx(0)
		if err != nil {
			return err
		}
		rx := RxOf[int](raw, nil)
		var got []int
		for {
			v, err := rx.Recv(ctx)
			if err == io.EOF {
				return req.Reply(fmt.Appendf(nil, "%v", got), nil)
			}
			if err != nil {
				return err
			}
			got = append(got, v)
		}
	})
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		for _, n := range []int{8, 49} {
			tx := NewTx[int](cl.Conn(), n)
			go func() {
				for i := range n { // the whole window, then Close, at once
					tx.Send(context.Background(), i)
				}
				tx.Close()
			}()
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			got, err := call(context.Background(), cl, mSum, strconv.AppendInt(nil, int64(n), 10), &CallOptions{Channels: []Channel{tx}})
			if err != nil || string(got) != fmt.Sprint(want) {
				t.Fatalf("%d items: %q %v", n, got, err)
			}
		}
	})
}

// spec:25 reset: the receiver asks the sender to stop; its next send fails.
func TestChannelReset(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: testbedRouter()})
		cl := client.Caller()
		defer cl.Close()
		rx := NewRx[int](cl.Conn(), 4)
		go func() {
			for range 10 {
				if _, err := rx.Recv(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
			rx.Reset()
			if _, err := rx.Recv(context.Background()); !errors.Is(err, ErrChannelReset) {
				t.Errorf("Recv after Reset: %v", err)
			}
		}()
		reply, err := call(context.Background(), cl, mGenerate, []byte("1000000"), &CallOptions{Channels: []Channel{rx}})
		if err != nil || !strings.Contains(string(reply), ErrChannelReset.Error()) {
			t.Fatalf("handler's send did not fail with reset: %q %v", reply, err)
		}
	})
}

// spec:19,24 channels outlive the call's response, and cancelling the
// call does not close them.
func TestChannelsOutliveResponseAndCancel(t *testing.T) {
	mLater, mCancelled := NewMethod("testbed", "later"), NewMethod("testbed", "cancelled")
	// stream sends item 0, then the rest once the test opens the gate:
	// after the response (mLater) or after the cancel (mCancelled).
	gateLater, gateCancelled := make(chan struct{}), make(chan struct{})
	stream := func(raw *RawTx, gate chan struct{}) {
		tx := TxOf[int](raw, nil)
		for i := range 5 {
			if i == 1 {
				<-gate
			}
			tx.Send(context.Background(), i)
		}
		tx.Close()
	}
	r := NewRouter()
	r.Handle(mLater, func(ctx context.Context, req *Request) error {
		raw, err := req.Tx(0)
		if err != nil {
			return err
		}
		go stream(raw, gateLater) // keeps streaming after the response
		return req.Reply([]byte("replied"), nil)
	})
	r.Handle(mCancelled, func(ctx context.Context, req *Request) error {
		raw, err := req.Tx(0)
		if err != nil {
			return err
		}
		go stream(raw, gateCancelled)
		<-ctx.Done() // the caller cancels; the channel lives on
		return nil
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()

	rx := NewRx[int](cl.Conn(), 2)
	if got, err := call(context.Background(), cl, mLater, nil, &CallOptions{Channels: []Channel{rx}}); err != nil || string(got) != "replied" {
		t.Fatalf("%q %v", got, err)
	}
	close(gateLater)
	if err := expectSequence(rx, 5); err != nil {
		t.Fatal(err)
	}

	rx = NewRx[int](cl.Conn(), 2)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := call(ctx, cl, mCancelled, nil, &CallOptions{Channels: []Channel{rx}})
		errc <- err
	}()
	if v, err := rx.Recv(context.Background()); err != nil || v != 0 {
		t.Fatalf("first item %v %v", v, err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, ErrCancelled) {
		t.Fatalf("call: %v", err)
	}
	close(gateCancelled)
	for i := 1; i < 5; i++ {
		if v, err := rx.Recv(context.Background()); err != nil || v != i {
			t.Fatalf("item %d after the cancel: %v %v", i, v, err)
		}
	}
	if _, err := rx.Recv(context.Background()); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// A slow consumer on one channel stalls neither calls nor other channels
// on the same connection: credit holds the sender back, not the link.
func TestSlowConsumerIsolation(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		r := testbedRouter()
		r.Handle(mEcho, echo)
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		stalled := NewRx[int](cl.Conn(), 2) // never read
		stalledDone := make(chan error, 1)
		go func() {
			_, err := call(context.Background(), cl, mGenerate, []byte("100000"), &CallOptions{Channels: []Channel{stalled}})
			stalledDone <- err
		}()
		st := stalled.raw.st
		testwait.For(t, "the stalled channel's window to fill", func() bool {
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.received == 2
		})
		fast := NewRx[int](cl.Conn(), 16)
		errc := make(chan error, 1)
		go func() { errc <- expectSequence(fast, 500) }()
		if _, err := call(context.Background(), cl, mGenerate, []byte("500"), &CallOptions{Channels: []Channel{fast}}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got, err := call(context.Background(), cl, mEcho, []byte("still fine")); err != nil || string(got) != "still fine" {
			t.Fatalf("echo while a channel is stalled: %q %v", got, err)
		}
		stalled.Reset()
		<-stalledDone
	})
}

// spec:30 when the connection ends mid-stream, every Rx returns an error
// instead of hanging and every Tx send fails.
func TestChannelsEndWithConnection(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		started := make(chan struct{})
		r := NewRouter()
		r.Handle(mSum, func(ctx context.Context, req *Request) error {
			raw, _ := req.Rx(0)
			out, _ := req.Tx(1)
			close(started)
			_, err := raw.Recv(context.Background()) // the first item: then we wait
			for err == nil {
				_, err = raw.Recv(context.Background())
			}
			if !errors.Is(err, ErrConnectionClosed) {
				t.Errorf("callee Recv: %v", err)
			}
			if err := out.Send(context.Background(), []byte("x")); !errors.Is(err, ErrConnectionClosed) {
				t.Errorf("callee Send: %v", err)
			}
			return nil
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		tx, rx := cl.Conn().NewTx(1), cl.Conn().NewRx(1)
		go call(context.Background(), cl, mSum, nil, &CallOptions{Channels: []Channel{tx, rx}})
		<-started
		tx.Send(context.Background(), []byte("1"))
		server.Close()
		if _, err := rx.Recv(context.Background()); !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("caller Recv: %v", err)
		}
		var err error
		for err == nil { // the credit of 1 may still be there for one send
			err = tx.Send(context.Background(), []byte("2"))
		}
		if !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("caller Send: %v", err)
		}
		waitDone(t, server)
		waitDone(t, client)
		if n := cl.Conn().chans.size(); n != 0 {
			t.Fatalf("%d channel states left", n)
		}
	})
}

// spec:29 a sender that exceeds its credit commits a protocol violation:
// nothing is dropped or buffered beyond the window.
func TestCreditExceededIsViolation(t *testing.T) {
	var wg sync.WaitGroup
	defer wg.Wait()
	r := NewRouter()
	r.Handle(mSum, func(ctx context.Context, req *Request) error {
		<-ctx.Done() // never reads: the window fills
		return nil
	})
	s, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 2}))
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: chans})
	for range 3 {
		p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")})
	}
	if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeCreditExceeded {
		t.Fatalf("got %v %v", m.Kind, m.Code)
	}
	waitDone(t, s)
}

// spec:32 a channel end dropped without Close is caught by a cleanup: a
// leaked Rx resets, so its sender is not left waiting for credit forever.
func TestLeakedRxIsReset(t *testing.T) {
	mLeak := NewMethod("testbed", "leak")
	r := NewRouter()
	r.Handle(mLeak, func(ctx context.Context, req *Request) error {
		if _, err := req.Rx(0); err != nil { // taken, then dropped
			return err
		}
		return req.Reply(nil, nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	tx := cl.Conn().NewTx(1)
	if _, err := call(context.Background(), cl, mLeak, nil, &CallOptions{Channels: []Channel{tx}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := tx.Send(ctx, []byte("x"))
		cancel()
		if errors.Is(err, ErrChannelReset) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leaked Rx was never reset: last send %v", err)
		}
	}
}

// spec:29 channel state is bounded too: a request binding more channels
// than allowed (per call, or live on the connection) is a violation.
func TestTooManyChannelsIsViolation(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  Options
		count int
	}{
		{"per call", Options{}, MaxChannelsPerCall + 1},
		{"per connection", Options{MaxChannels: 3}, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Router = testbedRouter()
			s, p := newRawPeer(t, false, c.opts)
			p.hello(t, wire.Settings{})
			var raw []byte
			for i := range c.count {
				raw = wire.AppendChannel(raw, wire.ChannelBinding{ID: uint64(2*i + 1), Dir: wire.CallerSends, Window: 1})
			}
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: wire.MakeChannelList(raw)})
			if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeTooManyChannels {
				t.Fatalf("got %v %v", m.Kind, m.Code)
			}
			waitDone(t, s)
		})
	}
}
