package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Virtual connection states (Conn.state). The root is always open.
const (
	connOpen      int32 = iota
	connOpening         // we sent OpenConn, waiting for the answer
	connAccepting       // the peer opened it, our acceptor is deciding
	connClosing         // we sent CloseConn, waiting for the peer's
	connClosed
)

// ConnOptions configure this peer's side of one virtual connection.
type ConnOptions struct {
	// Router serves the peer's calls on this connection (nil: none).
	Router *Router
	// MaxConcurrentRequests: how many of the peer's requests this side
	// accepts in flight on the connection. 0: the session's.
	MaxConcurrentRequests int
	// Metadata goes with OpenConn or AcceptConn.
	Metadata Metadata
	// Parity, for OpenConn only: this side's parity for request and
	// channel ids on the connection. 0: the session's. (An acceptor always
	// takes the opposite of the opener's.)
	Parity Parity
	// Relay turns the connection into a relay: every call and channel
	// message that arrives on it is forwarded to Relay (a virtual
	// connection, usually of another session) with only the connection id
	// rewritten, and the two close together. Request and channel ids pass
	// through untouched, so the ends must use matching parities: open the
	// far side with Parity set to ConnRequest.Parity. Relayed writes may
	// block the reading goroutine when the far link is slow (that is the
	// backpressure); prefer netpoll.Std links for relays.
	Relay *Conn
}

// ConnRequest is the peer's request to open a virtual connection, as the
// acceptor sees it.
type ConnRequest struct {
	ID       uint64
	Metadata Metadata
	// Parity is the opener's parity for ids on the connection.
	Parity Parity
	// PeerLimit is the opener's MaxConcurrentRequests (0: none given).
	PeerLimit uint64
	// Conn is the connection being decided on. Until accepted it can only
	// be named as another connection's Relay.
	Conn *Conn
}

// AcceptConnFunc decides on a virtual connection the peer opens (rule 8):
// return this side's options to accept it, or an error to refuse it (its
// text is the reason the peer gets). It runs on a goroutine of its own and
// may block; ctx ends if the session does.
type AcceptConnFunc func(ctx context.Context, req ConnRequest) (ConnOptions, error)

// ConnRejectedError is OpenConn's error when the peer refused.
type ConnRejectedError struct {
	Code     ReasonCode
	Reason   string
	Metadata Metadata
}

func (e *ConnRejectedError) Error() string {
	return fmt.Sprintf("rove: virtual connection refused (%s): %s", e.Code, e.Reason)
}

// ErrTooManyConns: OpenConn found this session at Options.MaxVirtualConns.
var ErrTooManyConns = errors.New("rove: too many virtual connections")

func (o ConnOptions) limit(s *session) int {
	if o.MaxConcurrentRequests > 0 {
		return o.MaxConcurrentRequests
	}
	return s.opts.MaxConcurrentRequests
}

// OpenConn opens a virtual connection on the session (rule 8): it sends
// OpenConn with an id of this peer's parity and waits for the peer to
// accept or refuse. Nothing is sent on it before acceptance. The returned
// Conn has its own handlers, callers, ids and limits. A refusal is a
// *ConnRejectedError; if ctx ends first the error matches ErrCancelled
// (and ctx's own error), and a later acceptance is closed at once.
func (s *session) OpenConn(ctx context.Context, opts ConnOptions) (*Conn, error) {
	if s.state.Load() != stateOpen {
		return nil, &CallError{Kind: ErrConnectionClosed, Message: "session not open", Cause: s.Err()}
	}
	if s.vconns.Size() >= s.opts.MaxVirtualConns {
		return nil, ErrTooManyConns
	}
	if err := s.metadataFitsPeer(opts.Metadata); err != nil {
		return nil, &CallError{Kind: ErrSendFailed, Cause: err}
	}
	if err := s.relayFits(opts.Relay); err != nil {
		return nil, err
	}
	id := s.parity.First() + 2*(s.nextConn.Add(1)-1)
	parity := s.parity
	if p := wire.Parity(opts.Parity); p.Valid() {
		parity = p
	}
	c := newConn(s, id, parity, opts.Router, opts.limit(s))
	c.relay, c.relayHold = opts.Relay.inner(), opts.Relay
	h := c.ownerHandle() // held from the start, so a channel's end cannot close it first
	c.state.Store(connOpening)
	c.opened = make(chan error, 1)
	s.vconns.Store(id, c)
	err := s.send(ctx, &wire.Message{Kind: wire.KindOpenConn, Conn: id, Parity: c.parity,
		Settings: wire.Settings{MaxConcurrentRequests: uint64(opts.limit(s))}, Metadata: opts.Metadata.toWire()})
	if err != nil {
		s.vconns.Delete(id)
		return nil, &CallError{Kind: ErrSendFailed, Cause: err}
	}
	select {
	case err := <-c.opened:
		if err != nil {
			return nil, err
		}
		return h, nil
	case <-ctx.Done():
	case <-s.errSet:
	}
	// Given up: if the peer accepts later, close it at once.
	if !c.state.CompareAndSwap(connOpening, connClosing) {
		if err := <-c.opened; err == nil { // accepted meanwhile
			c.Close()
		}
	}
	if err := s.Err(); err != nil {
		return nil, &CallError{Kind: ErrConnectionClosed, Cause: err}
	}
	// As a call's: ErrCancelled, and the context's own error beneath.
	return nil, &CallError{Kind: ErrCancelled, Cause: ctx.Err()}
}

