package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:1 frames arrive whole, in order, without loss or duplication, over
// every transport; empty bodies and bodies at the maximum pass.
func TestEchoOverEveryTransport(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		const max = 64 << 10
		for _, readSize := range []int{0, 1} {
			srv, cli := newEchoer(), newRecorder()
			client, _ := tc.connect(t, Options{MaxFrameSize: max, MaxReadSize: readSize}, cli, srv)
			bodies := [][]byte{{}, {1, 2, 3}, make([]byte, 64), make([]byte, 4096), bytes.Repeat([]byte{9}, max), {}}
			if readSize == 1 {
				bodies = bodies[:4] // byte-at-a-time: keep it quick
			}
			for _, b := range bodies {
				if err := client.WriteFrame(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			got := cli.waitFrames(t, len(bodies))
			for i, b := range bodies {
				if !bytes.Equal(got[i], b) {
					t.Fatalf("read size %d: frame %d differs", readSize, i)
				}
			}
		}
	})
}

// spec:1 a frame over the maximum is refused with an error before anything
// is sent, and the connection stays usable.
func TestOversizedWriteRefused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		srv := newRecorder()
		client, _ := tc.connect(t, Options{MaxFrameSize: 5000}, newRecorder(), srv)
		err := client.WriteFrame(context.Background(), make([]byte, 5001))
		var fe *FrameError
		if !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &fe) || fe.Size != 5001 {
			t.Fatalf("got %v", err)
		}
		if owed, err := client.WriteFrameOwed(context.Background(), make([]byte, 5001), nil); !errors.Is(err, ErrFrameTooLarge) || owed {
			t.Fatalf("owed: got %v (owed %v)", err, owed)
		}
		if st := client.Stats(); st.FramesOut != 0 {
			t.Fatalf("oversized frame was queued: %+v", st)
		}
		if err := client.WriteFrame(context.Background(), make([]byte, 5000)); err != nil {
			t.Fatal(err)
		}
		// Owed unless the first frame's flush is still under way, which
		// then takes it.
		owed, err := client.WriteFrameOwed(context.Background(), make([]byte, 4999), nil)
		if err != nil {
			t.Fatal(err)
		}
		if owed {
			client.FlushOwed()
		}
		if got := srv.waitFrames(t, 2); len(got[0]) != 5000 || len(got[1]) != 4999 {
			t.Fatalf("got %d and %d bytes", len(got[0]), len(got[1]))
		}
	})
}

// Many goroutines writing at once never interleave two frames' bytes, and
// each writer's frames arrive in the order it wrote them.
func TestConcurrentWritersKeepFramesWhole(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		const writers, each = 16, 300
		srv := newRecorder()
		client, _ := tc.connect(t, Options{MaxOutbound: 8 << 10}, newRecorder(), srv)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for seq := range each {
					// [writer, seq, n, then n bytes of a pattern]
					n := (w*31 + seq*7) % 300
					b := binary.LittleEndian.AppendUint32(nil, uint32(w))
					b = binary.LittleEndian.AppendUint32(b, uint32(seq))
					for i := range n {
						b = append(b, byte(w+seq+i))
					}
					if err := client.WriteFrame(context.Background(), b); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got := srv.waitFrames(t, writers*each)
		next := make([]uint32, writers)
		for i, b := range got {
			w, seq := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
			if w >= writers || seq != next[w] {
				t.Fatalf("frame %d: writer %d seq %d, want seq %d", i, w, seq, next[w])
			}
			next[w]++
			for j, c := range b[8:] {
				if c != byte(int(w)+int(seq)+j) {
					t.Fatalf("frame %d (writer %d seq %d) corrupted at byte %d", i, w, seq, j)
				}
			}
		}
		st := client.Stats()
		t.Logf("%d frames in %d writes", st.FramesOut, st.Writes)
	})
}

