package core

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Channel errors.
var (
	// ErrChannelClosed: Send after this side closed the channel.
	ErrChannelClosed = errors.New("rove: channel closed")
	// ErrChannelReset: the receiver reset the channel (Send fails), or this
	// receiver reset it (Recv fails).
	ErrChannelReset = errors.New("rove: channel reset by the receiver")
)

// MaxChannelsPerCall is the most channels one request may bind; a peer
// that binds more commits a violation (too many channels).
const MaxChannelsPerCall = 256

// DefaultWindow is a good initial credit window for a channel: the items a
// sender may send before the receiver grants more. 1024 items of 64 B are
// 64 KiB in flight, HTTP/2's default stream window; across processes on
// loopback one stream carries 2.3M such items/s with it against 0.4M with
// 16 (BENCHMARKS.md, "Channels"). The window counts items, whatever
// their size; the receiver's byte window (Options.ChannelByteWindow)
// bounds their bytes too, so that a channel of large items that nobody
// reads keeps only that much of the receiver's byte budget, not a
// window's worth. A receiver grows its window, up to 16 times, while its
// consumer outruns it (window.go): across a 10 ms round trip one stream
// of 64 B items carries about 0.75M items/s instead of 0.1M.
const DefaultWindow = 1024

// chanState is one live channel of a connection, either direction. The
// reading goroutine feeds it (items, close, reset, grants); the Tx or Rx
// handle drives it from the user's goroutines.
type chanState struct {
	c      *conn
	id     uint64
	send   bool   // we hold the Tx
	window uint64 // initial credit (an Rx's window grows: tune)

	// Tx side: credit left, and a wake-up for senders waiting on zero.
	// creditWake holds one token; a sender that takes it passes it on
	// (signal again) while what woke it still holds for the next: credit
	// left after its own item, or the channel's end. So a grant of n wakes
	// up to n waiting senders one after another, and no wake-up allocates.
	credit     atomic.Int64
	creditWake chan struct{}
	// Tx side: the payload bytes sent and not yet acknowledged, and the
	// wake-up of senders waiting for the receiver's byte window (made by
	// the first of them, under mu: see bytewindow.go).
	unacked    atomic.Int64
	bytesFreed chan struct{}

	// Ends made by this peer (Conn.NewTx, Conn.NewRx) bind to one call:
	// bind goes unbound -> binding -> bound, or unbound -> dropped when
	// closed first. The peer's ends (bindRequest) start bound.
	bind    atomic.Int32
	boundCh chan struct{} // our Tx: closed when binding ends either way

	forgotten atomic.Bool // out of the table; its hold on the connection released
	// sendMu makes our Close wait for the item a Send is committing, so
	// that the receiver gets it: Send holds it from the state check to the
	// item's commit, and Close takes it first. (What keeps items before
	// the ChannelClose, ours or the acknowledgement of a reset, is the
	// gates of txgate.go: the reading goroutine takes no sendMu.)
	sendMu sync.Mutex
	// closeSent is what closed the Tx on the wire (closeNotSent, ...): set
	// under the outbound buffer's lock as its ChannelClose is queued.
	closeSent atomic.Int32

	mu         sync.Mutex
	queue      []rxItem // Rx: received, not yet taken (bounded by credit granted)
	head       int
	allowed    uint64        // Rx: credit granted so far (window + grants); reader checks received against it
	received   uint64        // Rx: items received (reading goroutine)
	taken      uint64        // Rx: items taken since the last grant
	takenBytes uint64        // Rx: their payload bytes
	notify     chan struct{} // Rx: one token, passed on like creditWake
	peerDone   bool          // Rx: the sender closed. Tx: the receiver reset
	ourDone    bool          // Tx: we closed. Rx: we reset (a tombstone until the sender's Close)
	probing    bool          // Rx: tune is timing a grant (the reading goroutine checks it per run)
	windowNow  uint32        // Rx: the window now: window, or what tune grew it to
	err        error         // the connection ended
	doneCh     chan struct{} // Tx.Done: made on first use, closed once peerDone or err
	doneShut   bool          // doneCh is closed
	// ended is set, under mu, with the first of ourDone, peerDone or err
	// on a Tx's state (and harmlessly on an Rx's): a sender checks it
	// without the lock on every item. (err is not only the connection's
	// end: a call whose request never went out ends its channels too.)
	ended atomic.Bool
	// tune is an Rx's window growth (window.go, under mu), made by its
	// first grant: a short stream never grants, and its state stays in
	// the 224-byte size class. Last, and read only through probing and
	// windowNow (in the padding after ourDone) on the paths every item
	// takes: its line may be another object's.
	tune *windowTuner
}

