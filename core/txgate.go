package core

// A Tx's ChannelClose is sent once, ours (Close) or the acknowledgement
// of the receiver's reset, and no item of the channel follows it. Both
// are decided by the gates below, under the outbound buffer's lock where
// the frames are queued (netpoll.Admitter), so the reading goroutine that
// acknowledges a reset never waits for a Send: an item being committed
// was queued before the ChannelClose, or is refused, also while it waits
// for room in the buffer (netpoll asks its Admitter again when a control
// frame is queued). Each gate also keeps the connection's rule (connGate):
// nothing of a torn-down connection is queued.

// What closed a Tx on the wire (chanState.closeSent).
const (
	closeNotSent  int32 = iota
	closeSentOurs       // our Close
	closeSentAck        // the acknowledgement of the receiver's reset
)

// txOpen reports whether an item or a ChannelClose of st may still be
// queued. Called under the outbound buffer's lock.
func (st *chanState) txOpen() bool {
	return st.closeSent.Load() == closeNotSent && st.c.gate().Admit()
}

// txItemGate admits an item while the channel's ChannelClose is not queued.
type txItemGate chanState

// Admit implements netpoll.Admitter.
func (g *txItemGate) Admit() bool { return (*chanState)(g).txOpen() }

// Committed implements netpoll.Committer.
func (g *txItemGate) Committed() {}

// txCloseGate admits our Close, unless the acknowledgement of a reset went
// first.
type txCloseGate chanState

// Admit implements netpoll.Admitter.
func (g *txCloseGate) Admit() bool { return (*chanState)(g).txOpen() }

// Committed implements netpoll.Committer.
func (g *txCloseGate) Committed() { g.closeSent.Store(closeSentOurs) }

// txAckGate admits the acknowledgement of the receiver's reset, unless our
// Close went first (it acknowledges the reset as well).
type txAckGate chanState

// Admit implements netpoll.Admitter.
func (g *txAckGate) Admit() bool { return (*chanState)(g).txOpen() }

// Committed implements netpoll.Committer.
func (g *txAckGate) Committed() { g.closeSent.Store(closeSentAck) }

// refusedErr says why a gate refused an item of st.
func (st *chanState) refusedErr() error {
	if err := st.txErr(); err != nil {
		return err
	}
	if st.closeSent.Load() == closeSentAck {
		return ErrChannelReset // queued, and the reset not yet visible: it is now
	}
	return ErrChannelClosed
}
