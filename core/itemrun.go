package core

import (
	"fmt"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// itemRun is the run of consecutive items for one channel that the
// reading goroutine has cut from a batch and not yet queued. A sender
// writes a stream's items back to back, so a batch carries runs of them;
// queuing a run under one lock of its channel (deliverRun), with at most
// one wake-up, spares the lock's cache line a trip between the reading
// goroutine and the receiver for every item.
//
// The run ends, and is queued, before anything else of the batch is
// dispatched (an item for another channel, a close, a response), when it
// is full, and at the end of the batch: so items are queued in the order
// they came, before what followed them, and the receiver waits for them
// no longer than the rest of its batch takes to cut.
//
// Reading goroutine only. Empty between batches, so an idle session pins
// neither a channel nor a read chunk.
type itemRun struct {
	st     *chanState // the run's channel; also the lookup cache for the next item
	link   *netpoll.Conn
	frames []netpoll.Frame // Body is each item's payload; made on the first item
}

// maxRun bounds a run: a batch of many small items is queued in pieces,
// so the run's frames stay a few hundred bytes.
const maxRun = 16

// endRun queues the run's items and empties it; false if that was a
// violation (reported).
func (s *session) endRun() bool {
	r := &s.run
	if r.st == nil {
		return true
	}
	st, link, frames := r.st, r.link, r.frames
	r.st, r.link = nil, nil
	ok := len(frames) == 0 || st.deliverRun(link, frames)
	clear(frames) // the run pins no chunk once queued or released
	r.frames = frames[:0]
	return ok
}

// deliverRun queues a run of items (reading goroutine). A sender over its
// credit is a violation: the items within the credit are queued, the rest
// released; nothing is buffered beyond what was granted (rule 29).
func (st *chanState) deliverRun(link *netpoll.Conn, frames []netpoll.Frame) bool {
	st.mu.Lock()
	switch {
	case st.ourDone || st.err != nil:
		// We reset it (drop what was in flight until the sender's Close),
		// or the connection ended (end dropped the queue): so are these.
		st.mu.Unlock()
		releaseFrames(frames)
		return true
	case st.peerDone:
		st.mu.Unlock()
		releaseFrames(frames)
		st.c.s.violation(link, wire.CodeUnknownChannel, fmt.Sprintf("item on channel %d after its close", st.id))
		return false
	}
	n := len(frames)
	if room := st.allowed - st.received; uint64(n) > room {
		n = int(room)
	}
	// Only items into an empty queue wake the receiver: a Recv waits only
	// after it found the queue empty under mu, so the first items after
	// that wake it, and a Recv woken with more queued passes the wake-up
	// on. A burst of items costs one wake-up, not one each.
	wake := n > 0 && st.head == len(st.queue)
	if n > 0 {
		if st.head > 0 && wake {
			st.queue, st.head = st.queue[:0], 0
		}
		if st.queue == nil {
			st.queue = rxQueues.Get().(*[rxQueueLen]rxItem)[:0]
		}
		for _, f := range frames[:n] {
			st.queue = append(st.queue, rxItem{frame: f})
		}
		st.received += uint64(n)
		if st.probing {
			st.receivedTunedLocked()
		}
	}
	received, allowed := st.received, st.allowed
	st.mu.Unlock()
	if wake {
		signal(st.notify)
	}
	if n < len(frames) {
		releaseFrames(frames[n:])
		st.c.s.violation(link, wire.CodeCreditExceeded, fmt.Sprintf("item %d on channel %d with %d credits granted", received+1, st.id, allowed))
		return false
	}
	return true
}
