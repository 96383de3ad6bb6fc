package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// outCall is one outgoing call: pooled, never seen by users. Between
// pendingTable.insert and the claim, state holds the live id; whoever
// claims it (the response, the teardown, or the caller abandoning it) is
// the only one to touch the result fields.
//
// Layout: the caller fills the call in on one core and the claimer (the
// reading goroutine, usually on the other) completes it, so every cache
// line both of them touch crosses twice per call. The fields are grouped
// by who touches them: the first line holds all that the claimer reads
// and all that an early-decoded or failed call writes, the second the
// response's frame and metadata (a raw call's result), the third what the
// caller alone uses. The struct is 192 bytes, a size class whose objects
// start on a line boundary, so each group is exactly one line
// (TestOutCallLayout).
type outCall struct {
	// Line 1: the claim, the wake-up, and the small outcomes.
	state atomic.Uint64 // key while live in the table (see table.go), 0 once claimed
	done  chan struct{} // capacity 1: one token per completion

	// early, if set, is the caller's reply callback, known not to block
	// (a typed call's decode), which the reading goroutine runs itself on
	// a successful response of up to earlyMax bytes while the frame is
	// still in its cache; decoded then says so and earlyErr holds what it
	// returned. Set by the caller before the request goes out.
	early    func(Reply) error
	earlyErr error
	err      *CallError  // the call failed (written by the claimer)
	status   wire.Status // the response's status
	decoded  bool
	id       uint64

	// Line 2: a raw call's result, written by the claimer before it
	// signals done. Only what result reads is kept (the frame with Body
	// narrowed to the payload), not the parsed Message, which made the
	// call 328 bytes, six lines.
	frame netpoll.Frame
	md    wire.Metadata

	// Line 3: the caller's own.
	key uint64 // the key it was inserted with
	buf []byte // request encoding, reused
	// watch, once the request is sent, is the context watch the caller
	// waits under (nil: it selects on its context itself).
	watch atomic.Pointer[ctxWatch]
	_     [outCallPad]byte
}

// outCallPad fills outCall to 192 bytes (see its layout note).
const outCallPad = 24

// earlyMax bounds the payload a reading goroutine decodes for its caller:
// a larger one is decoded on the caller's goroutine, so that one response
// cannot hold up the others behind it for long.
const earlyMax = 1 << 10

var outCallPool = sync.Pool{New: func() any { return &outCall{done: make(chan struct{}, 1)} }}

func (oc *outCall) complete(f netpoll.Frame, m *wire.Message) {
	f.Body = m.Payload
	if oc.early != nil && m.Status == wire.StatusOK && len(f.Body) <= earlyMax {
		oc.earlyErr = runEarly(oc.early, Reply{Payload: f.Body, md: m.Metadata, frame: f})
		f.Release()
		oc.status, oc.decoded = m.Status, true
		oc.done <- struct{}{}
		return
	}
	oc.frame, oc.md, oc.status = f, m.Metadata, m.Status
	oc.done <- struct{}{}
}

// runEarly runs an early callback on the reading goroutine; a panic in
// it (a codec's bug) fails the one call instead of the connection.
func runEarly(fn func(Reply) error, r Reply) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &CallError{Kind: ErrInvalidPayload, Message: fmt.Sprintf("decoding the response panicked: %v", p)}
		}
	}()
	return fn(r)
}

func (oc *outCall) fail(err *CallError) {
	oc.err = err
	oc.done <- struct{}{}
}

// freeCall returns a finished call (and its in-flight slot) to the pools.
func (c *conn) freeCall(oc *outCall) {
	oc.frame, oc.md, oc.status, oc.err = netpoll.Frame{}, wire.Metadata{}, 0, nil
	oc.early, oc.earlyErr, oc.decoded = nil, nil, false
	if oc.watch.Load() != nil { // most calls never had one: skip the store's barrier
		oc.watch.Store(nil)
	}
	if cap(oc.buf) > 64<<10 {
		oc.buf = nil
	}
	c.slots.release()
	outCallPool.Put(oc)
}