// Graceful close: the peer sees end-of-stream only after every frame that
// was committed before Close, and both sides report one close.
func TestCloseDeliversEveryCommittedFrame(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		const n = 2000
		srv, cli := newRecorder(), newRecorder()
		client, server := tc.connect(t, Options{}, cli, srv)
		for i := range n {
			if err := client.WriteFrame(context.Background(), binary.LittleEndian.AppendUint32(nil, uint32(i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
		if err := srv.waitClose(t); err != io.EOF {
			t.Fatalf("server saw %v, want io.EOF", err)
		}
		if got := srv.count(); got != n {
			t.Fatalf("server got %d of %d frames before end-of-stream", got, n)
		}
		if err := cli.waitClose(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("client close error %v", err)
		}
		<-server.Done()
		if err := client.WriteFrame(context.Background(), []byte{1}); !isClosedErr(err) {
			t.Fatalf("write after close: %v", err)
		}
		if srv.closes != 1 || cli.closes != 1 {
			t.Fatalf("HandleClose called %d and %d times", srv.closes, cli.closes)
		}
	})
}

// Abort ends a link at once, with the caller's error, even though
// CloseTimeout is an hour and the peer never closes: its goroutines end
// and the peer sees the link gone.
func TestAbortEndsAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		srv, cli := newRecorder(), newRecorder()
		client, _ := tc.connect(t, Options{CloseTimeout: time.Hour}, cli, srv)
		if err := client.WriteFrame(context.Background(), []byte{1}); err != nil {
			t.Fatal(err)
		}
		srv.waitFrames(t, 1)
		gone := errors.New("peer presumed gone")
		client.Abort(gone)
		client.Abort(errors.New("second")) // the first error wins
		if err := cli.waitClose(t); !errors.Is(err, gone) {
			t.Fatalf("client close error %v, want %v", err, gone)
		}
		<-client.Done()
		if err := srv.waitClose(t); err == nil {
			t.Fatal("the peer saw no end")
		}
		if err := client.WriteFrame(context.Background(), []byte{2}); !errors.Is(err, gone) && !isClosedErr(err) {
			t.Fatalf("write after Abort: %v", err)
		}
	})
}

// A dead link reports one error and nothing after it: the peer vanishing
// fails writes and calls HandleClose once.
func TestPeerCloseReportedOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		srv, cli := newRecorder(), newRecorder()
		client, server := tc.connect(t, Options{}, cli, srv)
		server.fail(errors.New("boom")) // abrupt, as a crash would be
		if err := cli.waitClose(t); err == nil {
			t.Fatal("nil close error")
		}
		<-client.Done()
		if client.Err() == nil {
			t.Fatal("no terminal error")
		}
		if err := client.WriteFrame(context.Background(), []byte{1}); err == nil {
			t.Fatal("write after the link died succeeded")
		}
		if cli.closes != 1 {
			t.Fatalf("HandleClose called %d times", cli.closes)
		}
	})
}

// A stream that ends mid-frame is reported as ErrTruncated, and a header
// over the maximum as ErrFrameTooLarge, on every transport.
func TestBadStreamFromRawPeer(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"eof mid-frame", AppendFrame(nil, make([]byte, 100))[:50], ErrTruncated},
		{"eof mid-header", []byte{0x80}, ErrTruncated},
		{"oversized header", AppendFrame(nil, make([]byte, 6000))[:2], ErrFrameTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, tr := range rawTransports() {
				t.Run(tr.name, func(t *testing.T) {
					srv := newRecorder()
					raw := tr.connectRaw(t, Options{MaxFrameSize: 5000}, srv)
					if _, err := raw.Write(AppendFrame(nil, []byte("ok"))); err != nil {
						t.Fatal(err)
					}
					if _, err := raw.Write(c.bytes); err != nil {
						t.Fatal(err)
					}
					raw.Close()
					if err := srv.waitClose(t); !errors.Is(err, c.want) {
						t.Fatalf("got %v, want %v", err, c.want)
					}
					if srv.count() != 1 {
						t.Fatalf("got %d frames before the bad one, want 1", srv.count())
					}
				})
			}
		})
	}
}

