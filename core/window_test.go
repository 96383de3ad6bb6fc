package core

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/delaynet"
)

// An item past the credit granted before a grant ends that grant's round
// trip: the smallest sample is kept, and one grant is timed at a time.
func TestWindowTunerTimesGrants(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tu := newWindowTuner(16)
	if tu.ends(1 << 20) {
		t.Fatal("probing before any grant")
	}
	tu.granted(t0, 16)
	tu.granted(t0.Add(time.Millisecond), 24) // a second grant while the first is timed
	if tu.ends(16) {
		t.Fatal("the 16th item needs no grant, yet it ended the probe")
	}
	if !tu.ends(17) {
		t.Fatal("the 17th item needed the grant, yet it did not end the probe")
	}
	tu.received(t0.Add(30 * time.Millisecond))
	if tu.rtt != 30*time.Millisecond {
		t.Fatalf("round trip %v, want 30ms (from the first grant)", tu.rtt)
	}
	if tu.ends(1 << 20) {
		t.Fatal("still probing after the sample")
	}
	t1 := t0.Add(time.Second)
	tu.granted(t1, 32)
	tu.received(t1.Add(50 * time.Millisecond)) // longer: the sender was not waiting
	if tu.rtt != 30*time.Millisecond {
		t.Fatalf("round trip %v after a longer sample, want the smallest, 30ms", tu.rtt)
	}
	t2 := t1.Add(time.Second)
	tu.granted(t2, 48)
	tu.received(t2.Add(20 * time.Millisecond))
	if tu.rtt != 20*time.Millisecond {
		t.Fatalf("round trip %v after a shorter sample, want 20ms", tu.rtt)
	}
}

// A window doubles, the extra going out with the grant, when a window's
// worth of items was taken in less than two round trips; not when it took
// longer (a slow consumer keeps its backpressure), nor before a round
// trip is known; and never past 16 times the initial window.
func TestWindowTunerGrowth(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rtt := 10 * time.Millisecond
	tu := newWindowTuner(16)
	tu.rtt = rtt
	at, window := t0, uint64(16)
	take := func(n uint64, after time.Duration) uint64 { // what the window grew by
		at = at.Add(after)
		grown := tu.taken(at, n, window)
		extra := grown - window
		window = grown
		return extra
	}
	if x := take(8, 0); x != 0 {
		t.Fatalf("grew by %d after half a window", x)
	}
	if x := take(8, 19*time.Millisecond); x != 16 || window != 32 {
		t.Fatalf("a window taken in 19ms (round trip 10ms): grew by %d to %d, want 16 to 32", x, window)
	}
	// The next epoch starts at that grant: 32 items in 20ms is not fast.
	if x := take(16, 10*time.Millisecond) + take(16, 10*time.Millisecond); x != 0 || window != 32 {
		t.Fatalf("a window taken in 2 round trips: grew by %d to %d, want 0, 32", x, window)
	}
	for window < 256 { // fast epochs: doubling up to 16 x 16
		w := window
		if x := take(w, time.Millisecond); x != w {
			t.Fatalf("window %d taken in 1ms: grew by %d, want %d", w, x, w)
		}
	}
	if tu.grows(window) {
		t.Fatal("grows at 16 times the initial window")
	}
	if x := take(256, time.Millisecond); x != 0 || window != 256 {
		t.Fatalf("grew past 16 x: by %d to %d", x, window)
	}

	slow := newWindowTuner(16)
	if w := slow.taken(t0, 16, 16); w != 16 {
		t.Fatalf("grew to %d with no round trip known", w)
	}
	capped := newWindowTuner(5000) // 16 x would pass wire.MaxWindow
	capped.rtt = rtt
	capped.taken(t0, 2500, 5000)
	cw := capped.taken(t0.Add(time.Millisecond), 2500, 5000)
	if cw != 10000 {
		t.Fatalf("grew from 5000 to %d, want 10000", cw)
	}
	for at := t0.Add(time.Millisecond); capped.grows(cw); {
		at = at.Add(time.Millisecond)
		cw = capped.taken(at, cw, cw)
	}
	if cw != 65536 {
		t.Fatalf("window %d at its largest, want wire.MaxWindow 65536", cw)
	}
	if newWindowTuner(0).grows(0) {
		t.Fatal("a window of 0 grows")
	}
}

// spec:27 Grants are batched by half the window now, once it has grown
// (not half the initial one), and a grant that grows the window carries
// the extra credit with the items it gives back.
func TestGrantBatchingGrownWindow(t *testing.T) {
	s := &session{opts: Options{ChannelByteWindow: -1}}
	st := &chanState{c: &conn{s: s}, window: 16, allowed: 16, windowNow: 64, tune: newWindowTuner(16)}
	for i := 1; i <= 32; i++ {
		g := st.takenLocked(8)
		if want := uint64(0); i == 32 {
			want = 32
			if g.items != want {
				t.Fatalf("take %d of a grown window of 64: granted %d, want %d", i, g.items, want)
			}
		} else if g.items != want {
			t.Fatalf("take %d of a grown window of 64: granted %d, want none", i, g.items)
		}
	}
	st.tune.rtt = time.Hour // every window is taken in less than two of these
	st.tune.epochTaken = 32 // and this grant completes one
	g := st.takenLocked(8)
	for i := 2; i <= 32; i++ {
		g = st.takenLocked(8)
	}
	if g.items != 32+64 || st.windowNow != 128 || st.allowed != 16+32+96 {
		t.Fatalf("a grant that doubles a window of 64: %d items (window %d, allowed %d), want 96 (128, 144)", g.items, st.windowNow, st.allowed)
	}
	if g.bytes != 32*8 {
		t.Fatalf("the grant counts %d bytes, want those of the 32 items taken, 256: the extra credit gives no bytes back", g.bytes)
	}
}

// spec:26,27 One stream across a link with a round trip of 40 ms: the
// receiver's window, 16 items at first, grows while its consumer takes
// items faster than one window per two round trips, and every item
// arrives once, in order. At 16 items a round trip, 3000 items would take
// 7.5 s; the test's timeout is what it would hit.
func TestWindowGrowsAcrossARoundTrip(t *testing.T) {
	const oneWay = 20 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServeListener(delaynet.Listener{Listener: ln, OneWay: oneWay}, Options{Router: testbedRouter()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := DialConn(ctx, delaynet.NewConn(nc, oneWay), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cl := client.Caller()
	defer cl.Close()

	const n, window = 3000, 16
	rx := NewRx[int](cl.Conn(), window)
	got := make(chan error, 1)
	go func() { got <- expectSequence(rx, n) }()
	reply, err := call(ctx, cl, mGenerate, fmt.Appendf(nil, "%d", n), &CallOptions{Channels: []Channel{rx}})
	if err != nil || string(reply) != "done" {
		t.Fatalf("%q %v", reply, err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if w := rx.Window(); w <= window || w > window*windowGrowth {
		t.Fatalf("window %d after %d items, want grown past %d, at most %d", w, n, window, window*windowGrowth)
	}
}