// released ends the table's part in a call claimed after its caller gave
// up: an abandoned call is freed; a woken one is left to its caller, who
// frees it as it leaves (leaveWoken).
func (c *conn) released(oc *outCall, k claimKind) {
	if k == claimAbandoned {
		c.freeCall(oc)
	}
}

// Reply is a successful response: a zero-copy view valid during the
// callback it is passed to. Retain keeps it longer; each Retain is owed a
// Release.
type Reply struct {
	// Payload is the handler's result.
	Payload []byte
	md      wire.Metadata
	frame   netpoll.Frame
}

// Metadata copies out the response metadata (it allocates; nil if none).
func (r Reply) Metadata() Metadata { return metadataFromWire(r.md) }

// Retain keeps the Reply's bytes valid after the callback returns.
func (r Reply) Retain() Reply {
	r.frame = r.frame.Retain()
	return r
}

// Release gives back a Reply that was retained.
func (r Reply) Release() { r.frame.Release() }

// CallOptions tune one call. The zero value means the defaults.
type CallOptions struct {
	// Metadata is sent with the request.
	Metadata Metadata
	// FailFast: if the peer's concurrency limit is reached, fail at once
	// with ErrTooManyRequests instead of waiting for a slot (rule 18).
	FailFast bool
	// Channels to bind to the call, made with Conn.NewTx and Conn.NewRx on
	// the caller's connection. They outlive the response until closed,
	// reset or the connection ends, and cancelling the call does not close
	// them (rules 19, 24).
	Channels []Channel
	// While, if set, runs on the caller's goroutine once the request has
	// gone out, before Call waits for the response: the place to send on
	// or receive from the call's channels without a goroutine of their
	// own (a server stream: read its Rx to the end here). If While returns
	// an error, the call is cancelled as if its context had ended (unless
	// its outcome has already arrived) and Call returns that error. While
	// does not run if the request was not sent. The call's context is not
	// watched while While runs: While should wait with it (Recv(ctx, ...))
	// so that a cancel ends it.
	While func() error
}

// Call calls method m with payload req (not retained after Call returns)
// and waits for the one outcome. On success fn, if not nil, gets the
// Reply, valid until fn returns, and Call returns fn's error. On failure
// Call returns a *CallError (errors.Is with the sentinels).
//
// Cancelling ctx sends CancelRequest and returns ErrCancelled at once; a
// deadline on ctx travels with the request, so the handler's context
// carries it too (rules 19, 20). opts may be nil.
func (cl *Caller) Call(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	return cl.c.invoke(ctx, m, req, opts, fn)
}

func (c *conn) call(ctx context.Context, method uint64, req []byte, opts *CallOptions, fn func(Reply) error, early bool) error {
	if opts != nil && len(opts.Channels) > 0 {
		if err := c.claimBindings(opts.Channels); err != nil {
			return err
		}
	}
	var sent bool
	var err error
	if opts != nil && (len(opts.Metadata) > 0 || len(opts.Channels) > 0) {
		// Within what the peer advertised, or it would end the session.
		if err = c.s.metadataFitsPeer(opts.Metadata); err == nil {
			err = c.channelsFitPeer(len(opts.Channels))
		}
		if err != nil {
			err = &CallError{Kind: ErrSendFailed, Cause: err}
		}
	}
	if err == nil {
		sent, err = c.callBound(ctx, method, req, opts, fn, early)
	}
	if !sent && err != nil {
		err = unsent(err)
	}
	if !sent && opts != nil && len(opts.Channels) > 0 {
		// The request never went out: its channels must not wait for ever.
		unbind(opts.Channels, ErrSendFailed)
	}
	return err
}

