package core

import (
	"errors"
	"testing"

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
