package core

import (
	"context"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// An inline handler's response can have to wait for room in the
// outbound buffer, in a goroutine, after the handler returned: until it
// is queued the request must count as any request in flight. (Each test
// also needs the ProtocolError to reach the peer although the outbound
// buffer was full when it was queued: it is the session's last message,
// queued past the bound, as Reject is.)

// spec:18 an inline request whose response waits for room (the peer has
// stopped reading) counts against our limit until the response is
// queued: a peer that sends more such requests than we advertised breaks
// the protocol, and the responses waiting in goroutines stay bounded by
// the limit.
func TestSoloRequestWaitingForRoomCountsAgainstTheLimit(t *testing.T) {
	p := pausedSoloPeer(t, 2)
	// At most one response in the paused peer's hands, one in the pipe
	// and one in the outbound buffer: the rest wait, and the third
	// waiting is one over the limit.
	for id := uint64(1); id <= 15; id += 2 {
		p.send(t, wire.Message{Kind: wire.KindRequest, ID: id, Method: mBig.ID})
	}
	p.resume()
	if m := p.nextKind(t, wire.KindProtocolError); m.Code != wire.CodeTooManyRequests {
		t.Fatalf("violation %v, want %v", m.Code, wire.CodeTooManyRequests)
	}
}

// spec:13 an inline request whose response waits for room is still in
// flight: the peer reusing its id breaks the protocol (a second response
// for one id could follow).
func TestSoloRequestWaitingForRoomKeepsItsID(t *testing.T) {
	p := pausedSoloPeer(t, 0)
	const last = 9 // the buffer is full before it: its response waits
	for id := uint64(1); id <= last; id += 2 {
		p.send(t, wire.Message{Kind: wire.KindRequest, ID: id, Method: mBig.ID})
	}
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: last, Method: mBig.ID})
	p.resume()
	if m := p.nextKind(t, wire.KindProtocolError); m.Code != wire.CodeIDInUse {
		t.Fatalf("violation %v, want %v", m.Code, wire.CodeIDInUse)
	}
}

// mBig's inline handler answers 1 MiB, which fills the default outbound
// buffer by itself.
var mBig = NewMethod("test", "big")

// soloPeer is a raw peer of a session serving mBig inline, paused.
type soloPeer struct {
	*rawPeer
	resume func()
}

// pausedSoloPeer starts a session advertising limit requests in flight (0:
// the default) to a raw peer that has stopped reading.
func pausedSoloPeer(t *testing.T, limit int) soloPeer {
	t.Helper()
	r := NewRouter()
	r.HandleInline(mBig, func(_ context.Context, req *Request) error {
		return req.Reply(make([]byte, 1<<20), nil)
	})
	_, p := newRawPeer(t, false, Options{Router: r, MaxConcurrentRequests: limit})
	p.hello(t, wire.Settings{})
	resume := sync.OnceFunc(p.pause())
	t.Cleanup(resume) // a failed test must not leave the peer stuck
	return soloPeer{p, resume}
}
