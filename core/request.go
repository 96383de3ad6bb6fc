package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Request is one incoming call, as its handler sees it. It is also the
// handler's context.Context: cancelled when the caller cancels, when the
// deadline the caller sent passes, or when the connection ends; its values
// are those of Options.Context.
//
// The Request is valid until the handler returns: then what it holds of
// the call (payload, metadata, channels) is reused for a later request of
// the connection. As a context it stays valid (ended) for goroutines the
// handler started, and a late Reply is refused. The payload is a view
// valid as long; Retain keeps it longer. Methods are safe from any
// goroutine while the handler runs.
type Request struct {
	state atomic.Uint64 // live id while in the inbound table, 0 after
	id    uint64
	conn  *conn
	route *route // here, not in served: Method and String stay right after the handler returns
	// served: the call's state, reused once the handler returns (see
	// served); the fields below it are the context's, which goroutines
	// the handler started may keep. So a pool handler's call allocates
	// 128 bytes, not 256: the garbage collector's cycles, and the
	// spans they free and take back, were a fifth of a pool-handler
	// server's CPU.
	*served

	// context
	mu       sync.Mutex    // the context's fields; replyMD, the response's stats, which channels were taken
	doneCh   chan struct{} // made on first Done, closed on cancel
	err      error
	deadline time.Time
	more     *ctxMore // the deadline timer and AfterFunc's callbacks: made on first need

	wprev, wnext *Request // the list of watched Requests (conn.watchMu)
	replied      atomic.Bool
	// watched: on the connection's list of Done channels to close at
	// teardown (conn.watchMu): a handler that already replied has left the
	// inbound table but must still see its context end (rule 33). It is
	// set under watchMu and r.mu, so finish can skip the list's lock for a
	// Request that was never on it.
	watched atomic.Bool
}

// served is what a Request holds of its call while the handler runs. The
// connection reuses it for a later request once the handler has returned
// (Request.recycle), unless Retain, channel handles or a Reply still
// under way still reach it.
type served struct {
	frame    netpoll.Frame // Body narrowed to the payload
	md       wire.Metadata
	retains  atomic.Int32   // extra frame references taken by Retain
	respLen  int32          // the response payload's size, for Options.Stats (set by respond)
	channels []boundChannel // bound by the request, in order
	replyMD  Metadata       // set by SetReplyMetadata: sent with the response of a typed handler
	task     task           // its entry in the workers' queue

	left atomic.Bool // out of the inbound table
	// respDone: the Reply or finish that sent the response has returned.
	// A handler may return while a goroutine it started is still inside
	// Reply; recycle reuses nothing until that Reply is done with it.
	respDone atomic.Bool
	onLoop   bool // answered from the reading goroutine: responses must never block
	reusable bool // recycle may reuse it (and, for an inline handler's, the Request)
	// tabled: in the inbound table, where the peer's Cancel and teardown
	// find it; counted: in the session's handler count. Both hold for
	// every request but a solo one (serveSolo), which respond tables
	// only if its response must wait for room, and which is never
	// counted.
	tabled, counted bool
	respSent        bool        // respond queued a response (for Options.Stats)
	respStatus      wire.Status // its status
}

// SetReplyMetadata sets the metadata a typed handler's response carries
// (TypedMethod.Handle replies for it); a raw handler passes metadata to
// Reply instead. Call it from the handler, before it returns.
func (r *Request) SetReplyMetadata(md Metadata) {
	r.mu.Lock()
	if !r.replied.Load() { // else its served may be another call's by now
		r.replyMD = md
	}
	r.mu.Unlock()
}

// boundChannel is one channel a request binds, and whether the handler
// took a handle for it (under Request.mu).
type boundChannel struct {
	st    *chanState
	taken bool
}

// Method returns the called method's id.
func (r *Request) Method() Method {
	if r.route != nil {
		return r.route.method
	}
	return Method{}
}

// ID returns the request id.
func (r *Request) ID() uint64 { return r.id }