// done returns a channel closed once the receiver has reset the channel
// or its connection ended (for a Tx: no Send can succeed after).
func (st *chanState) done() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.doneCh == nil {
		st.doneCh = make(chan struct{})
		if st.peerDone || st.err != nil {
			st.shutDoneLocked()
		}
	}
	return st.doneCh
}

func (st *chanState) shutDoneLocked() {
	if st.doneCh != nil && !st.doneShut {
		st.doneShut = true
		close(st.doneCh)
	}
}

// rxItem is a received item: its frame, whose Body is narrowed to the
// item's payload (Release needs only the frame's chunk), so that a queue
// slot is one Frame, 40 bytes, and a stream's queue of 16 fits 640 B.
type rxItem struct {
	frame netpoll.Frame
}

// rxQueueLen is the queue a channel starts with: room for a short stream
// at once (the default window), rather than growing 1, 2, 4...
const rxQueueLen = 16

// rxQueues recycles starting queues: a short stream's channel lives for
// one call, and its queue was a fresh 640 B, pointer-holding allocation
// per stream (3.7% of a 1024-stream client's CPU). A queue goes back
// empty (every slot zeroed, pinning no chunk) when its channel drops it;
// a queue that grew past rxQueueLen is left to the collector.
var rxQueues = sync.Pool{New: func() any { return new([rxQueueLen]rxItem) }}

// Binding states (chanState.bind).
const (
	unbound int32 = iota // made by us, not yet listed in a call
	binding              // a call is sending the request that binds it
	bound                // the binding request went out, or the peer bound it
	dropped              // closed or reset before any call bound it
)