// callBound sends the request and waits for its outcome; sent reports
// whether the request went out (and its channels were bound).
func (c *conn) callBound(ctx context.Context, method uint64, req []byte, opts *CallOptions, fn func(Reply) error, early bool) (sent bool, err error) {
	if err := c.usable(); err != nil {
		return false, err
	}
	// A slot under the peer's limit.
	if !c.slots.tryAcquire() {
		if opts != nil && opts.FailFast {
			return false, &CallError{Kind: ErrTooManyRequests}
		}
		switch c.slots.acquire(ctx, c.tornDown) {
		case slotCancelled:
			return false, &CallError{Kind: ErrCancelled, Cause: ctx.Err()}
		case slotDown:
			return false, c.down()
		}
	}
	oc := outCallPool.Get().(*outCall)
	if early {
		oc.early = fn
	}
	id := c.pending.insert(oc)
	if id == 0 {
		c.freeCall(oc)
		return false, errIDsExhausted
	}
	if c.down() != nil { // torn down while we inserted: teardown may have missed us
		if got, _ := c.pending.take(id); got != nil {
			c.freeCall(oc)
			return false, c.down()
		}
		return false, c.finish(ctx, oc, fn) // teardown claimed it: its error is on the way
	}

	var timeout uint64
	if d, ok := ctx.Deadline(); ok {
		timeout = uint64(max((time.Until(d)+time.Microsecond-1)/time.Microsecond, 1))
	}
	if opts != nil && (len(opts.Metadata) > 0 || len(opts.Channels) > 0) {
		oc.buf = appendRequestWith(oc.buf[:0], c.id, id, method, timeout, opts, req)
	} else {
		oc.buf = wire.AppendRequest(oc.buf[:0], c.id, id, method, timeout, wire.ChannelList{}, wire.Metadata{}, req)
	}
	if limit := c.s.sendMax(); len(oc.buf) > limit {
		if got, _ := c.pending.take(id); got != nil {
			c.freeCall(oc)
			return false, &CallError{Kind: ErrSendFailed, Cause: tooLarge("request", len(oc.buf), limit)}
		}
		return false, c.finish(ctx, oc, fn)
	}
	link := c.s.link.Load()
	write := link.WriteFrameCommitted
	if c.slots.inUse() == 1 { // the only call in flight: nothing to coalesce with
		write = link.WriteFrameAlone
	}
	if err := write(ctx, oc.buf, c.s.goAwayGate()); err != nil {
		if got, _ := c.pending.take(id); got != nil {
			c.freeCall(oc)
			if ctx.Err() != nil { // gave up waiting for room in the outbound buffer
				return false, &CallError{Kind: ErrCancelled, Cause: ctx.Err()}
			}
			if err == netpoll.ErrNotAdmitted {
				return false, &CallError{Kind: ErrUnavailable, Message: "peer sent GoAway"}
			}
			return false, &CallError{Kind: ErrSendFailed, Cause: err}
		}
		return false, c.finish(ctx, oc, fn)
	}
	if opts != nil {
		for _, ch := range opts.Channels {
			ch.state().markBound() // its items may follow the request now
		}
		if opts.While != nil {
			if err := opts.While(); err != nil {
				c.giveUp(ctx, oc)
				return true, err
			}
		}
	}

	done := ctx.Done()
	if done == nil { // a context that never ends: a plain receive is cheaper
		<-oc.done
		return true, c.result(ctx, oc, fn)
	}
	if w := c.watchFor(ctx, done); w != nil { // a shared context: its watch cancels us
		return true, c.awaitWatched(ctx, oc, w, fn)
	}
	select {
	case <-oc.done:
		return true, c.result(ctx, oc, fn)
	case <-done:
	}
	return true, c.abandonCancelled(ctx, oc, fn)
}

// appendRequestWith appends a request that carries metadata or binds
// channels (encoded into pooled scratch buffers first).
func appendRequestWith(dst []byte, conn, id, method, timeout uint64, opts *CallOptions, req []byte) []byte {
	var md wire.Metadata
	var ch wire.ChannelList
	if len(opts.Metadata) > 0 {
		mdBuf := getBuf()
		defer putBuf(mdBuf)
		*mdBuf = opts.Metadata.appendWire((*mdBuf)[:0])
		md = wire.MakeMetadata(*mdBuf)
	}
	if len(opts.Channels) > 0 {
		chBuf := getBuf()
		defer putBuf(chBuf)
		for _, c := range opts.Channels {
			*chBuf = wire.AppendChannel(*chBuf, c.binding())
		}
		ch = wire.MakeChannelList(*chBuf)
	}
	return wire.AppendRequest(dst, conn, id, method, timeout, ch, md, req)
}