// Conn returns the connection the request came on.
func (r *Request) Conn() *Conn { return r.conn.pub }

// Payload returns the request payload, a view valid until the handler
// returns (or until Release, after Retain).
func (r *Request) Payload() []byte { return r.frame.Body }

// Metadata copies out the request metadata (it allocates; nil if none).
func (r *Request) Metadata() Metadata { return metadataFromWire(r.md) }

// Retain keeps the payload valid after the handler returns, until a
// matching Release.
func (r *Request) Retain() {
	r.retains.Add(1)
	r.frame.Retain()
}

// Release gives back what one Retain kept.
func (r *Request) Release() {
	if r.retains.Load() <= 0 {
		panic("rove: Request.Release without Retain")
	}
	// The frame first, the count after: once the count is back to zero
	// the handler's call state may be reused (recycle), frame and all.
	r.frame.Release()
	r.retains.Add(-1)
}

// Reply sends the successful response now (exactly once: a second Reply,
// or the handler's return value after a Reply, is ignored and Reply
// returns ErrReplied). payload is not retained. md may be nil.
func (r *Request) Reply(payload []byte, md Metadata) error {
	if !r.replied.CompareAndSwap(false, true) {
		return ErrReplied
	}
	err := r.respond(wire.StatusOK, payload, md)
	r.respDone.Store(true) // the last touch of the call state: recycle may reuse it now
	return err
}

// leave takes the request out of the inbound table, once. It happens when
// the response is queued, under the link's outbound lock (leaveOnCommit):
// not later, since from the moment the peer can read the response it may
// reuse the request's slot under our limit (rule 18) and its id; and not
// earlier, so that responses waiting for room in the outbound buffer still
// count against the limit, which bounds what a peer that stops reading can
// make us hold.
func (r *Request) leave() {
	if r.tabled && r.left.CompareAndSwap(false, true) {
		r.conn.inflight.remove(r)
	}
}

// leaveOnCommit is a Request seen as the netpoll.Committer of its response.
type leaveOnCommit Request

func (l *leaveOnCommit) Committed() { (*Request)(l).leave() }

// Admit refuses the response of a virtual connection already torn down
// (rule 9): its CloseConn (ours, or our acknowledgement of the peer's) is
// queued after the teardown, under the same outbound lock, so a response
// admitted here goes out before it, and none can follow it.
func (l *leaveOnCommit) Admit() bool {
	c := (*Request)(l).conn
	return c.id == 0 || c.down() == nil
}

// ErrReplied is returned by a second Request.Reply.
var ErrReplied = errors.New("rove: request already answered")