// PeerMetadata returns the metadata the peer sent when the connection
// opened (nil for the root; see Session.PeerMetadata).
func (c *conn) PeerMetadata() Metadata { return c.peerMeta }

// Close closes a virtual connection at once (rule 9): calls in flight on
// it fail (pending ones with ErrConnectionClosed, handlers are
// cancelled), its channels end, and the peer is told with CloseConn. The
// root cannot be closed this way: close the Session. Idempotent.
func (c *conn) Close() error {
	if c.id == 0 {
		return errors.New("rove: the root connection closes with its session")
	}
	if !c.state.CompareAndSwap(connOpen, connClosing) {
		return nil
	}
	c.teardown(&CallError{Kind: ErrConnectionClosed, Message: "virtual connection closed"})
	_ = c.s.send(context.Background(), &wire.Message{Kind: wire.KindCloseConn, Conn: c.id})
	if c.relay != nil {
		c.relay.Close() // a relay's two halves close together
	}
	return nil
}

// forget removes a finished virtual connection; the session ends if its
// root's last holder was released and this was the last one (rule 31).
func (s *session) forget(c *conn) {
	c.state.Store(connClosed)
	s.vconns.Delete(c.id)
	if s.root.closed.Load() && s.vconns.Size() == 0 {
		s.fail(ErrSessionClosed)
	}
}

// dispatchConn handles OpenConn, AcceptConn, RejectConn and CloseConn on
// the reading goroutine. False: torn down.
func (s *session) dispatchConn(link *netpoll.Conn, m *wire.Message) bool {
	if m.Conn == 0 {
		s.violation(link, wire.CodeRootClose, m.Kind.String()+" for the root connection")
		return false
	}
	c, _ := s.vconns.Load(m.Conn)
	switch m.Kind {
	case wire.KindOpenConn:
		return s.peerOpens(link, c, m)
	case wire.KindAcceptConn, wire.KindRejectConn:
		if c == nil || !s.parity.Owns(m.Conn) {
			s.violation(link, wire.CodeUnknownConn, fmt.Sprintf("%v for connection %d, which we did not open", m.Kind, m.Conn))
			return false
		}
		state := c.state.Load()
		if state != connOpening && state != connClosing || c.opened == nil {
			s.violation(link, wire.CodeUnexpected, fmt.Sprintf("%v for connection %d, which is already open", m.Kind, m.Conn))
			return false
		}
		if m.Kind == wire.KindRejectConn {
			s.forget(c)
			c.opened <- &ConnRejectedError{Code: ReasonCode(m.Code), Reason: string(m.Payload), Metadata: metadataFromWire(m.Metadata)}
			return true
		}
		if m.Parity != c.parity.Opposite() {
			s.violation(link, wire.CodeParity, fmt.Sprintf("AcceptConn for connection %d took our parity", m.Conn))
			return false
		}
		c.peerMeta = metadataFromWire(m.Metadata)
		c.setPeerLimit(m.Settings.MaxConcurrentRequests)
		if c.state.CompareAndSwap(connOpening, connOpen) {
			c.opened <- nil
			return true
		}
		// OpenConn gave up before the answer came: close the connection
		// now, as its opener would, so that it neither leaks in the closing
		// state nor counts against MaxVirtualConns; the peer's CloseConn
		// acknowledgement then forgets it.
		c.teardown(&CallError{Kind: ErrConnectionClosed, Message: "OpenConn gave up"})
		_ = s.queue(link, &wire.Message{Kind: wire.KindCloseConn, Conn: c.id})
		return true
	case wire.KindCloseConn:
		if c == nil {
			s.violation(link, wire.CodeUnknownConn, fmt.Sprintf("CloseConn for connection %d, which is not open", m.Conn))
			return false
		}
		if c.state.Load() != connClosing { // the peer closes: tear down, acknowledge
			if c.state.Swap(connClosing) == connOpening { // OpenConn still waits for an answer
				select {
				case c.opened <- &CallError{Kind: ErrConnectionClosed, Message: "virtual connection closed by the peer before it was accepted"}:
				default:
				}
			}
			c.teardown(&CallError{Kind: ErrConnectionClosed, Message: "virtual connection closed by the peer"})
			_ = s.queue(link, &wire.Message{Kind: wire.KindCloseConn, Conn: c.id})
			if c.relay != nil {
				go c.relay.Close()
			}
		}
		s.forget(c) // closed both ways: any later message for the id is a violation
		return true
	}
	return true
}