type rawCase struct {
	name string
	// connectRaw gives a raw byte stream to a Conn handled by h.
	connectRaw func(t *testing.T, opts Options, h Handler) io.WriteCloser
}

func rawTransports() []rawCase {
	listen := func(name string, tr func(Options) (Transport, func())) rawCase {
		return rawCase{name: name, connectRaw: func(t *testing.T, opts Options, h Handler) io.WriteCloser {
			tp, stop := tr(opts)
			ln, err := tp.Listen("tcp", "127.0.0.1:0", func(*Conn) Handler { return h })
			if err != nil {
				t.Fatal(err)
			}
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nc.Close(); ln.Close(); stop() })
			return nc
		}}
	}
	return []rawCase{
		{name: "pipe", connectRaw: func(t *testing.T, opts Options, h Handler) io.WriteCloser {
			ab, ba := newPipeBuffer(), newPipeBuffer()
			c := newStreamConn(&pipeEnd{r: ab, w: ba}, h, opts, pipeAddr{}, pipeAddr{})
			raw := &pipeEnd{r: ba, w: ab}
			t.Cleanup(func() { raw.Close(); c.Close() })
			return raw
		}},
		listen("std", func(o Options) (Transport, func()) { return Std{Options: o}, func() {} }),
		listen("gnet", func(o Options) (Transport, func()) {
			g := NewGnet(GnetOptions{Options: o, EventLoops: 1})
			return g, func() { g.Close() }
		}),
	}
}

// inlineEchoer answers every frame from inside HandleFrames with
// QueueFrame, as an event-loop handler must.
type inlineEchoer struct{ *recorder }

func (e inlineEchoer) HandleFrames(c *Conn, frames []Frame) {
	for _, f := range frames {
		for {
			err := c.QueueFrame(f.Body)
			if err != ErrWouldBlock {
				break
			}
			runtimeYield() // test only: the client drains soon
		}
	}
	e.recorder.HandleFrames(c, frames)
}

func TestQueueFrameFromHandler(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		const n = 5000
		cli := newRecorder()
		client, _ := tc.connect(t, Options{}, cli, inlineEchoer{newRecorder()})
		for i := range n {
			if err := client.WriteFrame(context.Background(), binary.LittleEndian.AppendUint32(nil, uint32(i))); err != nil {
				t.Fatal(err)
			}
		}
		got := cli.waitFrames(t, n)
		for i, b := range got {
			if binary.LittleEndian.Uint32(b) != uint32(i) {
				t.Fatalf("frame %d out of order", i)
			}
		}
	})
}

// A maximum frame size under the protocol's floor is raised to it.
func TestMaxFrameSizeFloor(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		client, _ := tc.connect(t, Options{MaxFrameSize: 8}, newRecorder(), newRecorder())
		if got := client.MaxFrameSize(); got != MinMaxFrameSize {
			t.Fatalf("MaxFrameSize 8 gave %d, want the floor %d", got, MinMaxFrameSize)
		}
	})
}

// A peer that resets the connection (it closed with unread bytes or a
// zero linger) ends the link with an error, after the frames that came
// before it; on the std transport the read's own, which says so
// (errors.Is syscall.ECONNRESET). No test reached that read error before.
func TestPeerResetEndsTheLink(t *testing.T) {
	for _, tr := range rawTransports()[1:] { // the sockets: std, gnet
		t.Run(tr.name, func(t *testing.T) {
			srv := newRecorder()
			raw := tr.connectRaw(t, Options{}, srv)
			if _, err := raw.Write(AppendFrame(nil, []byte("ok"))); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "the frame", func() bool { return srv.count() == 1 })
			tc := raw.(*net.TCPConn)
			if err := tc.SetLinger(0); err != nil { // close sends a reset
				t.Fatal(err)
			}
			tc.Close()
			err := srv.waitClose(t)
			if err == nil {
				t.Fatal("a reset link closed without an error")
			}
			if tr.name == "std" && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("got %v, want the reset (ECONNRESET)", err)
			}
		})
	}
}