// respond writes the response.
func (r *Request) respond(status wire.Status, payload []byte, md Metadata) error {
	if len(md) > 0 {
		if err := r.conn.s.metadataFitsPeer(md); err != nil {
			// The caller would take it as a violation: it gets why instead.
			status, payload, md = wire.StatusInternal, []byte("response "+err.Error()), nil
		}
	}
	buf := getBuf()
	defer putBuf(buf)
	var mdW wire.Metadata
	if len(md) > 0 {
		mdBuf := getBuf()
		defer putBuf(mdBuf)
		*mdBuf = md.appendWire((*mdBuf)[:0])
		mdW = wire.MakeMetadata(*mdBuf)
	}
	*buf = wire.AppendResponse((*buf)[:0], r.conn.id, r.id, status, wire.ChannelList{}, mdW, payload)
	if limit := r.conn.s.sendMax(); len(*buf) > limit {
		*buf = appendFittingResponse((*buf)[:0], &wire.Message{Kind: wire.KindResponse, Conn: r.conn.id, ID: r.id, Status: status, Metadata: mdW, Payload: payload}, limit)
	}
	if r.conn.s.opts.Stats != nil {
		r.mu.Lock() // a handler's goroutine may reply while run reports
		r.respLen, r.respStatus, r.respSent = int32(len(payload)), status, true
		r.mu.Unlock()
	}
	link := r.conn.s.link.Load()
	commit := (*leaveOnCommit)(r)
	var err error
	if r.onLoop {
		err = link.QueueFrameCommitted(*buf, commit)
		if err == netpoll.ErrWouldBlock {
			// Full outbound buffer on the event loop: a goroutine waits for
			// room. The request still counts against our limit until its
			// response is queued, so a peer that stops reading cannot make
			// us start more of these than it may have requests in flight;
			// and the copy counts against the byte budget (rule 34), so
			// reading pauses before such copies pile up.
			if !r.tabled {
				// A solo request joins the table now, on the reading
				// goroutine, before the peer can read its response:
				// it counts against the limit while it waits, the
				// peer's duplicate of its id is caught, and teardown
				// can cancel it. It cannot be a duplicate itself: no
				// frame was read since serve looked its id up.
				r.tabled = r.conn.inflight.insert(r)
			}
			b := append([]byte(nil), *buf...)
			link.HoldBytes(len(b))
			r.reusable = false // the goroutine holds r until the commit
			write := func() {
				if link.WriteFrameCommitted(context.Background(), b, commit) != nil {
					r.leave()
				}
				link.ReleaseBytes(len(b))
			}
			if !r.conn.s.goTracked(write) { // the session is over: nothing to send
				r.leave()
				link.ReleaseBytes(len(b))
			}
			return nil
		}
	} else {
		// The response counts against the byte budget while it waits for
		// room: many handlers answering a peer that does not read must
		// not pile up their responses (rule 34).
		link.HoldBytes(len(*buf))
		if r.conn.inflight.live.Load() == 1 { // the only request in flight: no company to wait for
			err = link.WriteFrameAlone(context.Background(), *buf, commit)
		} else {
			var owed bool
			owed, err = link.WriteFrameOwed(context.Background(), *buf, commit)
			if owed {
				r.conn.s.oweFlush()
			}
		}
		link.ReleaseBytes(len(*buf))
	}
	if err != nil { // never queued: nothing will leave the table for it
		r.leave()
		if err == netpoll.ErrNotAdmitted {
			return r.conn.down()
		}
	}
	return err
}

// serve admits one incoming request on the reading goroutine (rules 13,
// 14, 17, 18). It owns f.
func (c *conn) serve(link *netpoll.Conn, f netpoll.Frame, m *wire.Message) bool {
	s := c.s
	if !c.parity.Opposite().Owns(m.ID) {
		f.Release()
		s.violation(link, wire.CodeWrongParity, fmt.Sprintf("request id %d has our parity", m.ID))
		return false
	}
	if c.inflight.live.Load() >= c.localLimit {
		f.Release()
		s.violation(link, wire.CodeTooManyRequests, fmt.Sprintf("more than the %d requests in flight we advertised", c.localLimit))
		return false
	}
	rt := c.router.lookup(m.Method)
	// What a Request holds of its call (served) is reused once the
	// handler returns. An inline handler may not block, so it cannot
	// hand its context on: its whole Request is reused, and the call
	// allocates nothing. Any other handler's Request is its context,
	// which goroutines it starts may keep: that part is allocated (128
	// B), the one allocation of such a call.
	var r *Request
	if rt != nil && rt.inline && c.spare != nil {
		r, c.spare = c.spare, nil
	} else {
		r = new(Request)
		if v := c.reqs.Get(); v != nil {
			r.served = v.(*served)
		} else {
			r.served = new(served)
		}
	}
	f.Body = m.Payload
	r.id, r.conn, r.route, r.frame, r.md, r.onLoop, r.reusable = m.ID, c, rt, f, m.Metadata, true, true
	if rt != nil && rt.inline && m.Channels.Empty() && s.state.Load() != stateDraining {
		return c.serveSolo(link, r, m)
	}
	if !c.inflight.insert(r) {
		return c.refuseDuplicate(link, f, m.ID)
	}
	r.tabled = true
	if !m.Channels.Empty() {
		bound, ok := c.bindRequest(link, m.Channels)
		if !ok {
			return false
		}
		r.channels, r.reusable = bound, false // channel handles reach r
	}
	if s.state.Load() == stateDraining {
		r.refuse(wire.StatusUnavailable, []byte("draining: the call was not run"))
		return true
	}
	if r.route == nil {
		r.refuse(wire.StatusUnknownMethod, fmt.Appendf(nil, "no method with id %#x", m.Method))
		return true
	}
	r.setDeadline(m.TimeoutMicros)
	s.active.add() // never refuses: active is not closed
	r.counted = true
	if s.Err() != nil { // torn down meanwhile: teardown may have missed r
		r.cancel(ErrConnectionClosed)
	}
	if r.route.inline {
		r.run()
	} else {
		r.onLoop = false
		s.hold(r)
	}
	return true
}

