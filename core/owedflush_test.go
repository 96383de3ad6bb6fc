package core

import (
	"context"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// A pool handler's response is written owed (netpoll.WriteFrameOwed): no
// writer goroutine starts for it, and the workers flush it once the
// requests queued before the flush have started (session.oweFlush).

var mReplyThenBlock = NewMethod("test", "replyThenBlock")

// spec:13 a response from a blocking handler leaves while that handler
// and every other handler of its batch still block: its flush is the
// workers' to run, not a handler's to come back for.
func TestOwedResponseLeavesWhileHandlersBlock(t *testing.T) {
	started, release := make(chan uint64, 4), make(chan struct{})
	defer close(release)
	r := holdRouter(started, release)
	r.Handle(mReplyThenBlock, func(ctx context.Context, req *Request) error {
		if err := req.Reply([]byte("early"), nil); err != nil {
			return err
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	// No keepalive: its Ping would flush the response for us.
	c := serveRawClient(t, Options{Router: r, KeepaliveInterval: -1})
	// One batch: while request 3 replies, request 1 is still in flight,
	// so its response is not alone (which its caller would write) but
	// owed.
	c.write(frames(req(1, mHold, nil), req(3, mReplyThenBlock, nil), req(5, mHold, nil)))
	for {
		m, ok := c.next()
		if !ok {
			t.Fatal("the session ended before the response")
		}
		if m.Kind == wire.KindResponse {
			if m.ID != 3 || string(m.Payload) != "early" {
				t.Fatalf("response to %d %q, want 3 %q", m.ID, m.Payload, "early")
			}
			return
		}
	}
}
