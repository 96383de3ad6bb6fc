package core

import (
	"context"
	"errors"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:33 calls that have not even been sent end with the session: a call
// waiting for a slot under the peer's limit (rule 18) and calls whose
// requests wait for room in a full outbound buffer (the peer reads
// nothing) fail with ConnectionClosed when the session closes, none of
// them left waiting.
func TestTeardownEndsCallsNotYetSent(t *testing.T) {
	t.Run("waiting for a slot", func(t *testing.T) {
		s, p := newRawPeer(t, true, Options{})
		p.acceptHello(t, s, wire.Settings{MaxConcurrentRequests: 1})
		cl := s.Caller()
		defer cl.Close()
		// The first call holds the one slot in its reply callback, which
		// the teardown cannot end: only the teardown's own wake-up can
		// release a call waiting for that slot.
		hold, holding := make(chan struct{}), make(chan struct{})
		first := make(chan error, 1)
		go func() {
			first <- cl.Call(context.Background(), mEcho, nil, nil, func(Reply) error { close(holding); <-hold; return nil })
		}()
		req := p.nextKind(t, wire.KindRequest)
		p.send(t, wire.Message{Kind: wire.KindResponse, ID: req.ID, Status: wire.StatusOK})
		// The response is in the callback before the close: a close that
		// came first would end the first call too, rightly.
		testwait.Recv(t, "the first call's reply callback", holding)
		second := make(chan error, 1)
		go func() { _, err := call(context.Background(), cl, mEcho, nil); second <- err }()
		testwait.Blocked(t, "core.(*callSlots).acquire", 1)
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		if err := testwait.Recv(t, "the waiting call's end", second); !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("a call waiting for a slot when the session closed: %v", err)
		}
		close(hold)
		if err := testwait.Recv(t, "the first call's end", first); err != nil {
			t.Fatalf("the first call, answered before the close: %v", err)
		}
		testwait.Recv(t, "the close", closed)
	})
	t.Run("waiting for room", func(t *testing.T) {
		s, _, _, resume, errc := fullOutbound(t, context.Background())
		// The calls end as the session does, not once the link has
		// drained: its close waits for the paused peer.
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		for range outboundFillers {
			if err := testwait.Recv(t, "a call's end", errc); !errors.Is(err, ErrConnectionClosed) {
				t.Fatalf("a call when the session closed: %v", err)
			}
		}
		resume()
		testwait.Recv(t, "the close", closed)
	})
}
