package core

import (
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// A receiver's window grows while it is what limits the stream.
//
// A sender may have one window of items unacknowledged, so a stream
// carries at most one window per round trip: 1024 items over a 10 ms
// round trip are about 100k items/s, whatever the link and the two ends
// could do (BENCHMARKS.md, the optimisation log, 2026-12-08). HTTP/2 and
// QUIC receivers grow their windows toward the bandwidth-delay product;
// an Rx does so after the rule of quic-go's flow controller: when its
// consumer takes a whole window's worth of items in less than two round
// trips, the window, not the consumer, is the limit, and the window
// doubles, the extra credit going out with the grant that notices. A
// consumer slower than that (one window per two round trips) keeps its
// window, and so its backpressure. Growth stops at windowGrowth times
// the initial window (never past wire.MaxWindow): the items a receiver
// may have to queue stay within a bound its creator chose, and their
// bytes within the receiver's ChannelByteWindow as before. A window of 0
// (credit granted by hand) never grows.
//
// The round trip is measured from the grants themselves: an item past the
// credit granted before a grant can only have been sent after that grant
// reached the sender, so the time from sending the grant to the arrival
// of the first such item is at least one round trip, and about one while
// the sender waits for credit, which is when growth matters. The smallest
// such sample is kept. On loopback the round trip is tens of
// microseconds, and a consumer that keeps up with a fast sender still
// outruns a window of DefaultWindow: there too a single stream's window
// grows (and its rate with it, BENCHMARKS.md), while a stream of a few
// items never takes a whole window, and keeps its own.

// windowGrowth bounds growth: a window reaches at most this many times
// its initial size.
const windowGrowth = 16

// windowTuner is an Rx's window growth state (chanState.tune, under
// chanState.mu), made by its first grant. The window itself is
// chanState.windowNow, which the paths every item takes read: the tuner's
// methods are given it, and the time, so tests can drive them.
type windowTuner struct {
	max        uint64        // the largest window: windowGrowth x the initial one, within wire.MaxWindow
	rtt        time.Duration // the smallest round trip sampled; 0: none yet
	probeAt    time.Time     // when the grant being timed went out; zero: none
	probeLimit uint64        // the credit granted before it
	epochAt    time.Time     // when the current window's worth of takes began
	epochTaken uint64        // items taken since epochAt
}

func newWindowTuner(window uint64) *windowTuner {
	return &windowTuner{max: min(window*windowGrowth, wire.MaxWindow)}
}

// grantTunedLocked is grantLocked's part for the window: it times the
// grant g and adds to it what the window grew by (Rx, under mu, at the
// grant's time).
func (st *chanState) grantTunedLocked(g *grant) {
	if st.tune == nil {
		if st.window == 0 { // credit by hand only: never grows
			return
		}
		st.tune = newWindowTuner(st.window)
	}
	window := uint64(st.windowNow)
	if !st.tune.grows(window) {
		return
	}
	now := time.Now()
	st.tune.granted(now, st.allowed)
	grown := st.tune.taken(now, g.items, window)
	g.items += grown - window
	st.windowNow = uint32(grown)
	st.probing = true
}

// receivedTunedLocked ends the grant being timed if received (items so
// far) passed its limit (reading goroutine, under mu).
func (st *chanState) receivedTunedLocked() {
	if st.tune.ends(st.received) {
		st.tune.received(time.Now())
		st.probing = false
	}
}

// granted notes a grant sent at now, with before the credit granted until
// then: it starts timing a round trip unless one is being timed.
func (t *windowTuner) granted(now time.Time, before uint64) {
	if t.probeAt.IsZero() {
		t.probeAt, t.probeLimit = now, before
	}
}

// ends reports whether received items (the total so far) end the round
// trip being timed: then received is to be called.
func (t *windowTuner) ends(received uint64) bool {
	return !t.probeAt.IsZero() && received > t.probeLimit
}

// received ends the round trip being timed, at now.
func (t *windowTuner) received(now time.Time) {
	if d := now.Sub(t.probeAt); t.rtt == 0 || d < t.rtt {
		t.rtt = d
	}
	t.probeAt = time.Time{}
}

// grows reports whether window may still grow: only then are grants
// timed (a clock read each).
func (t *windowTuner) grows(window uint64) bool { return window < t.max }

// taken counts n items taken, granted back at now, and returns the window
// from now on: if the window's worth of items that ended here were taken
// in less than two round trips, window doubled (within max); else window.
// What it grew by goes out with the grant.
func (t *windowTuner) taken(now time.Time, n, window uint64) uint64 {
	if t.epochAt.IsZero() {
		t.epochAt = now
	}
	t.epochTaken += n
	if t.epochTaken < window {
		return window
	}
	fast := now.Sub(t.epochAt) < 2*t.rtt // never before a round trip is known (rtt 0)
	t.epochAt, t.epochTaken = now, 0
	if !fast {
		return window
	}
	return min(2*window, t.max)
}
