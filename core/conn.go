package core

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rove-rpc/rove/core/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Conn is one connection of a session: the root (id 0) or a virtual one.
// Each has its own handlers, callers, id allocators and limits; request
// and channel ids are allocated by the connection's parity (rule 10).
type Conn struct {
	s      *Session
	id     uint64
	parity wire.Parity // ours on this connection
	router *Router

	// Outgoing calls. slots bounds our calls in flight by the peer's
	// advertised limit (rule 18); pending maps ids to waiting calls.
	slots   chan struct{}
	pending pendingTable

	// Incoming requests, bounded by localLimit (what we advertised).
	inflight   inboundTable
	localLimit int64
	spare      *Request // an inline call's Request, reused (reading goroutine only)

	watchMu  sync.Mutex
	watching *Request // handlers waiting on Done (Request.watched), closed by teardown

	chans channelTable // channels of both directions

	callers atomic.Int64 // live Callers (rule 31)
	closed  atomic.Bool  // the last Caller closed it (rule 31)

	// Virtual connections only.
	state     atomic.Int32 // connOpen, connOpening, ...
	opened    chan error   // OpenConn's answer (connections we open)
	peerMeta  Metadata     // from OpenConn or AcceptConn
	peerLimit uint64       // the peer's MaxConcurrentRequests
	relay     *Conn        // relay mode: where arriving messages go
	relayMu   sync.Mutex   // orders relayed frames after AcceptConn
	held      [][]byte     // frames relayed here before it was accepted

	tornDown  chan struct{} // closed by teardown
	downOnce  sync.Once
	downCause *CallError
	// setupMu: an acceptor configures a virtual connection's tables on its
	// own goroutine while the reading goroutine may tear it down.
	setupMu sync.Mutex
}

func newConn(s *Session, id uint64, parity wire.Parity, router *Router, localLimit int) *Conn {
	c := &Conn{s: s, id: id, parity: parity, router: router, localLimit: int64(localLimit), tornDown: make(chan struct{})}
	c.inflight.init(localLimit)
	c.chans.init()
	return c
}

func (c *Conn) setParity(p wire.Parity) { c.parity = p }

// setPeerLimit sizes the outgoing side once the peer's limit is known.
// Teardown may run on another goroutine meanwhile: it waits for setupMu.
func (c *Conn) setPeerLimit(peer uint64) {
	c.setupMu.Lock()
	defer c.setupMu.Unlock()
	c.setPeerLimitLocked(peer)
}

func (c *Conn) setPeerLimitLocked(peer uint64) {
	c.peerLimit = peer
	limit := c.s.opts.MaxOutstandingCalls
	if peer > 0 && peer < uint64(limit) {
		limit = int(peer)
	}
	c.slots = make(chan struct{}, limit)
	c.pending.init(limit, c.parity.First())
}

// ID returns the connection id (0 for the root).
func (c *Conn) ID() uint64 { return c.id }

// Session returns the session the connection belongs to.
func (c *Conn) Session() *Session { return c.s }

// dispatch handles Request, Response and Cancel for this connection on
// the reading goroutine; it owns f. False: the session was torn down.
func (c *Conn) dispatch(link *netpoll.Conn, f netpoll.Frame, m *wire.Message) bool {
	switch m.Kind {
	case wire.KindResponse:
		if !m.Channels.Empty() { // version 1: only requests bind channels
			f.Release()
			c.s.violation(link, wire.CodeUnexpected, "a response that binds channels")
			return false
		}
		oc, gaveUp := c.pending.take(m.ID)
		if oc == nil { // late (after a cancel) or unknown: ignored (rule 21)
			f.Release()
			return true
		}
		if gaveUp { // the caller left: free what it left behind
			f.Release()
			c.freeCall(oc)
			return true
		}
		oc.complete(f, m)
		return true
	case wire.KindCancel:
		f.Release()
		if !c.parity.Opposite().Owns(m.ID) {
			c.s.violation(link, wire.CodeWrongParity, "cancel for a request id of the wrong parity")
			return false
		}
		if r := c.inflight.lookup(m.ID); r != nil {
			r.cancel(ErrCancelled)
		}
		return true
	}
	return c.serve(link, f, m)
}

// teardown fails every pending call and cancels every running handler of
// the connection (rule 33).
func (c *Conn) teardown(cause *CallError) {
	c.downOnce.Do(func() {
		c.setupMu.Lock()
		defer c.setupMu.Unlock()
		c.downCause = cause
		close(c.tornDown)
		if c.slots != nil {
			c.pending.drain(func(oc *outCall, gaveUp bool) {
				if gaveUp {
					c.freeCall(oc)
					return
				}
				oc.fail(cause)
			})
		}
		c.inflight.each(func(r *Request) { r.cancel(ErrConnectionClosed) })
		c.cancelWatched()    // those that replied and still run too (rule 33)
		c.endChannels(cause) // rule 30
	})
}

// down returns the error calls get once the connection is gone, or nil.
func (c *Conn) down() *CallError {
	select {
	case <-c.tornDown:
		return c.downCause
	default:
		return nil
	}
}

// Caller returns a new handle for calling the peer on this connection.
// Callers of one connection share a refcount (rule 31): when the last one
// is closed, the connection is closed: a virtual one as if the peer had
// closed it, the root internally, ending the session once no virtual
// connection remains. A Caller that is dropped without Close is caught by
// a cleanup (rule 32), so a leak cannot hold a connection open forever.
func (c *Conn) Caller() *Caller {
	c.callers.Add(1)
	cl := &Caller{c: c}
	cl.cleanup = runtime.AddCleanup(cl, (*Conn).releaseCaller, c)
	return cl
}

// releaseCaller drops one Caller reference.
func (c *Conn) releaseCaller() {
	if c.callers.Add(-1) != 0 || !c.closed.CompareAndSwap(false, true) {
		return
	}
	if c.id != 0 {
		c.Close() // as if the peer had asked
		return
	}
	// The root is closed internally (no CloseConn for 0); the session ends
	// once no virtual connection remains.
	if c.s.vconns.Size() == 0 {
		go c.s.Close()
	}
}

// Caller makes calls to the peer on one connection. It is safe for
// concurrent use; share one, or take one per goroutine: they share a
// refcount.
type Caller struct {
	c       *Conn
	once    sync.Once
	cleanup runtime.Cleanup
}

// Conn returns the connection the Caller calls on.
func (cl *Caller) Conn() *Conn { return cl.c }

// Close releases this Caller; the last one to close ends its connection
// (see Conn.Caller). Calls in flight on it are not affected by this
// Caller's Close, only by the connection's. Close is idempotent.
func (cl *Caller) Close() error {
	cl.once.Do(func() {
		cl.cleanup.Stop()
		cl.c.releaseCaller()
	})
	return nil
}
