package core

import (
	"context"
)

// A sender's side of its receiver's byte window (Options.ChannelByteWindow,
// advertised in the handshake; docs/PROTOCOL.md section 7). Credit bounds
// a channel's items in flight by count; the byte window bounds them by
// payload bytes, so that one channel of large items cannot take the
// receiver's whole byte budget and stall everything else on the session.
//
// unacked counts the payload bytes sent and not yet acknowledged: each
// item adds its bytes before it is sent, each grant subtracts the bytes it
// counts. A sender waits while unacked is at least half the window and the
// item would take it past the window. So an item larger than the window
// still goes (alone, once the others are acknowledged), and a waiting
// sender always has at least byteGrantStep unacknowledged (half the
// smallest window it honours), which every receiver grants back once it
// has taken it (grantDueLocked), whatever window it advertised itself: no
// wait is left without a grant to end it while the receiver reads, also
// when the window the sender keeps is not its receiver's own (a relay's).
//
// Waiting senders share one channel, bytesFreed, made by the first of
// them and closed (a broadcast) when bytes are acknowledged or the channel
// ends: all of them look again. It exists only while someone waits, so it
// costs nothing to channels whose items never fill the window.

// minByteWindow is the smallest byte window a sender honours (a smaller
// one advertised is taken as this), and byteGrantStep the payload bytes
// taken after which a receiver that advertised a window grants: half of
// the smallest, so that a waiting sender always has a grant coming.
const (
	minByteWindow = 64 << 10
	byteGrantStep = minByteWindow / 2
)

// takeBytes reserves size payload bytes of the receiver's byte window for
// one item, waiting for grants while the window is full (see above). With
// no window advertised it does nothing.
func (st *chanState) takeBytes(ctx context.Context, size int) error {
	pw := st.c.s.peer.ChannelByteWindow
	if pw == 0 {
		return nil
	}
	// A smaller window is not honoured (see byteGrantStep), and one past
	// 2^62 is as good as none (it would turn negative here).
	w := int64(min(max(pw, minByteWindow), 1<<62))
	n := int64(size)
	for {
		u := st.unacked.Load()
		if u < w/2 || u+n <= w {
			if st.unacked.CompareAndSwap(u, u+n) {
				return nil
			}
			continue
		}
		st.mu.Lock()
		if st.bytesFreed == nil {
			st.bytesFreed = make(chan struct{})
		}
		freed := st.bytesFreed
		st.mu.Unlock()
		// A grant between the load and the registration freed its bytes
		// before it could close freed: look again before waiting.
		if st.unacked.Load() != u {
			continue
		}
		if err := st.txErr(); err != nil {
			return err
		}
		select { // an end is seen next turn: by txErr, or by sendItem's check
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		case <-st.c.tornDown:
		}
	}
}

// ackBytes gives back n bytes of the window: acknowledged by a grant
// (the reading goroutine), or reserved by an item that never left. More
// than is unacknowledged (a receiver acknowledging what it never got)
// only frees the window: the receiver hurts no one but itself.
func (st *chanState) ackBytes(n uint64) {
	if n == 0 {
		return
	}
	for {
		u := st.unacked.Load()
		if st.unacked.CompareAndSwap(u, max(u-int64(min(n, 1<<62)), 0)) {
			break
		}
	}
	st.mu.Lock()
	st.freeBytesLocked()
	st.mu.Unlock()
}

// freeBytesLocked wakes every sender waiting for the byte window: bytes
// were acknowledged, or the channel ended.
func (st *chanState) freeBytesLocked() {
	if st.bytesFreed != nil {
		close(st.bytesFreed)
		st.bytesFreed = nil
	}
}