// abandonCancelled gives up a sent call whose context ended.
func (c *conn) abandonCancelled(ctx context.Context, oc *outCall, fn func(Reply) error) error {
	if !c.abandon(oc) {
		// The response, teardown or the watch claimed it first: that
		// outcome stands.
		return c.finish(ctx, oc, fn)
	}
	return &CallError{Kind: ErrCancelled, Cause: ctx.Err()}
}

// abandon cancels a sent call if its outcome has not been claimed yet
// (rule 19): Cancel goes to the peer without waiting for room in the
// outbound buffer (the caller learns at once). The table keeps oc until
// the late response, so our slot stays taken while the peer still counts
// the request as in flight. False: the outcome is on its way to oc.done.
func (c *conn) abandon(oc *outCall) bool {
	id := oc.id
	if !c.pending.abandon(oc) {
		return false
	}
	c.sendSoon(&wire.Message{Kind: wire.KindCancel, Conn: c.id, ID: id})
	return true
}

// giveUp cancels a sent call whose caller will not take its outcome
// (While failed), or frees it once that outcome has come.
func (c *conn) giveUp(ctx context.Context, oc *outCall) {
	if !c.abandon(oc) {
		_ = c.finish(ctx, oc, nil) // the outcome is dropped; finish frees the call
	}
}

// finish waits for the outcome already on its way and returns it.
func (c *conn) finish(ctx context.Context, oc *outCall, fn func(Reply) error) error {
	<-oc.done
	return c.result(ctx, oc, fn)
}

// result turns a completed call into its outcome and frees it.
func (c *conn) result(ctx context.Context, oc *outCall, fn func(Reply) error) error {
	if oc.err == errWoken {
		return c.leaveWoken(ctx, oc)
	}
	defer c.freeCall(oc)
	if oc.err != nil {
		return oc.err
	}
	if oc.decoded {
		return oc.earlyErr
	}
	defer oc.frame.Release()
	payload := oc.frame.Body
	if oc.status != wire.StatusOK {
		ce := &CallError{Kind: statusError(oc.status), Metadata: metadataFromWire(oc.md)}
		switch oc.status {
		case wire.StatusUserError:
			ce.Payload = append([]byte(nil), payload...)
		case wire.StatusError:
			ce.Cause = errorFromPayload(payload) // its text is the error's
		default:
			ce.Message = string(payload)
		}
		if oc.status == wire.StatusCancelled {
			// The peer's copy of our deadline can fire a moment before our
			// own timer: report the same cause either way.
			ce.Cause = ctx.Err()
			if d, ok := ctx.Deadline(); ok && ce.Cause == nil && !time.Now().Before(d) {
				ce.Cause = context.DeadlineExceeded
			}
		}
		return ce
	}
	if fn == nil {
		return nil
	}
	return fn(Reply{Payload: payload, md: oc.md, frame: oc.frame})
}

// goAwayGate admits a request frame only while the peer has sent no
// GoAway, checked under the outbound buffer's lock. The reading goroutine
// records a GoAway before it queues the Pong for the Ping that follows
// it (Drain's barrier), so a request either leaves before that Pong (and
// the draining peer answers it) or is refused here, provably unsent: no
// request can slip in behind the Pong while the peer closes.
type goAwayGate session

func (s *session) goAwayGate() *goAwayGate { return (*goAwayGate)(s) }

// Admit implements netpoll.Admitter.
func (g *goAwayGate) Admit() bool { return !g.peerGoAway.Load() }

// Committed implements netpoll.Committer.
func (g *goAwayGate) Committed() {}

// usable says why no new call may start, or nil.
func (c *conn) usable() error {
	if ce := c.down(); ce != nil {
		return ce
	}
	switch {
	case c.s.state.Load() == stateHandshake:
		return &CallError{Kind: ErrConnectionClosed, Message: "session not established"}
	case c.s.peerGoAway.Load():
		return &CallError{Kind: ErrUnavailable, Message: "peer sent GoAway"}
	case c.closed.Load():
		return &CallError{Kind: ErrConnectionClosed, Message: "every handle on the connection was released"}
	case c.state.Load() != connOpen:
		return &CallError{Kind: ErrConnectionClosed, Message: "virtual connection not open"}
	}
	return nil
}
