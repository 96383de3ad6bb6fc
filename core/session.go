package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Session states.
const (
	stateHandshake int32 = iota // waiting for Hello or HelloAck
	stateOpen                   // calls flow
	stateDraining               // we sent GoAway: no new requests are run
	stateClosed                 // torn down
)

// session is one session's state, behind its Session handles.
type session struct {
	opts      Options
	initiator bool
	parity    wire.Parity // ours; the peer has the opposite
	link      atomic.Pointer[netpoll.Conn]
	root      *conn
	pub       *Session      // the handle that holds nothing (OnSession, Conn.Session)
	vconns    idMap[*conn]  // virtual connections, any state but closed
	nextConn  atomic.Uint64 // our virtual connection ids: the n-th is parity.First() + 2n
	workers   *workers
	ownPool   bool           // workers belongs to this session (Dial, Pipe), not to a Server
	onEnd     func(*session) // set before the link starts; called once, just before done closes

	state      atomic.Int32
	peerGoAway atomic.Bool
	opened     atomic.Bool   // the handshake completed (reportOpen ran)
	goAway     chan struct{} // closed when the peer's first GoAway arrives

	drainPinged atomic.Bool   // Drain sent its Ping after GoAway
	drainAck    chan struct{} // closed when that Ping's Pong arrives
	drainAcked  bool          // reading goroutine: drainAck is closed
	peer        wire.Settings // written once, before state becomes open
	peerMeta    Metadata
	maxFrame    atomic.Int64 // largest body we may send: the peer's limit and ours; 0 before the handshake

	vetting atomic.Bool   // acceptor: AcceptSession is deciding on the Hello
	hsDone  chan struct{} // closed when the handshake ends either way
	hsTimer *time.Timer

	heard     atomic.Bool // the peer sent something since the last keepalive tick
	run       itemRun     // reading goroutine only; empty between batches
	held      taskList    // reading goroutine only; empty between batches (hold)
	flush     task        // the owed flush of the responses written by pool handlers (oweFlush)
	silent    int         // keepalive ticks without hearing from the peer; timer-owned
	keepalive *time.Timer
	pingNonce uint64 // timer-owned

	active handlerCount // handlers running (never closed: its add always counts, and each add is owed one done)
	bg     handlerCount // other goroutines the session started (goTracked)

	errOnce sync.Once
	err     error
	errSet  chan struct{}
	done    chan struct{} // closed when everything the session started has ended
	closeMu sync.Mutex    // guards the timers and hsDone against teardown
}

