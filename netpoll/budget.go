package netpoll

import (
	"sync"
	"sync/atomic"
)

// budget is a connection's read budget (Options.MaxHeld): the bytes of
// delivered frames not yet released, and the pause of reading while they
// are over the limit.
//
// Reading states. The reading side moves readOn -> readPausing ->
// readPaused when a delivery leaves too much held; a Release that brings
// the count to half the limit moves readPaused -> readResuming, and the
// reading side, once it reads again, -> readOn. pauseMu orders the moves
// that race (a Release against the reading side stopping, an abort
// against a resume); the fast path of Release is one atomic add and one
// atomic load.
type budget struct {
	held     atomic.Int64
	maxHeld  atomic.Int64 // Options.MaxHeld, or SetReadBudget's; 0: no budget
	rstate   atomic.Int32
	finished atomic.Bool // finish ran

	pauseMu sync.Mutex
	gate    chan struct{} // std and pipe: closed to let the paused read loop go on
	park    *gnetPark     // gnet: the detached connection while paused
}

const (
	readOn int32 = iota
	readPausing
	readPaused
	readResuming
)

func (c *Conn) hold(n int) { c.held.Add(int64(n)) }

func (c *Conn) unhold(n int) {
	if c.held.Add(-int64(n)) <= c.resumeAt() && c.rstate.Load() == readPaused {
		c.resume()
	}
}

// overBudget reports whether reading must pause after this delivery.
func (c *Conn) overBudget() bool {
	max := c.maxHeld.Load()
	return max > 0 && c.held.Load() > max
}

func (c *Conn) resumeAt() int64 {
	if max := c.maxHeld.Load(); max > 0 {
		return max / 2
	}
	return 1 << 62 // no budget: anything resumes
}

// SetReadBudget sets the read budget (see Options.MaxHeld) from now on;
// 0 removes it. Safe from any goroutine: a protocol sets it once it knows
// its own, before or after frames arrive.
func (c *Conn) SetReadBudget(max int64) {
	c.maxHeld.Store(max)
	if c.held.Load() <= c.resumeAt() && c.rstate.Load() == readPaused {
		c.resume()
	}
}

// HoldBytes counts n bytes that a protocol keeps for this connection's
// peer, outside any Frame (a copy of a response waiting for room, say),
// against the read budget, until ReleaseBytes gives them back: so a peer
// cannot make it keep more by other means than by its frames.
func (c *Conn) HoldBytes(n int) { c.hold(n) }

// ReleaseBytes gives back bytes counted with HoldBytes; it may resume
// reading.
func (c *Conn) ReleaseBytes(n int) { c.unhold(n) }

// Held returns the bytes of the read chunks that delivered frames not yet
// released keep alive (see Options.MaxHeld), plus what HoldBytes counted.
func (c *Conn) Held() int64 { return c.held.Load() }

// Paused reports whether reading is paused by the read budget: the peer
// is not being heard because we chose not to listen (a keepalive must not
// count that silence against it).
func (c *Conn) Paused() bool { return c.rstate.Load() != readOn }

// resume lets reading go on, from any goroutine (a Release, or the reading
// side finding it can go on at once).
func (c *Conn) resume() {
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	if !c.rstate.CompareAndSwap(readPaused, readResuming) {
		return
	}
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
		return
	}
	if c.park != nil {
		c.park.resume(c)
	}
}

// waitBudget is the std and pipe read loop's pause: it blocks while too
// much is held, or until the connection fails.
func (c *Conn) waitBudget() {
	c.pauseMu.Lock()
	gate := make(chan struct{})
	c.gate = gate
	c.rstate.Store(readPaused)
	c.pauseMu.Unlock()
	if c.held.Load() <= c.resumeAt() { // released while we stopped
		c.resume()
	}
	select {
	case <-gate:
	case <-c.errSet:
	}
	c.pauseMu.Lock()
	c.gate = nil
	c.rstate.Store(readOn)
	c.pauseMu.Unlock()
}
