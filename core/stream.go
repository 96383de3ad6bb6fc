package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Channel is a channel end a call can bind: a *RawTx or *RawRx made with
// Conn.NewTx or Conn.NewRx, listed in CallOptions.Channels.
type Channel interface {
	binding() wire.ChannelBinding
	state() *chanState
}

// RawTx sends items on one channel (rule 24): each costs one credit;
// with none left Send waits for the receiver's grant (rule 26). Send and
// Close are safe from any goroutine; items from concurrent Sends are
// ordered as the sends happen to commit.
type RawTx struct {
	st      *chanState
	once    sync.Once
	cleanup runtime.Cleanup
}

// RawRx receives one channel's items in order. Recv is meant for one
// consumer goroutine at a time.
type RawRx struct {
	st      *chanState
	once    sync.Once
	cleanup runtime.Cleanup
}

// Item is one received item: a zero-copy view valid until Release.
type Item struct {
	Payload []byte
	frame   netpoll.Frame
}

// Release gives the item's bytes back. Call it exactly once.
func (it Item) Release() { it.frame.Release() }

// NewTx makes a channel this peer will send on, to bind to a call
// (CallOptions.Channels): the callee receives. window is the receiver's
// initial credit (0 to 65536, more is clamped; DefaultWindow is a good start),
// which a Rove receiver grows while it is the limit (see NewRx).
// Sends wait until the call's request has gone out.
func (c *conn) NewTx(window int) *RawTx {
	st := newChanState(c, 0, true, clampWindow(window))
	st.boundCh = make(chan struct{})
	c.chans.insertOwn(st, c.parity)
	c.missedByTeardown(st)
	return newRawTx(st)
}

// NewRx makes a channel this peer will receive on, to bind to a call: the
// callee sends. window is the credit granted up front; it grows, up to 16
// times, while the consumer takes items faster than one window per two
// round trips (RawRx.Window).
func (c *conn) NewRx(window int) *RawRx {
	st := newChanState(c, 0, false, clampWindow(window))
	c.chans.insertOwn(st, c.parity)
	c.missedByTeardown(st)
	return newRawRx(st)
}

func clampWindow(w int) uint64 { return uint64(min(max(w, 0), wire.MaxWindow)) }

func newRawTx(st *chanState) *RawTx {
	tx := &RawTx{st: st}
	// A Tx dropped without Close still closes, so the receiver is not left
	// waiting for ever (rule 32).
	tx.cleanup = runtime.AddCleanup(tx, func(st *chanState) { st.c.s.goTracked(st.closeTx) }, st)
	return tx
}

func newRawRx(st *chanState) *RawRx {
	rx := &RawRx{st: st}
	rx.cleanup = runtime.AddCleanup(rx, func(st *chanState) { st.c.s.goTracked(st.resetRx) }, st)
	return rx
}

func (tx *RawTx) binding() wire.ChannelBinding {
	return wire.ChannelBinding{ID: tx.st.id, Dir: wire.CallerSends, Window: tx.st.window}
}

func (rx *RawRx) binding() wire.ChannelBinding {
	return wire.ChannelBinding{ID: rx.st.id, Dir: wire.CalleeSends, Window: rx.st.window}
}

func (tx *RawTx) state() *chanState { return tx.st }
func (rx *RawRx) state() *chanState { return rx.st }

// ID returns the channel id.
func (tx *RawTx) ID() uint64 { return tx.st.id }

// ID returns the channel id.
func (rx *RawRx) ID() uint64 { return rx.st.id }

// Window returns the channel's window now: its initial credit, doubled
// each time its consumer took a window's worth of items in less than two
// round trips, up to 16 times the initial one (window.go explains). Safe
// from any goroutine.
func (rx *RawRx) Window() int {
	rx.st.mu.Lock()
	defer rx.st.mu.Unlock()
	return int(rx.st.windowNow)
}

