package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

var mFlood = NewMethod("test", "flood")

// spec:25 the receiver's reset reaches a Send that waits for room in a
// full outbound buffer at once: the acknowledgement (our ChannelClose) is
// queued by the reading goroutine without waiting for that Send, the Send
// fails with ErrChannelReset while the peer still reads nothing, its item
// is never sent after the acknowledgement, and what the handler sends once
// it has seen the reset (its response) follows the acknowledgement.
// (Before, the acknowledgement waited on a goroutine for the Send to let
// go of the channel, and the Send for the peer to read again.)
func TestResetReachesASendWaitingForRoom(t *testing.T) {
	sendErr := make(chan error, 1)
	r := NewRouter()
	r.Handle(mFlood, func(ctx context.Context, req *Request) error {
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		item := make([]byte, 1000)
		for {
			if err = tx.Send(ctx, item); err != nil {
				break
			}
		}
		sendErr <- err
		return req.Reply([]byte("after the reset"), nil)
	})
	// No keepalive: a Ping waiting for room would be a second writer in
	// waitLocked below.
	_, p := newRawPeer(t, false, Options{Router: r, KeepaliveInterval: -1, Link: netpoll.Options{MaxOutbound: 4 << 10}})
	p.hello(t, wire.Settings{})
	resume := sync.OnceFunc(p.pause())
	defer resume() // a failure must not leave the session's Close waiting on a peer that does not read
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mFlood.ID,
		Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CalleeSends, Window: wire.MaxWindow})})
	// The peer reads nothing: the pipe fills, then the buffer, then the
	// handler's Send waits for room.
	testwait.Blocked(t, "netpoll.(*outbound).waitLocked", 1)
	p.send(t, wire.Message{Kind: wire.KindChannelReset, ID: 1})
	select {
	case err := <-sendErr:
		if !errors.Is(err, ErrChannelReset) {
			t.Fatalf("the waiting Send failed with %v, want ErrChannelReset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Send waiting for room did not see the reset while the peer read nothing")
	}
	resume()
	closed := false
	for {
		m := p.next(t)
		switch {
		case m.Kind == wire.KindChannelItem && closed:
			t.Fatal("an item of the channel after its ChannelClose")
		case m.Kind == wire.KindChannelClose && m.ID == 1:
			if closed {
				t.Fatal("two ChannelClose for one channel")
			}
			closed = true
		case m.Kind == wire.KindResponse:
			if !closed {
				t.Fatal("the handler's response, sent after it saw the reset, came before the acknowledgement")
			}
			return
		}
	}
}

// spec:25 a Tx's ChannelClose goes once, ours or the acknowledgement of
// the receiver's reset, whichever is queued first (the two race when the
// reset crosses our Close), and no item goes after it.
func TestTxSendsOneChannelClose(t *testing.T) {
	for _, first := range []string{"our Close", "the reset's acknowledgement"} {
		st := &chanState{c: &conn{}} // the root connection: its own gate admits
		item, ours, ack := (*txItemGate)(st), (*txCloseGate)(st), (*txAckGate)(st)
		if !item.Admit() || !ours.Admit() || !ack.Admit() {
			t.Fatal("an open Tx refuses its frames")
		}
		want := ErrChannelClosed
		if first == "our Close" {
			ours.Committed()
		} else {
			ack.Committed()
			want = ErrChannelReset
		}
		if ours.Admit() || ack.Admit() {
			t.Errorf("after %s, another ChannelClose is admitted", first)
		}
		if item.Admit() {
			t.Errorf("after %s, an item is admitted", first)
		}
		if err := st.refusedErr(); !errors.Is(err, want) {
			t.Errorf("after %s, a refused Send gets %v, want %v", first, err, want)
		}
	}
}