// serveSolo runs a request for an inline handler that binds no channels
// to its end, here on the reading goroutine: the common inline call. Nothing
// else can reach it while it runs. Its handler may not hand it on; the
// peer's next frame (a Cancel, a reuse of its id) is read only after it
// returns; and teardown, on another goroutine, ends its context lazily
// (Err, Cause and Done ask conn.down) and closes the link, which waits for
// this goroutine, before it waits for the handler count (Drain waits for
// the Pong that follows this request on the wire). So it stays out of the
// inbound table and the handler count, and finish ends its context
// without its lock, about a dozen locked instructions a call fewer. If its
// response must wait for room, respond tables it (rule 18 counts it until
// the response is queued, as any request).
func (c *conn) serveSolo(link *netpoll.Conn, r *Request, m *wire.Message) bool {
	if c.inflight.lookup(m.ID) != nil {
		return c.refuseDuplicate(link, r.frame, m.ID)
	}
	r.setDeadline(m.TimeoutMicros)
	r.run()
	return true
}

// refuseDuplicate ends the session for a request whose id is already in
// flight (a violation), releasing its frame f; it returns false for serve.
func (c *conn) refuseDuplicate(link *netpoll.Conn, f netpoll.Frame, id uint64) bool {
	f.Release()
	c.s.violation(link, wire.CodeIDInUse, fmt.Sprintf("request id %d is already in flight", id))
	return false
}

// refuse answers a request that no handler will run. Its channels end as
// for a handler that never took them (the caller's Rx sees the end, its
// Tx is reset), so they neither wait for ever nor count against
// MaxChannels.
func (r *Request) refuse(status wire.Status, reason []byte) {
	r.releaseUntakenChannels()
	r.finish(status, reason, true)
	if st := r.conn.s.opts.Stats; st != nil {
		r.reportServed(st, time.Now(), nil)
	}
}

// recycle reuses what it can of r once its handler has returned: nothing
// if the handler retained its payload (Release will still touch it) or
// bound channels (set reusable false), if no response was sent, or if
// the Reply that sent it, on a goroutine the handler started, is still
// under way.
//
// An inline handler's Request (onLoop) becomes the connection's spare,
// whole, unless it armed its deadline timer, which may still fire on it,
// or registered AfterFunc callbacks, which may still run (and read its
// Err) or be stopped:
// inline handlers run one at a time on the reading goroutine, which owns
// Conn.spare, so one spare per connection makes an inline call allocate
// nothing. Another handler's context stays with the goroutines it may
// have started; its served goes to the connection's pool, which the
// garbage collector empties when the connection idles. Neither moves to
// another connection, whose teardown could then claim it.
func (r *Request) recycle() {
	c, in := r.conn, r.served
	if in.counted || r.more != nil { // a solo request has nobody else by now (finish)
		r.mu.Lock()
		defer r.mu.Unlock()
	}
	if in.retains.Load() != 0 || !in.respDone.Load() {
		return
	}
	inline := in.onLoop
	*in = served{}
	if !inline || r.more != nil {
		c.reqs.Put(in)
		return
	}
	r.doneCh, r.err, r.deadline = nil, nil, time.Time{}
	r.conn, r.route = nil, nil
	r.replied.Store(false)
	c.spare = r
}

