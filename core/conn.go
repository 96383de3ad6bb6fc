package core

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// conn is one connection of a session (the state behind Conn handles).
type conn struct {
	s      *session
	id     uint64
	parity wire.Parity // ours on this connection
	router *Router

	// Outgoing calls. slots bounds our calls in flight by the peer's
	// advertised limit (rule 18); pending maps ids to waiting calls.
	slots   callSlots
	pending pendingTable

	// Incoming requests, bounded by localLimit (what we advertised).
	inflight   inboundTable
	localLimit int64
	spare      *Request  // an inline call's Request, reused whole (reading goroutine only)
	reqs       sync.Pool // *served: other handlers' call state, reused (Request.recycle)

	watchMu  sync.Mutex
	watching *Request // handlers waiting on Done (Request.watched), closed by teardown

	chans channelTable // channels of both directions

	watches ctxWatches // shared contexts our callers wait on (ctxwatch.go)

	pub    *Conn        // the handle that holds nothing (Request.Conn, Caller.Conn, Session.Root)
	refs   atomic.Int64 // holders: the owner handle, Callers, channels (rule 31)
	owned  bool         // we dialed or opened it: the last holder's release ends it
	closed atomic.Bool  // the root's last holder was released (rule 31)

	// Virtual connections only.
	state     atomic.Int32 // connOpen, connOpening, ...
	opened    chan error   // OpenConn's answer (connections we open)
	peerMeta  Metadata     // from OpenConn or AcceptConn
	peerLimit uint64       // the peer's MaxConcurrentRequests
	relay     *conn        // relay mode: where arriving messages go
	relayHold *Conn        // the relay's handle: the far half lives while this one does
	relayMu   sync.Mutex   // orders relayed frames after AcceptConn
	held      [][]byte     // frames relayed here before it was accepted

	tornDown chan struct{} // closed by teardown, once downErr is set
	downOnce sync.Once
	// downErr is the cause teardown fails calls with, set before tornDown
	// closes: down() reads it with one atomic load per channel item and
	// call instead of a non-blocking receive on tornDown, which measured
	// 7% of a streaming server's CPU.
	downErr atomic.Pointer[CallError]
	// setupMu: an acceptor configures a virtual connection's tables on its
	// own goroutine while the reading goroutine may tear it down.
	setupMu sync.Mutex
}

func newConn(s *session, id uint64, parity wire.Parity, router *Router, localLimit int) *conn {
	c := &conn{s: s, id: id, parity: parity, router: router, localLimit: int64(localLimit), tornDown: make(chan struct{})}
	c.pub = &Conn{conn: c}
	c.inflight.init(localLimit)
	return c
}

func (c *conn) setParity(p wire.Parity) { c.parity = p }

// setPeerLimit sizes the outgoing side once the peer's limit is known.
// Teardown may run on another goroutine meanwhile: it waits for setupMu.
func (c *conn) setPeerLimit(peer uint64) {
	c.setupMu.Lock()
	defer c.setupMu.Unlock()
	c.setPeerLimitLocked(peer)
}

func (c *conn) setPeerLimitLocked(peer uint64) {
	c.peerLimit = peer
	limit := c.s.opts.MaxOutstandingCalls
	if peer > 0 && peer < uint64(limit) {
		limit = int(peer)
	}
	c.slots.init(limit)
	c.pending.init(limit, c.parity.First())
}

// ID returns the connection id (0 for the root).
func (c *conn) ID() uint64 { return c.id }

// Session returns the session the connection belongs to.
func (c *conn) Session() *Session { return c.s.pub }

// dispatch handles Request, Response and Cancel for this connection on
// the reading goroutine; it owns f. False: the session was torn down.
func (c *conn) dispatch(link *netpoll.Conn, f netpoll.Frame, m *wire.Message) bool {
	switch m.Kind {
	case wire.KindResponse:
		if !m.Channels.Empty() { // version 1: only requests bind channels
			f.Release()
			c.s.violation(link, wire.CodeUnexpected, "a response that binds channels")
			return false
		}
		oc, k := c.pending.take(m.ID)
		if oc == nil { // late (after a cancel) or unknown: ignored (rule 21)
			f.Release()
			return true
		}
		if k != claimWaiting { // the caller left or is leaving: it is cancelled
			f.Release()
			c.released(oc, k)
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
func (c *conn) teardown(cause *CallError) {
	c.downOnce.Do(func() {
		c.setupMu.Lock()
		defer c.setupMu.Unlock()
		c.downErr.Store(cause)
		close(c.tornDown)
		if c.slots.ready() {
			c.pending.drain(func(oc *outCall, k claimKind) {
				if k != claimWaiting {
					c.released(oc, k)
					return
				}
				oc.fail(cause)
			})
		}
		c.dropWatches()
		c.inflight.each(func(r *Request) { r.cancel(ErrConnectionClosed) })
		c.cancelWatched()    // those that replied and still run too (rule 33)
		c.endChannels(cause) // rule 30
	})
}

// down returns the error calls get once the connection is gone, or nil.
func (c *conn) down() *CallError { return c.downErr.Load() }

// Caller returns a new handle for calling the peer on this connection. On
// a connection this peer dialed or opened, each Caller holds it alive until
// closed (rule 31); a Caller dropped without Close is released by a
// cleanup (rule 32). Caller.Close releases that Caller only.
func (c *conn) Caller() *Caller {
	cl := &Caller{c: c}
	cl.cleanup = hold(c, cl)
	return cl
}

// Caller makes calls to the peer on one connection. It is safe for
// concurrent use; share one, or take one per goroutine: each holds the
// connection until closed (see Conn.Caller).
type Caller struct {
	c       *conn
	once    sync.Once
	cleanup runtime.Cleanup
}

// Conn returns the connection the Caller calls on.
func (cl *Caller) Conn() *Conn { return cl.c.pub }

// Close releases this Caller, and only it: the connection lives on while
// its owner handle or another holder does (rule 31). Calls in flight on it
// are not affected. Close is idempotent.
func (cl *Caller) Close() error {
	cl.once.Do(func() {
		cl.cleanup.Stop()
		cl.c.release()
	})
	return nil
}