func newSession(initiator bool, opts Options, pool *workers) *session {
	opts = opts.withDefaults()
	s := &session{
		opts: opts, initiator: initiator, workers: pool,
		parity:   wire.ParityEven,
		hsDone:   make(chan struct{}),
		goAway:   make(chan struct{}),
		drainAck: make(chan struct{}),
		errSet:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.flush.s = s
	if initiator {
		s.parity = wire.ParityOdd
	}
	s.pub = &Session{session: s}
	s.root = newConn(s, 0, s.parity, opts.Router, opts.MaxConcurrentRequests)
	s.closeMu.Lock() // the timer may fire before the assignment is done
	s.hsTimer = time.AfterFunc(opts.HandshakeTimeout, func() {
		s.fail(&HandshakeError{Code: ReasonNone, Reason: "timed out after " + opts.HandshakeTimeout.String()})
	})
	s.closeMu.Unlock()
	return s
}

// Root returns the root connection (id 0).
func (s *session) Root() *Conn { return s.root.pub }

// Caller returns a new Caller on the root connection; see Conn.Caller.
func (s *session) Caller() *Caller { return s.root.Caller() }

// PeerMetadata returns the metadata the peer sent in the handshake.
func (s *session) PeerMetadata() Metadata { return s.peerMeta }

// LinkStats returns the link's counters: frames and the write and read
// calls that carried them.
func (s *session) LinkStats() netpoll.Stats {
	if l := s.link.Load(); l != nil {
		return l.Stats()
	}
	return netpoll.Stats{}
}

// RemoteAddr returns the peer's address (nil before the link exists).
func (s *session) RemoteAddr() net.Addr {
	if l := s.link.Load(); l != nil {
		return l.RemoteAddr()
	}
	return nil
}

// TLS returns the link's TLS state (the peer's verified certificates
// under mutual TLS); nil on a link without TLS.
func (s *session) TLS() *tls.ConnectionState {
	if l := s.link.Load(); l != nil {
		return l.TLS()
	}
	return nil
}

// Initiator reports whether this peer opened the link.
func (s *session) Initiator() bool { return s.initiator }

// Done is closed when the session has ended and every goroutine it
// started (handlers included) has returned.
func (s *session) Done() <-chan struct{} { return s.done }

// Err returns the session's terminal error, nil while it is up:
// ErrSessionClosed after Close, a *ProtocolError, ErrKeepalive, a
// *HandshakeError, or the link's error wrapped with ErrConnectionClosed.
func (s *session) Err() error {
	select {
	case <-s.errSet:
		return s.err
	default:
		return nil
	}
}

// Close ends the session now: pending calls fail with ErrConnectionClosed,
// running handlers are cancelled, the link is closed gracefully (frames
// already committed, such as responses, still reach the peer). Close waits
// for every handler and goroutine the session started. Use Drain to let
// calls finish first.
func (s *session) Close() error {
	s.fail(ErrSessionClosed)
	<-s.done
	return nil
}

// Drain shuts down gracefully (rule 6): it sends GoAway, so the peer
// starts no new calls; requests that still arrive are answered Unavailable
// (retryable) without running. It waits for the running handlers to
// finish, then closes as Close does. If ctx ends first, Drain cancels the
// handlers that remain, starts the close and returns ctx's error at once,
// without waiting for handlers that ignore their context: Done tells when
// everything has ended.
func (s *session) Drain(ctx context.Context) error {
	for {
		if s.state.CompareAndSwap(stateOpen, stateDraining) {
			s.send(ctx, &wire.Message{Kind: wire.KindGoAway, Payload: []byte("draining")})
			// A Ping after the GoAway: its Pong comes after every request
			// the peer sent before it saw the GoAway (HTTP/2 drains the
			// same way). Marked before sending: the Pong may beat the
			// send's return.
			s.drainPinged.Store(true)
			s.send(ctx, &wire.Message{Kind: wire.KindPing, ID: drainPingID})
			break
		}
		// Still in the handshake: end it before HelloAck can go out (open
		// then fails), or the peer would start calls on a session closing
		// without a GoAway.
		if s.state.CompareAndSwap(stateHandshake, stateClosed) || s.state.Load() != stateOpen {
			break
		}
	}
	err := s.awaitGoAwaySeen(ctx)
	if err == nil {
		err = s.active.waitIdle(ctx)
	}
	s.fail(ErrSessionClosed) // cancels what remains
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drainPingID is the id of the Ping Drain sends after its GoAway; the
// keepalive's ids count up from 1 and never reach it.
const drainPingID = 1 << 63

// awaitGoAwaySeen waits until the peer has answered the Ping Drain sent
// after its GoAway. By then every request the peer sent before it saw the
// GoAway has been read, and so is running (counted by active) or was
// answered Unavailable: closing after the handlers end loses none of
// them. Without it, a request crossing the close on the wire would fail
// ConnectionClosed, and the caller could not tell that it never ran.
func (s *session) awaitGoAwaySeen(ctx context.Context) error {
	if !s.drainPinged.Load() {
		return nil
	}
	select {
	case <-s.drainAck:
	case <-s.errSet:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// send writes one message from a goroutine that may block.
func (s *session) send(ctx context.Context, m *wire.Message) error {
	return s.sendCommitted(ctx, m, nil)
}

// sendCommitted is send with a Committer (nil: none) for the frame.
func (s *session) sendCommitted(ctx context.Context, m *wire.Message, n netpoll.Committer) error {
	link := s.link.Load()
	if link == nil {
		return ErrConnectionClosed
	}
	buf := getBuf()
	*buf = s.appendControl((*buf)[:0], m)
	err := link.WriteFrameCommitted(ctx, *buf, n)
	putBuf(buf)
	return err
}

// sendSoon writes m, a message of connection c, without ever blocking
// the calling goroutine, and queued at once, before anything its caller
// sends next: a control frame (netpoll's QueueControl) that does not
// wait for room in the outbound buffer. For messages from places that
// must not wait: Cancel (the caller is told at once, rule 19), a
// channel's Close or Reset and the acknowledgement of the peer's
// (cleanups, rule 32, and the reading goroutine). Each is sent at most
// once per call or channel of ours, so a peer that does not read cannot
// make them pile up beyond our own calls and channels. (Had it to wait,
// an acknowledgement could be overtaken by a request binding new
// channels, which the peer would count against its MaxChannels with the
// old one still open: a violation that ends the session.) Like every
// message of a connection, it is dropped once the connection is torn
// down (connGate).
func (c *conn) sendSoon(m *wire.Message) { c.sendSoonGated(m, c.gate()) }

// sendSoonGated is sendSoon with another gate than the connection's (one
// that keeps its rule too: a Tx's, txgate.go).
func (c *conn) sendSoonGated(m *wire.Message, gate netpoll.Admitter) {
	s := c.s
	link := s.link.Load()
	if link == nil {
		return
	}
	buf := getBuf()
	*buf = s.appendControl((*buf)[:0], m)
	_ = link.QueueControl(*buf, gate)
	putBuf(buf)
}

// send writes m, a message of connection c, waiting for room; once c is
// torn down it is dropped and send returns why c ended.
func (c *conn) send(ctx context.Context, m *wire.Message) error {
	err := c.s.sendCommitted(ctx, m, c.gate())
	if err == netpoll.ErrNotAdmitted {
		return c.down()
	}
	return err
}

// connGate admits a frame of a virtual connection only while the
// connection is not torn down, checked under the outbound buffer's lock.
// Teardown comes before the CloseConn (ours, or our acknowledgement of
// the peer's), which is queued under the same lock, so a frame admitted
// here leaves before it and none follows it: after CloseConn the peer
// takes any message for the id as a violation (rule 9). A request's
// response has the same gate (leaveOnCommit).
type connGate conn

func (c *conn) gate() *connGate { return (*connGate)(c) }

// Admit implements netpoll.Admitter.
func (g *connGate) Admit() bool {
	c := (*conn)(g)
	return c.id == 0 || c.down() == nil
}

// Committed implements netpoll.Committer.
func (g *connGate) Committed() {}

// goTracked runs f on a goroutine of its own that Done waits for. After
// the session has fully ended it runs nothing (there is nothing left for f
// to do) and returns false.
func (s *session) goTracked(f func()) bool {
	if !s.bg.add() {
		return false
	}
	go func() {
		defer s.bg.done()
		f()
	}()
	return true
}

// queue writes one message from the reading goroutine, never blocking:
// dropped if the outbound buffer is full.
func (s *session) queue(link *netpoll.Conn, m *wire.Message) error {
	return s.queueMessage(link, m, false)
}

// queueLast is queue for the last message of a session (ProtocolError,
// Reject): queued even when the outbound buffer is full, since there is
// one per session, so that a peer that stops reading, breaks a rule and
// reads again still learns why the link closes.
func (s *session) queueLast(link *netpoll.Conn, m *wire.Message) error {
	return s.queueMessage(link, m, true)
}

func (s *session) queueMessage(link *netpoll.Conn, m *wire.Message, last bool) error {
	buf := getBuf()
	*buf = s.appendControl((*buf)[:0], m)
	var err error
	if last {
		err = link.QueueControl(*buf, nil)
	} else {
		err = link.QueueFrame(*buf)
	}
	putBuf(buf)
	return err
}

// violation reports a protocol violation by the peer (rule 5): tell it with
// ProtocolError, then tear the session down.
func (s *session) violation(link *netpoll.Conn, code wire.Code, reason string) {
	if s.Err() == nil {
		_ = s.queueLast(link, &wire.Message{Kind: wire.KindProtocolError, Code: code, Payload: []byte(reason)})
	}
	s.fail(&ProtocolError{Code: ReasonCode(code), Reason: reason})
}

// fail tears the session down with err; the first error wins (rule 33).
func (s *session) fail(err error) {
	first := false
	s.errOnce.Do(func() {
		s.err = err
		close(s.errSet)
		first = true
	})
	if !first {
		return
	}
	s.state.Store(stateClosed)
	s.closeMu.Lock()
	s.hsTimer.Stop()
	select {
	case <-s.hsDone:
	default:
		close(s.hsDone)
	}
	if s.keepalive != nil {
		s.keepalive.Stop()
	}
	s.closeMu.Unlock()
	cause := s.callError()
	s.root.teardown(cause)
	s.vconns.Range(func(_ uint64, c *conn) bool {
		c.teardown(cause)
		c.relayMu.Lock() // an acceptor may be setting it right now
		relay := c.relay
		c.relayMu.Unlock()
		if relay != nil {
			go relay.Close() // the far half of a relay ends with this one
		}
		if c.opened != nil {
			select {
			case c.opened <- cause: // an OpenConn still waiting
			default:
			}
		}
		return true
	})
	// Closing the link waits for its reading goroutine, which may be the
	// caller of fail: do it on a goroutine of its own.
	go func() {
		if link := s.link.Load(); link != nil {
			if errors.Is(err, ErrKeepalive) {
				// The peer is presumed gone: a graceful close would wait
				// CloseTimeout for it to read and answer. Drop the socket.
				link.Abort(err)
			}
			_ = link.Close()
			<-link.Done()
		}
		s.active.waitIdle(context.Background())
		s.bg.close()
		if s.ownPool {
			s.workers.release()
		}
		s.reportEnd()
		if s.onEnd != nil {
			s.onEnd(s)
		}
		close(s.done)
	}()
}

// callError is the error pending calls get when the session ends.
func (s *session) callError() *CallError {
	err := s.Err()
	kind := ErrConnectionClosed
	if errors.Is(err, ErrProtocol) {
		kind = ErrProtocol
	}
	return &CallError{Kind: kind, Cause: err}
}

// linkEvents is the session as its link's netpoll.Handler. A type of its
// own keeps HandleFrames and HandleClose, plumbing for netpoll, out of
// Session's method set.
type linkEvents session

func (s *session) events() *linkEvents { return (*linkEvents)(s) }

// HandleFrames implements netpoll.Handler.
func (e *linkEvents) HandleFrames(link *netpoll.Conn, frames []netpoll.Frame) {
	(*session)(e).handleFrames(link, frames)
}

// HandleClose implements netpoll.Handler: the link is gone. A peer that
// broke the framing (a length over our maximum, a malformed header) ends
// it with a protocol violation: nothing is sent, since the framing is lost
// (docs/PROTOCOL.md, section 2), but the error says so, and no call it
// fails is retryable (it would meet the same peer).
func (e *linkEvents) HandleClose(_ *netpoll.Conn, err error) {
	s := (*session)(e)
	var fe *netpoll.FrameError
	if !errors.As(err, &fe) {
		s.fail(&CallError{Kind: ErrConnectionClosed, Message: "link closed", Cause: err})
		return
	}
	code := ReasonFrameTooLarge
	if errors.Is(err, netpoll.ErrMalformedHeader) {
		code = ReasonMalformed
	}
	if s.state.Load() == stateHandshake {
		s.fail(&HandshakeError{Code: code, Reason: fe.Error(), Err: fe})
		return
	}
	s.fail(&ProtocolError{Code: code, Reason: fe.Error(), Err: fe})
}

// handleFrames decodes and dispatches every frame of one read, on the
// reading goroutine.
func (s *session) handleFrames(link *netpoll.Conn, frames []netpoll.Frame) {
	if s.link.Load() == nil { // a Dial's first frames can beat its return
		s.attach(link)
	}
	s.heard.Store(true)
	var m wire.Message // one for the batch: dispatch keeps no pointer to it
	defer s.endBatch() // on every way out of the batch
	for i, f := range frames {
		if s.state.Load() == stateClosed {
			releaseFrames(frames[i:])
			return
		}
		if err := wire.ParseMessageInto(&m, f.Body); err != nil {
			f.Release()
			releaseFrames(frames[i+1:])
			if s.state.Load() == stateHandshake {
				s.refuseHello(link, err)
			} else {
				s.violation(link, wire.CodeMalformed, err.Error())
			}
			return
		}
		if !m.Metadata.Empty() {
			if reason := s.metadataOverLimit(m.Metadata); reason != "" {
				f.Release()
				releaseFrames(frames[i+1:])
				if s.state.Load() == stateHandshake && !s.initiator {
					// The initiator could not know our limits yet.
					s.reject(link, wire.CodeSettings, "Hello "+reason)
				} else {
					s.violation(link, wire.CodeMetadataTooLarge, m.Kind.String()+" "+reason)
				}
				return
			}
		}
		// Anything but an item ends the run of items before it: a
		// channel's items are queued before its close, a call's before
		// its response.
		if m.Kind != wire.KindChannelItem && !s.endRun() {
			f.Release()
			releaseFrames(frames[i+1:])
			return
		}
		if !s.dispatch(link, f, &m) {
			releaseFrames(frames[i+1:])
			return
		}
	}
}

func releaseFrames(frames []netpoll.Frame) {
	for _, f := range frames {
		f.Release()
	}
}

// dispatch handles one message; it owns f (releases it or hands it on).
// It returns false once the session is torn down.
func (s *session) dispatch(link *netpoll.Conn, f netpoll.Frame, m *wire.Message) bool {
	if s.state.Load() == stateHandshake {
		f.Release()
		return s.handshake(link, m)
	}
	switch m.Kind {
	case wire.KindRequest, wire.KindResponse, wire.KindCancel,
		wire.KindChannelItem, wire.KindChannelClose, wire.KindChannelReset, wire.KindGrantCredit:
		c := s.conn(m.Conn)
		if c == nil {
			f.Release()
			s.violation(link, wire.CodeUnknownConn, fmt.Sprintf("%v for connection %d, which is not open", m.Kind, m.Conn))
			return false
		}
		switch c.state.Load() {
		case connClosing: // we closed it; the peer had not seen our CloseConn yet
			f.Release()
			return true
		case connOpening, connAccepting:
			f.Release()
			s.violation(link, wire.CodeUnexpected, fmt.Sprintf("%v on connection %d before it was accepted", m.Kind, m.Conn))
			return false
		}
		if c.relay != nil {
			s.submitHeld() // a relayed write may block: the batch's handlers must not wait for it
			c.relayFrame(f, m)
			return true
		}
		if m.Kind >= wire.KindChannelItem {
			return c.dispatchChannel(link, f, m)
		}
		return c.dispatch(link, f, m)
	}
	f.Release()
	switch m.Kind {
	case wire.KindPing:
		_ = s.queue(link, &wire.Message{Kind: wire.KindPong, ID: m.ID})
	case wire.KindPong:
		// heard already recorded
		if m.ID == drainPingID && s.drainPinged.Load() && !s.drainAcked {
			s.drainAcked = true // reading goroutine only
			close(s.drainAck)
		}
	case wire.KindGoAway:
		if !s.peerGoAway.Swap(true) {
			close(s.goAway)
		}
	case wire.KindProtocolError:
		s.fail(&ProtocolError{Code: ReasonCode(m.Code), Reason: string(m.Payload), Remote: true})
		return false
	case wire.KindOpenConn, wire.KindAcceptConn, wire.KindRejectConn, wire.KindCloseConn:
		return s.dispatchConn(link, m)
	default: // handshake kinds after the handshake, AcceptConn/RejectConn we never asked for
		s.violation(link, wire.CodeUnexpected, m.Kind.String()+" after the handshake")
		return false
	}
	return true
}

// conn returns the connection with id (root or virtual, any state), or
// nil.
func (s *session) conn(id uint64) *conn {
	if id == 0 {
		return s.root
	}
	c, _ := s.vconns.Load(id)
	return c
}

// startKeepaliveLocked arms the ping timer once the session is open.
// Called with closeMu held.
func (s *session) startKeepaliveLocked() {
	if s.opts.KeepaliveInterval < 0 || s.Err() != nil {
		return
	}
	s.keepalive = time.AfterFunc(s.opts.KeepaliveInterval, s.keepaliveTick)
}

// attach makes link the session's, once, with the session's byte budget
// as its read budget (rule 34).
func (s *session) attach(link *netpoll.Conn) {
	if s.link.CompareAndSwap(nil, link) {
		link.SetReadBudget(int64(s.opts.ByteBudget))
	}
}

func (s *session) linkPaused() bool {
	l := s.link.Load()
	return l != nil && l.Paused()
}

// keepaliveTick runs on the timer's goroutine: ping, and give up on a peer
// silent for KeepaliveTimeout (rule 4).
func (s *session) keepaliveTick() {
	// While the byte budget has paused reading (rule 34) the peer is not
	// heard because we do not listen: that silence is ours, not its.
	if s.heard.Swap(false) || s.linkPaused() {
		s.silent = 0
	} else {
		s.silent++
	}
	if time.Duration(s.silent)*s.opts.KeepaliveInterval >= s.opts.KeepaliveTimeout {
		s.fail(ErrKeepalive)
		return
	}
	s.pingNonce++
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.KeepaliveInterval)
	_ = s.send(ctx, &wire.Message{Kind: wire.KindPing, ID: s.pingNonce})
	cancel()
	s.closeMu.Lock()
	if s.Err() == nil {
		s.keepalive.Reset(s.opts.KeepaliveInterval)
	}
	s.closeMu.Unlock()
}

// handlerCount counts running goroutines (handlers, or the session's
// other goroutines) and lets Drain and Close wait for zero. (A WaitGroup
// cannot: Add may race with Wait while requests are still being
// dispatched.) Counting is one atomic operation each way, as every
// request is counted; the lock is taken only to wait or to wake a waiter.
//
// No lost wake-up: a waiter sets hcWaiting before it looks at the count,
// and done looks at hcWaiting in the same atomic operation that drops the
// count, so either the waiter sees zero or done sees the waiter.
type handlerCount struct {
	state atomic.Int64 // the count, and hcClosed and hcWaiting
	mu    sync.Mutex
	idle  chan struct{} // closed when the count drops to 0; nil while nobody waits
}

const (
	hcClosed  = 1 << 62 // close was called: add refuses
	hcWaiting = 1 << 61 // idle is set: the count's drop to zero must close it
	hcCount   = hcWaiting - 1
)

// add counts one more; false once close has run.
func (h *handlerCount) add() bool {
	for {
		v := h.state.Load()
		if v&hcClosed != 0 {
			return false
		}
		if h.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// close refuses every later add and waits until the count is zero.
func (h *handlerCount) close() {
	h.state.Or(hcClosed)
	h.waitIdle(context.Background())
}

func (h *handlerCount) done() {
	if v := h.state.Add(-1); v&hcCount == 0 && v&hcWaiting != 0 {
		h.mu.Lock()
		h.wakeLocked()
		h.mu.Unlock()
	}
}

// wakeLocked releases the waiters if the count is (still) zero.
func (h *handlerCount) wakeLocked() bool {
	if h.idle == nil || h.state.Load()&hcCount != 0 {
		return false
	}
	close(h.idle)
	h.idle = nil
	h.state.And(^hcWaiting)
	return true
}

func (h *handlerCount) waitIdle(ctx context.Context) error {
	h.mu.Lock()
	if h.idle == nil {
		h.idle = make(chan struct{})
		h.state.Or(hcWaiting)
	}
	idle := h.idle
	if h.wakeLocked() {
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Encode buffers for outgoing messages, pooled by pointer.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// getBuf returns an empty pooled buffer.
func getBuf() *[]byte {
	b := bufPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 { // don't let one huge message pin memory
		bufPool.Put(b)
	}
}