// run executes the handler and guarantees exactly one response (rule 13).
func (r *Request) run() {
	if r.counted {
		defer r.conn.s.active.done()
	}
	var err error
	var start time.Time
	stats := r.conn.s.opts.Stats
	if stats != nil {
		start = time.Now()
	}
	panicked := true
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panicked: %v", p)
			}
		}()
		ics := r.conn.s.opts.ServerInterceptors
		switch {
		case r.conn.s.opts.ProfileLabels:
			// Label the handler's samples in CPU profiles (it allocates:
			// only when asked for).
			pprof.Do(r, r.route.labels, func(ctx context.Context) { err = r.serveIntercepted(ctx, ics, r.route.h) })
		case len(ics) > 0:
			err = r.serveIntercepted(r, ics, r.route.h)
		default:
			err = r.route.h(r, r)
		}
		panicked = false
	}()
	if panicked {
		if lg := r.conn.s.opts.Logger; lg != nil {
			lg.Error("rove: handler panicked", "method", r.Method(), "error", err)
		}
	}
	r.releaseUntakenChannels()
	if r.replied.Load() || r.Cause() == ErrConnectionClosed {
		// Answered already, or torn down: the caller learns from the link
		// ending (ConnectionClosed, retryable), not from a Cancelled that
		// would say the call was given up.
		r.finish(0, nil, false)
	} else {
		status, payload := r.outcome(err, panicked)
		r.finish(status, payload, true)
	}
	if stats != nil {
		r.reportServed(stats, start, err)
	}
	if r.reusable {
		r.recycle()
	}
}

// outcome maps how the handler ended to a response.
func (r *Request) outcome(err error, panicked bool) (wire.Status, []byte) {
	var ue *UserError
	var ipe *InvalidPayloadError
	var ae *Error
	switch {
	case r.Err() != nil && !panicked:
		return wire.StatusCancelled, nil
	case panicked:
		return wire.StatusInternal, []byte(err.Error())
	case err == nil:
		return wire.StatusInternal, []byte("handler returned without replying")
	case errors.As(err, &ae):
		return wire.StatusError, appendErrorPayload(nil, ae)
	case errors.As(err, &ue):
		return wire.StatusUserError, ue.Payload
	case errors.As(err, &ipe):
		// The status names the kind: the text is the cause alone, or the
		// caller's error would say "invalid payload" twice.
		if ipe.Err == nil {
			return wire.StatusInvalidPayload, nil
		}
		return wire.StatusInvalidPayload, []byte(ipe.Err.Error())
	}
	return wire.StatusInternal, []byte(err.Error())
}

// finish sends the response if one is still owed, then frees the request.
func (r *Request) finish(status wire.Status, payload []byte, send bool) {
	if send && r.replied.CompareAndSwap(false, true) {
		_ = r.respond(status, payload, nil) // leaves the table as it is queued
		r.respDone.Store(true)
	} else if !r.replied.Load() {
		r.leave() // torn down, no response: nothing to wait for
	}
	// The handler is over: its context ends. A solo request that nothing
	// else can reach (not tabled, no Done list, no timer or callbacks)
	// needs no lock. (Every other request is tabled from serve on, so
	// r.more, which a goroutine a pool handler started may set, is read
	// only for solo ones.)
	if !r.tabled && !r.watched.Load() && r.more == nil {
		r.endLocked(context.Canceled) // no lock: nothing else holds r
	} else {
		r.cancel(context.Canceled)
	}
	r.conn.unwatch(r)
	r.frame.Release()
}

// String describes the request for logs (never its metadata values).
func (r *Request) String() string {
	return fmt.Sprintf("rove.Request{conn %d, id %d, %s}", r.conn.id, r.id, r.Method())
}