// Send sends one item (payload is not retained). It waits while the
// channel has no credit, and while the connection's outbound buffer is
// full, honouring ctx. It fails with ErrChannelClosed after Close,
// ErrChannelReset once the receiver reset the channel (which also ends
// either wait at once), and ErrConnectionClosed when the connection ends.
// An item over the peer's maximum frame size fails with ErrSendFailed
// wrapping netpoll.ErrFrameTooLarge (not retryable); it costs no credit
// and the channel stays usable.
func (tx *RawTx) Send(ctx context.Context, payload []byte) error {
	st := tx.st
	if st.boundCh != nil {
		select {
		case <-st.boundCh:
		case <-ctx.Done():
			return ctx.Err()
		case <-st.c.tornDown:
			return st.c.down()
		}
	}
	if len(payload) <= smallItem {
		// Encoded on the stack: WriteFrame copies it into the outbound
		// buffer, so nothing keeps it (cheaper than a pooled buffer).
		var arr [smallItem + maxItemHeader]byte
		return st.sendItem(ctx, st.appendItem(arr[:0], payload), len(payload))
	}
	buf := getBuf()
	*buf = st.appendItem((*buf)[:0], payload)
	err := st.sendItem(ctx, *buf, len(payload))
	putBuf(buf)
	return err
}

// smallItem is the largest payload Send encodes on its stack; an item's
// header (kind, connection id, channel id) is at most maxItemHeader bytes.
const (
	smallItem     = 224
	maxItemHeader = 1 + 2*binary.MaxVarintLen64
)

func (st *chanState) appendItem(dst, payload []byte) []byte {
	return wire.AppendChannelItem(dst, st.c.id, st.id, payload)
}

