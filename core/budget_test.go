package core

import (
	"context"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// The byte budget (rule 34) against the ways a peer could make a session
// hold its bytes (issue 10's table): each is bounded by the budget, the
// peer is slowed down (reading pauses) rather than refused, and once the
// session's side lets go everything completes.

const testBudget = 8 << 20

// slack is what may be held past the budget: one read of the link and one
// frame in progress.
const slack = 64<<10 + 1<<20 + 1024

// sendAll writes msgs from a goroutine (the writes block while the session
// does not read) and reports the first error.
func (p *rawPeer) sendAll(msgs []wire.Message) <-chan error {
	errc := make(chan error, 1)
	go func() {
		for i := range msgs {
			if err := p.link.WriteFrame(context.Background(), wire.AppendMessage(nil, &msgs[i])); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	return errc
}

// budgetHolds waits until reading has paused and checks what is held:
// at most the budget and the slack, plus extra (what handlers admitted
// before the pause may still add).
func budgetHolds(t *testing.T, s *Session, extra ...int64) {
	t.Helper()
	link := s.link.Load()
	if !testwait.Until(link.Paused) {
		t.Fatalf("reading never paused: %d bytes held", link.Held())
	}
	bound := int64(testBudget + slack)
	for _, e := range extra {
		bound += e
	}
	if held := link.Held(); held > bound {
		t.Fatalf("holding %d bytes with a budget of %d (bound %d)", held, testBudget, bound)
	}
}

// spec:34 legal requests of 1 MiB to handlers that do not finish: the
// payloads held by running handlers stop the reading at the budget.
func TestBudgetBoundsHeldRequests(t *testing.T) {
	mHold := NewMethod("test", "hold")
	release := make(chan struct{})
	var started sync.WaitGroup
	r := NewRouter()
	r.Handle(mHold, func(ctx context.Context, req *Request) error {
		started.Done()
		<-release
		return req.Reply(nil, nil)
	})
	s, p := newRawPeer(t, false, Options{Router: r, ByteBudget: testBudget})
	if ack := p.hello(t, wire.Settings{}); ack.Settings.ByteBudget != testBudget {
		t.Fatalf("advertised budget %d", ack.Settings.ByteBudget)
	}
	const n = 100
	started.Add(n)
	msgs := make([]wire.Message, n)
	for i := range msgs {
		msgs[i] = wire.Message{Kind: wire.KindRequest, ID: uint64(2*i + 1), Method: mHold.ID, Payload: make([]byte, 1<<20)}
	}
	sent := p.sendAll(msgs)
	budgetHolds(t, s)
	if running := s.root.inflight.live.Load(); running >= n || running*(1<<20) > testBudget+slack {
		t.Fatalf("%d requests of 1 MiB admitted", running)
	}
	close(release)
	for range n {
		if m := p.nextKind(t, wire.KindResponse); m.Status != wire.StatusOK {
			t.Fatalf("response %v", m.Status)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// spec:34 channel items within credit that the handler does not read:
// the queued items stop the reading at the budget.
func TestBudgetBoundsQueuedItems(t *testing.T) {
	mSink := NewMethod("test", "sink")
	readNow := make(chan struct{})
	got := make(chan int, 1)
	r := NewRouter()
	r.Handle(mSink, func(ctx context.Context, req *Request) error {
		rx, err := req.Rx(0)
		if err != nil {
			return err
		}
		<-readNow
		n := 0
		for {
			it, err := rx.Recv(ctx)
			if err != nil {
				break
			}
			it.Release()
			n++
		}
		got <- n
		return req.Reply(nil, nil)
	})
	s, p := newRawPeer(t, false, Options{Router: r, ByteBudget: testBudget})
	p.hello(t, wire.Settings{})
	const items = 64
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: items}))
	msgs := []wire.Message{{Kind: wire.KindRequest, ID: 1, Method: mSink.ID, Channels: chans}}
	for range items {
		msgs = append(msgs, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: make([]byte, 1<<20)})
	}
	msgs = append(msgs, wire.Message{Kind: wire.KindChannelClose, ID: 1})
	sent := p.sendAll(msgs)
	budgetHolds(t, s)
	close(readNow)
	if n := <-got; n != items {
		t.Fatalf("the handler read %d of %d items", n, items)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if m := p.nextKind(t, wire.KindResponse); m.Status != wire.StatusOK || s.Err() != nil {
		t.Fatalf("response %v, session %v", m.Status, s.Err())
	}
}

// spec:34 requests whose responses the peer never reads: once the
// outbound buffer is full, the responses waiting for room count against
// the budget and stop the reading. Echoes answered on the reading
// goroutine (inline handlers, whose responses wait in copies), and by pool
// handlers (whose responses wait in their goroutines, holding the request
// too). (A small request with a large result is bounded by the request
// limit, not the budget: its bytes are made after it was read.)
func TestBudgetBoundsUnreadResponses(t *testing.T) {
	mPoolEcho := NewMethod("test", "pool-echo")
	r := NewRouter()
	r.HandleInline(mEcho, echo)
	r.Handle(mPoolEcho, echo)
	for _, c := range []struct {
		name    string
		method  Method
		payload int
		extra   int64 // see budgetHolds
	}{
		{"inline echo", mEcho, 1 << 20, 0},
		// Pool handlers admitted before the pause each add their response
		// (1 MiB, as large as the request they hold) once they reply: at
		// most the budget again.
		{"pool echo", mPoolEcho, 1 << 20, testBudget + slack},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{Router: r, ByteBudget: testBudget})
			p.hello(t, wire.Settings{})
			resume := sync.OnceFunc(p.pause())
			defer resume() // a failed test must not leave the peer stuck
			const n = 64
			msgs := make([]wire.Message, n)
			for i := range msgs {
				msgs[i] = wire.Message{Kind: wire.KindRequest, ID: uint64(2*i + 1), Method: c.method.ID, Payload: make([]byte, c.payload)}
			}
			sent := p.sendAll(msgs)
			budgetHolds(t, s, c.extra)
			resume()
			for range n {
				if m := p.nextKind(t, wire.KindResponse); m.Status != wire.StatusOK || len(m.Payload) != 1<<20 {
					t.Fatalf("response %v of %d bytes", m.Status, len(m.Payload))
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if s.Err() != nil {
				t.Fatalf("session ended: %v", s.Err())
			}
		})
	}
}

// spec:34 on gnet, a session paused by its budget leaves the event loop to
// the others: while one client's calls fill the server's budget (and its
// reading stops), another client on the same loop is served; released,
// the paused session completes every call.
func TestBudgetPausesOneSessionOnly(t *testing.T) {
	mHold := NewMethod("test", "hold")
	release := make(chan struct{})
	r := echoRouter()
	r.Handle(mHold, func(ctx context.Context, req *Request) error {
		<-release
		return req.Reply(nil, nil)
	})
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	defer tr.Close()
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", Options{Router: r, ByteBudget: testBudget})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dial := func() (*Session, *Caller) {
		s, err := Dial(context.Background(), tr, "tcp", srv.Addr().String(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Caller()
	}
	heavy, heavyCl := dial()
	defer heavy.Close()
	const n = 40 // 40 MiB of requests against an 8 MiB budget
	errc := make(chan error, n)
	for range n {
		go func() { _, err := call(context.Background(), heavyCl, mHold, make([]byte, 1<<20)); errc <- err }()
	}
	testwait.For(t, "the heavy session to be paused", func() bool {
		for _, s := range srv.snapshot() {
			if l := s.link.Load(); l != nil && l.Paused() {
				return l.Held() <= testBudget+slack
			}
		}
		return false
	})
	light, lightCl := dial()
	defer light.Close()
	for i := range 10 {
		if got, err := call(context.Background(), lightCl, mEcho, []byte{byte(i)}); err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("the other session's call %d: %v %v", i, got, err)
		}
	}
	close(release)
	for range n {
		if err := <-errc; err != nil {
			t.Fatalf("a paused session's call: %v", err)
		}
	}
	lightCl.Close()
	heavyCl.Close()
}