// peerOpens handles the peer's OpenConn.
func (s *session) peerOpens(link *netpoll.Conn, existing *conn, m *wire.Message) bool {
	switch {
	case !s.parity.Opposite().Owns(m.Conn):
		s.violation(link, wire.CodeWrongParity, fmt.Sprintf("virtual connection id %d has our parity", m.Conn))
		return false
	case existing != nil:
		s.violation(link, wire.CodeIDInUse, fmt.Sprintf("virtual connection id %d is already in use", m.Conn))
		return false
	}
	reject := func(reason string) bool {
		_ = s.queue(link, &wire.Message{Kind: wire.KindRejectConn, Conn: m.Conn, Code: wire.CodeRefused, Payload: []byte(reason)})
		return true
	}
	if s.opts.AcceptConn == nil {
		return reject("no acceptor for virtual connections")
	}
	if s.vconns.Size() >= s.opts.MaxVirtualConns {
		return reject(fmt.Sprintf("at the limit of %d virtual connections", s.opts.MaxVirtualConns))
	}
	c := newConn(s, m.Conn, m.Parity.Opposite(), nil, 0)
	c.state.Store(connAccepting)
	s.vconns.Store(m.Conn, c)
	req := ConnRequest{ID: m.Conn, Metadata: metadataFromWire(m.Metadata), Parity: Parity(m.Parity), PeerLimit: m.Settings.MaxConcurrentRequests, Conn: c.pub}
	peerLimit := m.Settings.MaxConcurrentRequests
	s.active.add() // the acceptor is waited for like a handler
	go s.accept(c, req, peerLimit)
	return true
}

// accept runs the acceptor and answers the peer.
func (s *session) accept(c *conn, req ConnRequest, peerLimit uint64) {
	defer s.active.done()
	ctx, cancel := context.WithCancel(s.opts.Context)
	go func() { // the session's end cancels the acceptor
		select {
		case <-s.errSet:
			cancel()
		case <-ctx.Done():
		}
	}()
	opts, err := s.opts.AcceptConn(ctx, req)
	cancel()
	if err == nil {
		err = s.metadataFitsPeer(opts.Metadata) // our AcceptConn must not be a violation
		if err == nil {
			err = s.relayFits(opts.Relay)
		}
		if err != nil && opts.Relay != nil {
			opts.Relay.Close() // a relay's halves close together: the far one goes with the refused one
		}
	}
	if err != nil {
		s.forget(c)
		_ = s.send(context.Background(), &wire.Message{Kind: wire.KindRejectConn, Conn: c.id, Code: wire.CodeRefused, Payload: []byte(err.Error())})
		return
	}
	limit := uint64(opts.limit(s))
	if opts.Relay != nil { // advertise what the far end accepts
		limit = opts.Relay.peerLimit
	}
	c.setupMu.Lock()
	if c.down() != nil { // torn down while the acceptor decided
		c.setupMu.Unlock()
		return
	}
	c.router = opts.Router
	c.localLimit = int64(opts.limit(s))
	c.inflight.init(opts.limit(s))
	c.setPeerLimitLocked(peerLimit)
	c.setupMu.Unlock()
	// Under relayMu: frames relayed to this connection before it was
	// accepted wait, and go out right after AcceptConn.
	c.relayMu.Lock()
	defer c.relayMu.Unlock()
	c.relay, c.relayHold = opts.Relay.inner(), opts.Relay
	if !c.state.CompareAndSwap(connAccepting, connOpen) {
		return // the session ended meanwhile
	}
	_ = s.send(context.Background(), &wire.Message{Kind: wire.KindAcceptConn, Conn: c.id, Parity: c.parity,
		Settings: wire.Settings{MaxConcurrentRequests: limit}, Metadata: opts.Metadata.toWire()})
	for _, b := range c.held {
		_ = s.link.Load().WriteFrame(context.Background(), b)
	}
	c.held = nil
}

// relayFits refuses a relay between s and the session of relay when one
// advertises a channel byte window and the other does not
// (ErrRelayWindows).
func (s *session) relayFits(relay *Conn) error {
	if r := relay.inner(); r != nil && (s.opts.ChannelByteWindow > 0) != (r.s.opts.ChannelByteWindow > 0) {
		return ErrRelayWindows
	}
	return nil
}

// relayFrame forwards one call or channel message that arrived on c to
// c.relay, rewriting only the connection id. It runs on c's reading
// goroutine and owns f.
func (c *conn) relayFrame(f netpoll.Frame, m *wire.Message) {
	t := c.relay
	m.Conn = t.id
	buf := getBuf()
	*buf = wire.AppendMessage(*buf, m)
	f.Release()
	t.relayMu.Lock()
	if t.state.Load() == connAccepting { // not accepted yet: hold it
		t.held = append(t.held, append([]byte(nil), *buf...))
	} else if link := t.s.link.Load(); link != nil {
		_ = link.WriteFrame(context.Background(), *buf)
	}
	t.relayMu.Unlock()
	putBuf(buf)
}
