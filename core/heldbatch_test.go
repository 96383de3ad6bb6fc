package core

import (
	"context"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// Requests for blocking handlers are held by the reading goroutine until
// its batch of frames ends, then queued for the workers at once
// (session.hold, workers.submitList).

var mHold = NewMethod("test", "hold")

// holdRouter serves mHold on the pool: each handler announces its id, then
// waits for release or its context's end.
func holdRouter(started chan<- uint64, release <-chan struct{}) *Router {
	r := NewRouter()
	r.Handle(mHold, func(ctx context.Context, req *Request) error {
		started <- req.ID()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return req.Reply(nil, nil)
	})
	return r
}

// spec:17 requests for blocking handlers that arrive in one batch all
// start, while every one of them blocks: queued together, they still
// find a worker each.
func TestBatchOfBlockingRequestsAllStart(t *testing.T) {
	const n = 6
	started, release := make(chan uint64, n), make(chan struct{})
	defer close(release)
	c := serveRawClient(t, Options{Router: holdRouter(started, release)})
	var msgs []wire.Message
	for i := range n {
		msgs = append(msgs, req(uint64(2*i+1), mHold, nil))
	}
	c.write(frames(msgs...)) // one write: one batch
	seen := map[uint64]bool{}
	for range n {
		seen[testwait.Recv(t, "a handler's start", started)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct requests started, want %d", len(seen), n)
	}
}

// spec:17 a relayed frame whose write blocks (the far link is full) holds
// up the reading goroutine, but not the handlers of requests it admitted
// earlier in the same batch: they are queued before the relayed write.
func TestHeldRequestsStartBeforeABlockedRelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The middle's session toward the far peer, whose link holds little.
	toFar, far := newRawPeer(t, true, Options{Link: netpoll.Options{MaxOutbound: 64 << 10}})
	far.acceptHello(t, toFar, wire.Settings{})
	started, release := make(chan uint64, 1), make(chan struct{})
	defer close(release)
	c := serveRawClient(t, Options{Router: holdRouter(started, release),
		AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
			fc, err := toFar.OpenConn(ctx, ConnOptions{Parity: req.Parity, Relay: req.Conn})
			if err != nil {
				return ConnOptions{}, err
			}
			return ConnOptions{Relay: fc}, nil
		}})
	// The raw client opens a connection; the middle relays it to the far
	// peer, which accepts.
	c.send(wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd, Settings: wire.Settings{MaxConcurrentRequests: 16}})
	open := far.nextKind(t, wire.KindOpenConn)
	far.send(t, wire.Message{Kind: wire.KindAcceptConn, Conn: open.Conn, Parity: open.Parity.Opposite(), Settings: wire.Settings{MaxConcurrentRequests: 16}})
	for {
		m, ok := c.next()
		if !ok {
			t.Fatal("the middle closed the link before accepting the connection")
		}
		if m.Kind == wire.KindAcceptConn {
			break
		}
	}
	// Fill the far link: the far peer stops reading, and calls of the
	// middle's own fill its outbound buffer until one waits for room.
	resume := sync.OnceFunc(far.pause())
	defer resume() // before the sessions close: their links flush first
	cl := toFar.Caller()
	defer cl.Close()
	var calls sync.WaitGroup
	defer calls.Wait()
	defer cancel()
	for range 64 { // 3 MiB, past what the pipe's socket buffers hold
		calls.Go(func() { _ = cl.Call(ctx, mEcho, make([]byte, 48<<10), nil, nil) })
	}
	testwait.Blocked(t, "netpoll.(*outbound).write", 1)
	// One batch: a request for the middle's own handler, then one to
	// relay, whose write blocks: the buffer holds a waiting call's frame's
	// worth of room at most (16 KiB), and it is larger.
	c.write(frames(req(1, mHold, nil), wire.Message{Kind: wire.KindRequest, Conn: 1, ID: 1, Method: mEcho.ID, Payload: make([]byte, 32<<10)}))
	if id := testwait.Recv(t, "the held request's handler to start", started); id != 1 {
		t.Fatalf("handler of request %d started, want 1", id)
	}
}
