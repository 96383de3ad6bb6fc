package netpoll

import "testing"

// The client engine takes half the Ps for its event loops, so that loops
// parked in epoll_wait cannot hold every P while the callers they woke
// wait for one; a configured number wins.
func TestGnetClientLoops(t *testing.T) {
	for _, tc := range []struct{ configured, procs, want int }{
		{0, 1, 1},
		{0, 2, 1},
		{0, 3, 1},
		{0, 8, 4},
		{3, 2, 3},
		{1, 16, 1},
	} {
		g := NewGnet(GnetOptions{EventLoops: tc.configured})
		if got := g.clientLoops(tc.procs); got != tc.want {
			t.Errorf("EventLoops %d, GOMAXPROCS %d: %d client loops, want %d", tc.configured, tc.procs, got, tc.want)
		}
	}
}
