package netpoll

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/rove-rpc/rove/internal/testwait"
)

// ourGoroutines counts goroutines running netpoll's code (not gnet's
// worker pool, whose idle workers linger after a dial).
func ourGoroutines() int { return testwait.Goroutines("rove/netpoll.(") }

// dialRawPeer dials a plain TCP listener from g: a peer that reads only
// when the test does.
func dialRawPeer(t *testing.T, g *Gnet) (*Conn, net.Conn) {
	t.Helper()
	ln, accepted := rawListener(t)
	c, err := g.Dial(context.Background(), "tcp", ln.Addr().String(), newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { peer.Close() })
	return c, peer
}

// frameCounter counts frames from any number of connections.
type frameCounter struct{ n atomic.Int64 }

func (f *frameCounter) HandleFrames(_ *Conn, frames []Frame) {
	for _, fr := range frames {
		fr.Release()
	}
	f.n.Add(int64(len(frames)))
}

func (f *frameCounter) HandleClose(*Conn, error) {}

// fdEvents checks, in OnClose, that gnet has not closed the descriptor yet.
type fdEvents struct {
	gnet.BuiltinEventEngine
	validInOnClose chan bool
}

func (e *fdEvents) OnClose(gc gnet.Conn, _ error) gnet.Action {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(gc.Fd()), syscall.F_GETFD, 0)
	e.validInOnClose <- errno == 0
	return gnet.None
}

// gnetSink writes to gnet's descriptor from other goroutines, which is
// safe only because gnet calls OnClose before it closes the descriptor
// (closeFd then shuts every writer out). This pins that order: a gnet
// upgrade that changes it must fail here.
func TestGnetClosesAfterOnClose(t *testing.T) {
	ev := &fdEvents{validInOnClose: make(chan bool, 1)}
	cli, err := gnet.NewClient(ev, gnet.WithLogger(silentLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	defer cli.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close() // the client's loop reads EOF and closes
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Enroll(nc); err != nil {
		t.Fatal(err)
	}
	select {
	case valid := <-ev.validInOnClose:
		if !valid {
			t.Fatal("gnet closed the descriptor before OnClose")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose never ran")
	}
}

// An idle gnet connection costs one descriptor and no goroutine, on both
// sides: writes go straight to gnet's socket.
func TestGnetIdleConnCostsOneFD(t *testing.T) {
	g := NewGnet(GnetOptions{EventLoops: 1})
	defer g.Close()
	srv := &frameCounter{}
	ln, err := g.Listen("tcp", "127.0.0.1:0", func(*Conn) Handler { return srv })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func() (*Conn, *recorder) {
		h := newRecorder()
		c, err := g.Dial(context.Background(), "tcp", ln.Addr().String(), h)
		if err != nil {
			t.Fatal(err)
		}
		return c, h
	}
	first, _ := dial() // starts the client engine
	defer first.Close()
	if err := first.WriteFrame(context.Background(), []byte("warm")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the first frame", func() bool { return srv.n.Load() == 1 })
	fds, goroutines := testwait.OpenFDs(t), ourGoroutines()

	const n = 20
	for i := range n {
		c, _ := dial()
		defer c.Close()
		if err := c.WriteFrame(context.Background(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, "the frame", func() bool { return srv.n.Load() == int64(2+i) })
	}
	// Other tests' connections may still be ending (their goroutines
	// match too): wait for the count to come back, which it never does if
	// idle connections keep a goroutine each.
	testwait.For(t, fmt.Sprintf("%d idle connections to hold no goroutine (%d before)", n, goroutines),
		func() bool { return ourGoroutines() <= goroutines })
	if got := testwait.OpenFDs(t) - fds; got != 2*n { // one per side
		t.Fatalf("%d connections (both ends in this process) hold %d descriptors, want %d", n, got, 2*n)
	}
}

// A writer that finds the socket full waits on a dup of it, and gives the
// dup and its goroutine back once the peer has read everything.
func TestGnetFullSocketWriterEnds(t *testing.T) {
	g := NewGnet(GnetOptions{EventLoops: 1, Options: Options{MaxOutbound: 64 << 10}})
	defer g.Close()
	c, peer := dialRawPeer(t, g)
	defer c.Close()
	fds, goroutines := testwait.OpenFDs(t), ourGoroutines()

	body := bytes.Repeat([]byte("x"), 32<<10)
	const frames = 256 // 8 MiB: far more than the socket buffers hold
	wrote := make(chan error, 1)
	go func() {
		for range frames {
			if err := c.WriteFrame(context.Background(), body); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	testwait.Blocked(t, "netpoll.(*outbound).write", 1) // the buffer is full
	testwait.For(t, "the writer to wait on its dup", func() bool { return testwait.OpenFDs(t) == fds+1 })
	want := int64(frames * FrameLen(len(body)))
	got, err := io.CopyN(io.Discard, peer, want)
	if err != nil || got != want {
		t.Fatalf("peer read %d of %d bytes: %v", got, want, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the writer and its dup to go", func() bool {
		return testwait.OpenFDs(t) == fds && ourGoroutines() <= goroutines
	})
}

// Closing a connection whose writer waits on a full socket wakes the
// writer, closes its dup and leaves nothing behind.
func TestGnetCloseWakesWaitingWriter(t *testing.T) {
	g := NewGnet(GnetOptions{EventLoops: 1, Options: Options{MaxOutbound: 64 << 10, CloseTimeout: 50 * time.Millisecond}})
	defer g.Close()
	c, _ := dialRawPeer(t, g) // the peer never reads
	fds, goroutines := testwait.OpenFDs(t), ourGoroutines()
	body := make([]byte, 32<<10)
	wrote := make(chan error, 1)
	go func() {
		for {
			if err := c.WriteFrame(context.Background(), body); err != nil {
				wrote <- err
				return
			}
		}
	}()
	testwait.For(t, "the writer to wait on its dup", func() bool { return testwait.OpenFDs(t) == fds+1 })
	c.Close() // the drain times out; the socket is aborted
	if err := <-wrote; err == nil {
		t.Fatal("WriteFrame after Close succeeded")
	}
	testwait.For(t, "the writer and both descriptors to go", func() bool {
		return testwait.OpenFDs(t) == fds-1 && ourGoroutines() <= goroutines
	})
}