// sendItem is Send's body after the binding: frame is the encoded item,
// of size payload bytes. Without defers (two deferred calls in a function
// with as many returns are not open-coded, and cost more than the rest of
// a small item's send).
func (st *chanState) sendItem(ctx context.Context, frame []byte, size int) error {
	if limit := st.c.s.sendMax(); len(frame) > limit {
		return &CallError{Kind: ErrSendFailed, Cause: tooLarge("channel item", len(frame), limit)}
	}
	if err := st.takeCredit(ctx); err != nil {
		return err
	}
	if err := st.takeBytes(ctx, size); err != nil {
		st.addCredit(1) // never sent: the credit is still ours
		return err
	}
	// Check again under sendMu: no item may follow our Close or the
	// acknowledgement of a reset.
	st.sendMu.Lock()
	if err := st.txErr(); err != nil {
		st.sendMu.Unlock()
		st.ackBytes(uint64(size))
		return err
	}
	err := st.c.s.link.Load().WriteFrameCommitted(ctx, frame, (*txItemGate)(st))
	if err != nil {
		st.addCredit(1) // the item never left: its credit and bytes are still ours
		st.ackBytes(uint64(size))
	}
	st.sendMu.Unlock()
	switch {
	case err == nil:
		return nil
	case err == netpoll.ErrNotAdmitted: // the channel or its connection ended first
		return st.refusedErr()
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &CallError{Kind: ErrSendFailed, Cause: err}
}

// takeCredit takes one credit, waiting for a grant while there is none.
// A sender that was woken passes the wake-up on (see creditWake).
func (st *chanState) takeCredit(ctx context.Context) error {
	woken := false
	for {
		if err := st.txErr(); err != nil {
			if woken {
				signal(st.creditWake) // the next waiter must see the end too
			}
			return err
		}
		if n := st.credit.Load(); n > 0 {
			if !st.credit.CompareAndSwap(n, n-1) {
				continue
			}
			if woken && n > 1 {
				signal(st.creditWake) // credit left for the next waiter
			}
			return nil
		}
		select {
		case <-st.creditWake:
			woken = true
		case <-ctx.Done():
			return ctx.Err()
		case <-st.c.tornDown:
		}
	}
}

func (st *chanState) txErr() error {
	if ce := st.c.down(); ce != nil { // set before the channels are ended one by one
		return &CallError{Kind: ErrConnectionClosed, Cause: ce}
	}
	if !st.ended.Load() { // the common case: no lock
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.err != nil:
		return &CallError{Kind: ErrConnectionClosed, Cause: st.err}
	case st.peerDone:
		return ErrChannelReset
	case st.ourDone:
		return ErrChannelClosed
	}
	return nil
}

// Credit returns the items the channel may send now without waiting.
func (tx *RawTx) Credit() int64 { return tx.st.credit.Load() }

// Done is closed once the receiver has reset the channel (it wants no
// more items) or the connection has ended: a sender that waits for
// something else to send can wait on it too, and stop.
func (tx *RawTx) Done() <-chan struct{} { return tx.st.done() }

// Close ends the channel: the receiver gets every item sent before, then
// the end (rule 25). Idempotent.
func (tx *RawTx) Close() error {
	tx.once.Do(func() {
		tx.cleanup.Stop()
		tx.st.closeTx()
	})
	return nil
}

func (st *chanState) closeTx() {
	if st.boundCh != nil { // our Tx
		if st.dropUnbound() {
			return // never bound: the peer never heard of it
		}
		select { // a call may be sending its binding right now
		case <-st.boundCh:
		case <-st.c.tornDown:
			return
		}
	}
	st.sendMu.Lock() // after any item being committed
	defer st.sendMu.Unlock()
	st.mu.Lock()
	done := st.ourDone || st.err != nil
	st.ourDone = true
	st.ended.Store(true)
	st.freeBytesLocked()
	st.mu.Unlock()
	if done {
		return
	}
	st.forget()
	st.c.sendSoonGated(&wire.Message{Kind: wire.KindChannelClose, Conn: st.c.id, ID: st.id}, (*txCloseGate)(st))
	signal(st.creditWake)
}

// Recv returns the next item, waiting for one. At the end of the channel
// it returns io.EOF; after Reset, ErrChannelReset; when the connection
// ends, ErrConnectionClosed. Taking items grants credit back to the
// sender, one GrantCredit per half window (rule 27).
func (rx *RawRx) Recv(ctx context.Context) (Item, error) {
	st := rx.st
	woken := false
	for {
		st.mu.Lock()
		if st.head < len(st.queue) {
			it := st.queue[st.head]
			st.queue[st.head] = rxItem{}
			st.head++
			more := st.head < len(st.queue)
			g := st.takenLocked(len(it.frame.Body))
			st.mu.Unlock()
			if woken && more {
				signal(st.notify) // another Recv may be waiting
			}
			if g.items > 0 {
				st.sendGrant(ctx, g)
			}
			return Item{Payload: it.frame.Body, frame: it.frame}, nil
		}
		var err error
		switch {
		case st.ourDone:
			err = ErrChannelReset
		case st.peerDone:
			err = io.EOF
		case st.err != nil:
			err = &CallError{Kind: ErrConnectionClosed, Cause: st.err}
		}
		// A grant that could not be sent earlier is owed before we wait:
		// the sender may be waiting for exactly that credit.
		var owed grant
		if err == nil && st.grantDueLocked() {
			owed = st.grantLocked()
		}
		st.mu.Unlock()
		if err != nil {
			if woken {
				signal(st.notify) // another Recv must see the end too
			}
			return Item{}, err
		}
		if owed.items > 0 {
			st.sendGrant(ctx, owed)
		}
		if done := ctx.Done(); done == nil {
			<-st.notify // a plain receive: cheaper than a select
		} else {
			select {
			case <-st.notify:
			case <-done:
				return Item{}, ctx.Err()
			}
		}
		woken = true
	}
}

// grant is credit given back: items, and the payload bytes they carried.
type grant struct{ items, bytes uint64 }

// takenLocked counts one item of size payload bytes taken and returns the
// grant due now, if any (see grantDueLocked).
func (st *chanState) takenLocked(size int) grant {
	st.taken++
	st.takenBytes += uint64(size)
	if !st.grantDueLocked() {
		return grant{}
	}
	return st.grantLocked()
}

// grantDueLocked reports whether the items taken since the last grant make
// a grant, while the sender may still send: half the window (at least 1),
// or, if we advertised a byte window, byteGrantStep payload bytes: a
// sender that waits for the byte window has at least that much
// unacknowledged, so granting then keeps it from waiting for ever on a
// window of large items (bytewindow.go).
func (st *chanState) grantDueLocked() bool {
	if st.peerDone || st.taken == 0 {
		return false
	}
	if st.c.s.opts.ChannelByteWindow > 0 && st.takenBytes >= byteGrantStep {
		return true
	}
	return st.taken >= max(uint64(st.windowNow)/2, 1)
}

// grantLocked turns the items taken since the last grant into a grant. It
// is counted in allowed before it is sent, since the sender may use it as
// soon as it arrives.
func (st *chanState) grantLocked() grant {
	g := grant{st.taken, st.takenBytes}
	st.taken, st.takenBytes = 0, 0
	st.grantTunedLocked(&g)
	st.allowed += g.items
	return g
}

// sendGrant sends a grant that grantLocked counted. If it cannot be sent
// (ctx ended while the outbound buffer was full), the credit goes back to
// taken and the next Recv grants it again: a grant is never lost, so the
// sender never waits for credit we think we gave. Its bytes go only to a
// peer that advertised ChannelByteWindow: only such a peer parses them.
func (st *chanState) sendGrant(ctx context.Context, g grant) {
	m := wire.Message{Kind: wire.KindGrantCredit, Conn: st.c.id, ID: st.id, Credit: g.items}
	if st.c.s.peer.ChannelByteWindow != 0 {
		m.Bytes = g.bytes
	}
	if st.c.send(ctx, &m) != nil {
		st.mu.Lock()
		st.allowed -= g.items
		st.taken += g.items
		st.takenBytes += g.bytes
		st.mu.Unlock()
	}
}

// Grant gives the sender n more credits now (on top of the automatic
// grants): how a window-0 channel lets its first items flow. A grant that
// could not be sent is not counted, and Grant returns the error.
func (rx *RawRx) Grant(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	st := rx.st
	st.mu.Lock()
	st.allowed += uint64(n)
	st.mu.Unlock()
	err := st.c.send(ctx, &wire.Message{Kind: wire.KindGrantCredit, Conn: st.c.id, ID: st.id, Credit: uint64(n)})
	if err != nil {
		st.mu.Lock()
		st.allowed -= uint64(n)
		st.mu.Unlock()
	}
	return err
}

// Reset asks the sender to stop (rule 25): its next Send fails, and items
// still queued here are dropped. Idempotent; a no-op after the end.
func (rx *RawRx) Reset() error {
	rx.once.Do(func() {
		rx.cleanup.Stop()
		rx.st.resetRx()
	})
	return nil
}

// Close is Reset for a receiver that is done: harmless after the end.
func (rx *RawRx) Close() error { return rx.Reset() }

func (st *chanState) resetRx() {
	if st.dropUnbound() {
		return // never bound: the peer never heard of it
	}
	st.mu.Lock()
	finished := st.peerDone || st.ourDone || st.err != nil
	st.ourDone = true
	st.mu.Unlock()
	st.dropQueue()
	if finished {
		return
	}
	// The state stays as a tombstone that drops in-flight items until the
	// sender acknowledges with Close.
	st.c.sendSoon(&wire.Message{Kind: wire.KindChannelReset, Conn: st.c.id, ID: st.id})
	signal(st.notify)
}

// ChannelInfo describes one channel a request binds.
type ChannelInfo struct {
	ID uint64
	// CalleeSends: the handler sends on it (take it with Tx); otherwise
	// the caller sends and the handler receives (Rx).
	CalleeSends bool
	// Window is the credit the receiver granted up front.
	Window uint64
}

// Channels describes the request's channels, in order.
func (r *Request) Channels() []ChannelInfo {
	out := make([]ChannelInfo, len(r.channels))
	for i, b := range r.channels {
		out[i] = ChannelInfo{ID: b.st.id, CalleeSends: b.st.send, Window: b.st.window}
	}
	return out
}

// Rx returns the receiving end of the request's i-th channel (one the
// caller sends on). Items that arrived before are waiting in it (rule 28).
// It may outlive the handler (rule 24); close it when done. A channel the
// handler never takes is reset when the handler returns.
func (r *Request) Rx(i int) (*RawRx, error) {
	st, err := r.channel(i, false)
	if err != nil {
		return nil, err
	}
	return newRawRx(st), nil
}

// Tx returns the sending end of the request's i-th channel (one the caller
// receives on). A channel the handler never takes is closed when the
// handler returns.
func (r *Request) Tx(i int) (*RawTx, error) {
	st, err := r.channel(i, true)
	if err != nil {
		return nil, err
	}
	return newRawTx(st), nil
}

func (r *Request) channel(i int, send bool) (*chanState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i < 0 || i >= len(r.channels) {
		return nil, fmt.Errorf("rove: request binds %d channels, not %d", len(r.channels), i+1)
	}
	b := &r.channels[i]
	if b.st.send != send {
		return nil, fmt.Errorf("rove: channel %d of the request flows the other way", i)
	}
	if b.taken {
		return nil, fmt.Errorf("rove: channel %d already taken", i)
	}
	b.taken = true
	return b.st, nil
}

// releaseUntakenChannels ends the channels a finished handler never took.
func (r *Request) releaseUntakenChannels() {
	if len(r.channels) == 0 { // set before the handler ran, never after: no lock needed
		return
	}
	r.mu.Lock()
	var left []*chanState
	for i := range r.channels {
		if b := &r.channels[i]; !b.taken {
			b.taken = true
			left = append(left, b.st)
		}
	}
	r.mu.Unlock()
	for _, st := range left {
		if st.send {
			st.closeTx()
		} else {
			st.resetRx()
		}
	}
}
