package netpoll

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/rove-rpc/rove/internal/testwait"
)

// failingLoop is an event loop whose Enroll fails: the fault a paused
// gnet connection meets when it cannot come back (the engine stopping,
// the loop refusing the descriptor, gnet failing to register it).
type failingLoop struct {
	gnet.EventLoop
	refuse error // Enroll returns it
	result error // else Enroll accepts, and its result carries this
}

func (l failingLoop) Enroll(_ context.Context, nc net.Conn) (<-chan gnet.RegisteredResult, error) {
	nc.Close() // Enroll owns the conn it is given, as gnet's does
	if l.refuse != nil {
		return nil, l.refuse
	}
	ch := make(chan gnet.RegisteredResult, 1)
	ch <- gnet.RegisteredResult{Err: l.result}
	return ch, nil
}

// pausedGnetClient dials a gnet client whose read budget (64 KiB) a
// server fills until the client stops reading, and returns the client
// once its pause is complete, with the frames it holds and its transport
// (closed when the test ends).
func pausedGnetClient(t *testing.T) (*Conn, *holder, *Gnet) {
	t.Helper()
	g := NewGnet(GnetOptions{EventLoops: 1, Options: Options{MaxHeld: 64 << 10}})
	t.Cleanup(func() { g.Close() })
	srvT := NewGnet(GnetOptions{EventLoops: 1})
	t.Cleanup(func() { srvT.Close() })
	accepted := make(chan *Conn, 1)
	ln := listenFor(t, srvT, func(c *Conn) Handler { accepted <- c; return newRecorder() })
	h := &holder{}
	client, err := g.Dial(context.Background(), "tcp", ln.Addr().String(), h)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	go func() { // until the client is gone
		body := make([]byte, 16<<10)
		for i := 0; ; i++ {
			binary.BigEndian.PutUint32(body, uint32(i))
			if server.WriteFrame(context.Background(), body) != nil {
				return
			}
		}
	}()
	testwait.For(t, "the client's reading to pause", func() bool { return client.rstate.Load() == readPaused })
	return client, h, g
}

// A paused gnet connection that cannot resume ends, with the reason, once
// its frames are released: it neither hangs half-open (no gnet connection
// would ever close it) nor resumes reading that nothing does.
func TestFailedResumeEndsTheConn(t *testing.T) {
	refused := errors.New("enroll refused")
	failed := errors.New("registration failed")
	for _, tc := range []struct {
		name   string
		inject func(c *Conn)
		want   error
	}{
		{"enroll refused", func(c *Conn) { c.park.loop = failingLoop{EventLoop: c.park.loop, refuse: refused} }, refused},
		{"registration failed", func(c *Conn) { c.park.loop = failingLoop{EventLoop: c.park.loop, result: failed} }, failed},
		// The socket is gone (gnet closed it, or an abort did) before the
		// resume could take a dup of it.
		{"socket gone", func(c *Conn) {
			s := c.be.(*gnetBackend).sink
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
		}, ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, h, _ := pausedGnetClient(t)
			client.pauseMu.Lock()
			tc.inject(client)
			client.pauseMu.Unlock()
			h.releaseAll() // below half the budget: the resume starts, and fails
			testwait.For(t, "the connection to end", func() bool {
				select {
				case <-client.Done():
					return true
				default:
					return false
				}
			})
			if err := client.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("ended with %v, want %v", err, tc.want)
			}
		})
	}
}
