package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// callWaitingForRoom is the call TestCallCancelledWaitingForRoom cancels,
// a function of its own so that the test can find its goroutine's stack.
func callWaitingForRoom(ctx context.Context, cl *Caller, payload []byte, errc chan<- error) {
	_, err := call(ctx, cl, mEcho, payload)
	errc <- err
}

// callWaitingState says whether callWaitingForRoom's goroutine is parked,
// and whether in the outbound buffer's wait for room.
func callWaitingState() (parked, forRoom bool) {
	return testwait.Parked("core.callWaitingForRoom") > 0,
		testwait.Parked("core.callWaitingForRoom", "netpoll.(*outbound).waitLocked") > 0
}

// outboundFillers calls of fillerSize bytes are more than the pipe, a
// paused peer's read and a 64 KiB outbound buffer hold: some wait for room.
const outboundFillers, fillerSize = 40, 15 << 10

// fullOutbound joins a session with a 64 KiB outbound buffer to a raw
// peer that has stopped reading, and starts outboundFillers calls on ctx
// (the peer never answers them); it returns once one of them waits for
// room. Their errors come on filled. resume lets the peer read again; it
// is also called when the test ends, before the session closes.
func fullOutbound(t *testing.T, ctx context.Context) (s *Session, p *rawPeer, cl *Caller, resume func(), filled <-chan error) {
	t.Helper()
	s, p = newRawPeer(t, true, Options{Link: netpoll.Options{MaxOutbound: 64 << 10}})
	p.acceptHello(t, s, wire.Settings{MaxFrameSize: 1 << 20})
	cl = s.Caller()
	t.Cleanup(func() { cl.Close() })
	resume = sync.OnceFunc(p.pause())
	t.Cleanup(resume)
	errs := make(chan error, outboundFillers)
	for range outboundFillers {
		go func() { _, err := call(ctx, cl, mEcho, bytes.Repeat([]byte("f"), fillerSize)); errs <- err }()
	}
	testwait.Blocked(t, "netpoll.(*outbound).waitLocked", 1)
	return s, p, cl, resume, errs
}

// spec:19 a call whose request waits for room in a full outbound buffer
// (the peer reads nothing) returns Cancelled as soon as its context ends,
// and its request is never sent: the peer, once it reads again, gets a
// later call's request and never that one.
func TestCallCancelledWaitingForRoom(t *testing.T) {
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	s, p, cl, resume, filled := fullOutbound(t, bg)

	// A call the size of a filler waits for room too, unless a write
	// made room just as it came: then it is sent, and another is tried
	// (the peer reads nothing, so one soon waits).
	var cancelled []byte
	for i := 0; cancelled == nil; i++ {
		payload := append(fmt.Appendf(nil, "call %d;", i), bytes.Repeat([]byte("c"), fillerSize)...)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go callWaitingForRoom(ctx, cl, payload, errc)
		var waits bool
		testwait.For(t, "the call to wait", func() bool {
			var parked bool
			parked, waits = callWaitingState()
			return parked
		})
		cancel()
		err := <-errc
		if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("a call cancelled while waiting (for room: %v): %v", waits, err)
		}
		if waits {
			cancelled = payload[:bytes.IndexByte(payload, ';')+1]
		}
	}

	// The peer reads again. A marker call's request is queued after
	// anything the cancelled call could have left behind.
	resume()
	marked := make(chan error, 1)
	go func() { _, err := call(bg, cl, mEcho, []byte("marker")); marked <- err }()
	for {
		m := p.nextKind(t, wire.KindRequest)
		if bytes.HasPrefix(m.Payload, cancelled) {
			t.Fatal("the cancelled call's request was sent")
		}
		if string(m.Payload) == "marker" {
			break
		}
	}
	stop()
	for range outboundFillers {
		if err := <-filled; !errors.Is(err, ErrCancelled) {
			t.Fatalf("a filler: %v", err)
		}
	}
	if err := <-marked; !errors.Is(err, ErrCancelled) {
		t.Fatalf("the marker: %v", err)
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}
