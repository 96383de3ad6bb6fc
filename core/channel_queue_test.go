package core

import (
	"errors"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// A channel's starting queue goes back to rxQueues when the channel drops
// it, with no item left in it to pin a chunk. (sync.Pool may hand out
// another queue, or drop a Put under -race: the test retries until the
// same queue comes back.)
func TestDroppedQueueIsRecycledEmpty(t *testing.T) {
	for try := 0; ; try++ {
		q := rxQueues.Get().(*[rxQueueLen]rxItem)
		st := &chanState{queue: q[:0]}
		for _, b := range []string{"taken", "queued", "queued too"} {
			st.queue = append(st.queue, rxItem{frame: netpoll.Frame{Body: []byte(b)}})
		}
		st.queue[0], st.head = rxItem{}, 1 // the first was taken (Recv zeroes it)
		st.dropQueue()
		if st.queue != nil || st.head != 0 {
			t.Fatalf("the channel kept its queue: %d items, head %d", len(st.queue), st.head)
		}
		if got := rxQueues.Get().(*[rxQueueLen]rxItem); got == q {
			for i, it := range got {
				if it.frame.Body != nil {
					t.Fatalf("the recycled queue still holds %q in slot %d", it.frame.Body, i)
				}
			}
			return
		}
		if try == 100 {
			t.Fatal("a dropped queue never came back to the pool")
		}
	}
}

// spec:30 items that reach a channel after its connection ended are not
// queued: ending the channel dropped its queue, and a run of items cut
// before the end (queued at the end of its batch) is dropped as well,
// instead of waiting in the queue for the handle's Close.
func TestRunAfterEndIsDropped(t *testing.T) {
	st := &chanState{allowed: 4, notify: make(chan struct{}, 1), creditWake: make(chan struct{}, 1)}
	st.end(errors.New("link gone"))
	frames := []netpoll.Frame{{Body: []byte("a")}, {Body: []byte("b")}}
	if !st.deliverRun(nil, frames) {
		t.Fatal("a late run was taken for a violation")
	}
	if len(st.queue) != 0 || st.received != 0 {
		t.Fatalf("queued %d items (received %d) on an ended channel", len(st.queue), st.received)
	}
}

// spec:19 a control message sent without waiting (a Cancel, a channel's
// Close or Reset, the acknowledgement of a reset: sendSoon) is queued at
// once also when the outbound buffer is full, so it keeps its place before
// what its sender sends next; had it to wait for room on a goroutine of
// its own, a later request could overtake it (an acknowledgement overtaken
// by a request binding new channels makes the peer count the old channel
// against its MaxChannels, and end the session).
func TestControlMessageQueuedWhenOutboundIsFull(t *testing.T) {
	s, p := newRawPeer(t, false, Options{Router: echoRouter(), Link: netpoll.Options{MaxOutbound: 4 << 10}})
	p.hello(t, wire.Settings{})
	resume := sync.OnceFunc(p.pause())
	defer resume() // a failure must not leave the session's Close waiting on a peer that does not read
	link := s.link.Load()
	filler := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindChannelItem, ID: 99, Payload: make([]byte, 1000)})
	// Once the peer's handler waits and our writer waits on the pipe,
	// nothing leaves: the buffer, once full, stays full.
	testwait.For(t, "the buffer to fill", func() bool { return link.QueueFrame(filler) == netpoll.ErrWouldBlock })
	testwait.Blocked(t, "core.(*rawPeer).HandleFrames", 1)
	testwait.Blocked(t, "netpoll.(*outbound).writer", 1)
	testwait.For(t, "the buffer to be full", func() bool { return link.QueueFrame(filler) == netpoll.ErrWouldBlock })
	// Then frames as small as the Cancel, until not even one fits.
	small := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindChannelItem, ID: 99})
	if cancel := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindCancel, ID: 2}); len(small) > len(cancel) {
		t.Fatalf("the small filler (%d B) is larger than the Cancel (%d B)", len(small), len(cancel))
	}
	for link.QueueFrame(small) == nil {
	}
	before := link.Stats().FramesOut
	s.root.sendSoon(&wire.Message{Kind: wire.KindCancel, ID: 2})
	if got := link.Stats().FramesOut; got != before+1 {
		t.Fatalf("the Cancel was not queued at once: %d frames queued before it, %d after", before, got)
	}
	resume()
	for m := p.next(t); m.Kind != wire.KindCancel; m = p.next(t) {
		if m.Kind != wire.KindChannelItem {
			t.Fatalf("got %v before the Cancel", m.Kind)
		}
	}
}