func newChanState(c *conn, id uint64, send bool, window uint64) *chanState {
	// A channel is a Tx or an Rx, never both: one wake-up channel serves
	// as creditWake or notify, whichever its side uses (one allocation).
	wake := make(chan struct{}, 1)
	st := &chanState{c: c, id: id, send: send, window: window, notify: wake, creditWake: wake}
	c.refs.Add(1) // a live channel holds its connection (rule 31) until forget
	if send {
		st.credit.Store(int64(window))
	} else {
		st.allowed = window
		st.windowNow = uint32(window)
	}
	return st
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dispatchChannel handles a channel message on the reading goroutine; it
// owns f. False: the session was torn down (a violation).
func (c *conn) dispatchChannel(link *netpoll.Conn, f netpoll.Frame, m *wire.Message) bool {
	if m.Kind == wire.KindChannelItem {
		// The run's channel is the table's entry for its id until it is
		// forgotten (forget marks it before it deletes it), and ids are not
		// reused before then: checking the mark answers as Load would.
		run := &c.s.run
		if st := run.st; st == nil || st.id != m.ID || st.c != c || st.forgotten.Load() {
			if !c.s.endRun() {
				f.Release()
				return false
			}
			st = c.chans.lookup(m.ID)
			if st == nil || st.send {
				f.Release()
				c.s.violation(link, wire.CodeUnknownChannel, fmt.Sprintf("item for channel %d, which is not bound to us as a receiver", m.ID))
				return false
			}
			run.st, run.link = st, link
		}
		if run.frames == nil {
			run.frames = make([]netpoll.Frame, 0, maxRun)
		}
		f.Body = m.Payload
		run.frames = append(run.frames, f)
		if len(run.frames) == maxRun {
			return c.s.endRun()
		}
		return true
	}
	st := c.chans.lookup(m.ID)
	switch m.Kind {
	case wire.KindChannelClose:
		f.Release()
		if st == nil || st.send {
			c.s.violation(link, wire.CodeUnknownChannel, fmt.Sprintf("close of channel %d, which is not bound to us as a receiver", m.ID))
			return false
		}
		st.peerClosed()
		return true
	case wire.KindChannelReset:
		f.Release()
		if st == nil { // already closed by us: a benign race
			return true
		}
		if !st.send {
			c.s.violation(link, wire.CodeUnexpected, fmt.Sprintf("reset of channel %d from its sender", m.ID))
			return false
		}
		st.peerReset()
		return true
	case wire.KindGrantCredit:
		f.Release()
		if st == nil { // closed by us meanwhile: nothing left to send
			return true
		}
		if !st.send {
			c.s.violation(link, wire.CodeUnexpected, fmt.Sprintf("credit for channel %d from its sender", m.ID))
			return false
		}
		st.addCredit(m.Credit)
		st.ackBytes(m.Bytes)
		return true
	}
	f.Release()
	return true
}

// addCredit takes a grant and wakes a waiting sender. Accumulated credit
// is capped at maxCredit (far above any window: a sender never has that
// many items in flight) so that no run of grants can overflow it.
func (st *chanState) addCredit(n uint64) {
	for {
		cur := st.credit.Load()
		next := min(uint64(max(cur, 0))+min(n, maxCredit), maxCredit)
		if st.credit.CompareAndSwap(cur, int64(next)) {
			break
		}
	}
	signal(st.creditWake)
}

// maxCredit is the most credit a sender accumulates.
const maxCredit = 1 << 40

// peerClosed: the sender is done; the receiver drains, then sees the end.
// The id is free from now on: any later message for it is a violation.
func (st *chanState) peerClosed() {
	st.mu.Lock()
	st.peerDone = true
	st.ended.Store(true)
	tomb := st.ourDone
	st.mu.Unlock()
	st.forget()
	if tomb {
		st.dropQueue()
	}
	signal(st.notify)
}

// peerReset: the receiver asked us to stop (reading goroutine).
// Acknowledge with our ChannelClose so it can free its side, and free
// ours. The acknowledgement is queued first, before anyone can see the
// reset: so it precedes whatever the sender does once it has seen it. (A
// request binding new channels sent ahead of it would find the peer still
// counting this one against its MaxChannels, a protocol error that ends
// the session.) sendSoon queues it at once, without waiting for room; its
// gate makes it the channel's one ChannelClose (our Close may be racing
// it) with no item after it: a Send committing an item right now queued
// it before, or is refused with ErrChannelReset, also while it waits for
// room (txgate.go).
func (st *chanState) peerReset() {
	st.c.sendSoonGated(&wire.Message{Kind: wire.KindChannelClose, Conn: st.c.id, ID: st.id}, (*txAckGate)(st))
	st.mu.Lock()
	st.peerDone, st.ourDone = true, true
	st.ended.Store(true)
	st.shutDoneLocked()
	st.freeBytesLocked()
	st.mu.Unlock()
	st.forget()
	signal(st.creditWake)
}

// end fails the channel when its connection ends (rule 30).
func (st *chanState) end(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.ended.Store(true)
	st.shutDoneLocked()
	st.freeBytesLocked()
	st.mu.Unlock()
	st.dropQueue()
	signal(st.notify)
	signal(st.creditWake)
}

func (st *chanState) dropQueue() {
	st.mu.Lock()
	all, head := st.queue, st.head
	st.queue, st.head = nil, 0
	st.mu.Unlock()
	for _, it := range all[head:] {
		it.frame.Release()
	}
	// No one else holds the queue now (it was only reached through st
	// under mu): recycle it. Items before head were zeroed as taken.
	if cap(all) == rxQueueLen {
		clear(all[head:])
		rxQueues.Put((*[rxQueueLen]rxItem)(all[:rxQueueLen]))
	}
}

// bindRequest creates the callee's side of every channel a request binds,
// on the reading goroutine, before anything else can arrive for them:
// items that come before the handler takes its Rx are queued (rule 28),
// bounded by the window (rule 29).
func (c *conn) bindRequest(link *netpoll.Conn, l wire.ChannelList) ([]boundChannel, bool) {
	if l.Empty() {
		return nil, true
	}
	n := l.Len()
	if n > MaxChannelsPerCall || c.chans.size()+n > c.s.opts.MaxChannels {
		c.s.violation(link, wire.CodeTooManyChannels, fmt.Sprintf("a request binding %d channels, with %d live (limits %d per call, %d per connection)",
			n, c.chans.size(), MaxChannelsPerCall, c.s.opts.MaxChannels))
		return nil, false
	}
	chans := make([]boundChannel, 0, n) // the Request's own list: one allocation
	for b, rest, ok := l.Next(); ok; b, rest, ok = rest.Next() {
		if !c.parity.Opposite().Owns(b.ID) {
			c.s.violation(link, wire.CodeWrongParity, fmt.Sprintf("channel id %d has our parity", b.ID))
			return nil, false
		}
		st := newChanState(c, b.ID, b.Dir == wire.CalleeSends, b.Window)
		st.bind.Store(bound)
		if !c.chans.insertPeer(st) {
			c.s.violation(link, wire.CodeIDInUse, fmt.Sprintf("channel id %d is already bound", b.ID))
			return nil, false
		}
		c.missedByTeardown(st)
		chans = append(chans, boundChannel{st: st})
	}
	return chans, true
}

// missedByTeardown ends channels stored in the table after a teardown
// that may have run its endChannels before they were there (a request
// admitted while another goroutine closed the session, a NewRx on a
// connection just torn down): otherwise they would stay in the table, and
// hold the connection, for ever.
func (c *conn) missedByTeardown(states ...*chanState) {
	if cause := c.down(); cause != nil {
		for _, st := range states {
			st.end(cause)
			st.forget()
		}
	}
}

// ErrChannelBound is returned by a call that lists a channel end already
// bound to another call (or closed before it was bound), or one made on
// another connection; the call is not sent.
var ErrChannelBound = errors.New("rove: channel already bound, closed, or of another connection")

// claimBindings moves the channels of a call from unbound to binding. If
// one cannot be bound, the ones claimed so far go back and the call fails.
func (c *conn) claimBindings(chans []Channel) error {
	for i, ch := range chans {
		st := ch.state()
		if st.c != c || !st.bind.CompareAndSwap(unbound, binding) {
			for _, prev := range chans[:i] {
				prev.state().bind.Store(unbound)
			}
			return ErrChannelBound
		}
	}
	return nil
}

// markBound: the call's request is out; its Tx may send now.
func (st *chanState) markBound() {
	st.bind.Store(bound)
	if st.boundCh != nil {
		close(st.boundCh)
	}
}

// unbind ends the channels of a call whose request never went out.
func unbind(chans []Channel, err error) {
	for _, ch := range chans {
		st := ch.state()
		st.forget()
		st.end(err)
		st.bind.Store(dropped)
		if st.boundCh != nil {
			close(st.boundCh) // a Send waiting for the binding sees the end
		}
	}
}

// dropUnbound ends a channel closed before any call bound it: the peer
// never heard of it, so nothing is sent. False if a call bound it (or is
// binding it): then it ends as a bound channel does.
func (st *chanState) dropUnbound() bool {
	if !st.bind.CompareAndSwap(unbound, dropped) {
		return false
	}
	st.mu.Lock()
	st.ourDone = true
	st.ended.Store(true)
	st.freeBytesLocked()
	st.mu.Unlock()
	st.forget()
	st.dropQueue()
	if st.boundCh != nil {
		close(st.boundCh)
	}
	signal(st.creditWake)
	signal(st.notify)
	return true
}

// forget removes the channel from its connection's table, once: it is
// finished on the wire, and no longer holds the connection (rule 31).
func (st *chanState) forget() {
	if st.forgotten.CompareAndSwap(false, true) {
		st.c.chans.remove(st)
		st.c.release()
	}
}

// endChannels fails every channel of the connection and forgets them.
func (c *conn) endChannels(err error) {
	c.chans.each(func(st *chanState) {
		st.end(err)
		st.forget()
	})
}

// channelsFitPeer checks a call binding n channels against the limits the
// peer advertised. Our table holds every channel the peer's does (and the
// call's, already made, and any not yet bound), so the check errs on the
// side of never making the peer see a violation.
func (c *conn) channelsFitPeer(n int) error {
	if n == 0 {
		return nil
	}
	p := &c.s.peer
	if p.MaxChannelsPerCall != 0 && uint64(n) > p.MaxChannelsPerCall {
		return fmt.Errorf("%w: a call binding %d, the peer takes %d per call", ErrTooManyChannels, n, p.MaxChannelsPerCall)
	}
	if live := c.chans.size(); p.MaxChannels != 0 && uint64(live) > p.MaxChannels {
		return fmt.Errorf("%w: %d live on the connection, the peer holds %d", ErrTooManyChannels, live, p.MaxChannels)
	}
	return nil
}
