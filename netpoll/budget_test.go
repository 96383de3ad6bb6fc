package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

// holder keeps every frame it is given, unreleased, until let go.
type holder struct {
	mu     sync.Mutex
	frames []Frame
	next   uint32 // the sequence number the next frame must carry
	err    string
}

func (h *holder) HandleFrames(_ *Conn, frames []Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range frames {
		if got := binary.BigEndian.Uint32(f.Body); got != h.next && h.err == "" {
			h.err = "frames out of order"
		}
		h.next++
		h.frames = append(h.frames, f)
	}
}

func (h *holder) HandleClose(*Conn, error) {}

func (h *holder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int(h.next)
}

// releaseOne lets the oldest frame held go and returns the bytes that
// release gave back to the read budget (its chunk, if it was the chunk's
// last frame held); false if none is held. The count is exact only while
// nothing else cuts or releases frames of that chunk: while reading is
// paused, with the holder the only one releasing.
func (h *holder) releaseOne() (freed int64, ok bool) {
	h.mu.Lock()
	if len(h.frames) == 0 {
		h.mu.Unlock()
		return 0, false
	}
	f := h.frames[0]
	h.frames = h.frames[1:]
	h.mu.Unlock()
	if f.acct != nil && f.chunk.heldFrames() == 1 {
		freed = int64(len(f.chunk.buf))
	}
	f.Release()
	return freed, true
}

// releaseAll lets every frame held so far go.
func (h *holder) releaseAll() {
	h.mu.Lock()
	frames := h.frames
	h.frames = nil
	h.mu.Unlock()
	for _, f := range frames {
		f.Release()
	}
}

// spec:34 a peer cannot make a connection hold more than its read budget:
// once the frames its handler holds pass MaxHeld, the connection stops
// reading (the sender's writes wait, nothing fails), and when the handler
// releases them reading resumes where it stopped, nothing lost or
// reordered.
func TestReadBudgetPausesReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		// 64 MiB sent against 256 KiB: more than the kernel buffers of both
		// sockets hold, so the sender has to wait.
		const budget, frame, frames = 256 << 10, 16 << 10, 4096
		h, back := &holder{}, newRecorder()
		client, server := tc.connect(t, Options{MaxHeld: budget, MaxOutbound: 64 << 10}, back, h)
		sent := make(chan error, 1)
		go func() {
			body := make([]byte, frame)
			for i := range frames {
				binary.BigEndian.PutUint32(body, uint32(i))
				if err := client.WriteFrame(context.Background(), body); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		testwait.For(t, "reading to pause", server.Paused)
		testwait.Blocked(t, "netpoll.(*outbound).write", 1) // the sender waits: nothing is read
		got := h.count()
		// What is held is the budget plus at most one read's worth: the
		// chunks it filled (charged whole) and the one it started in.
		if held := server.Held(); held > budget+2*(64<<10)+int64(FrameLen(frame)) || held < budget {
			t.Fatalf("paused holding %d bytes with a budget of %d", held, budget)
		}
		if h.count() != got || got >= frames {
			t.Fatalf("frames still arrive while paused: %d, then %d", got, h.count())
		}
		// Hysteresis: reading stays paused until half the budget is free.
		testwait.For(t, "the pause to complete", func() bool { return server.rstate.Load() == readPaused })
		// Held falls by a chunk when the last frame of one goes. It is
		// tracked here rather than read after each release: the release
		// that crosses half the budget resumes reading, and the reader may
		// charge a fresh chunk before Held could be read.
		held := server.Held() // stable: reading is paused, only we release
		for held > budget/2 {
			freed, ok := h.releaseOne()
			if !ok {
				t.Fatalf("%d bytes held with no frame left to release", held)
			}
			if held -= freed; held <= budget/2 {
				break // this release may resume reading
			}
			if st := server.rstate.Load(); st != readPaused {
				t.Fatalf("reading resumed (state %d) with %d bytes still held", st, held)
			}
			if got := server.Held(); got != held {
				t.Fatalf("held %d bytes while paused, want %d", got, held)
			}
		}
		// Half the budget is free: reading resumes with no further release.
		testwait.For(t, "frames after the resume", func() bool { return h.count() > got })
		for h.count() < frames { // let go as they come: reading resumes each time
			h.releaseAll()
			testwait.For(t, "more frames, or the end", func() bool { return h.count() > got || h.count() == frames })
			got = h.count()
		}
		h.releaseAll()
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if h.err != "" {
			t.Fatal(h.err)
		}
		testwait.For(t, "nothing held", func() bool { return server.Held() == 0 && !server.Paused() })
		// The connection still works the other way too.
		if err := server.WriteFrame(context.Background(), bytes.Repeat([]byte{1}, 8)); err != nil {
			t.Fatal(err)
		}
		back.waitFrames(t, 1)
	})
}

// Closing the gnet transport ends its dialled connections, also one whose
// reading is paused by its read budget (off the event loop, so stopping
// the engine alone would not reach it).
func TestGnetCloseEndsPausedConn(t *testing.T) {
	client, h, g := pausedGnetClient(t)
	g.Close()
	testwait.Recv(t, "the paused connection to end with its transport", client.Done())
	h.releaseAll()
}

// picky holds the frames whose body starts with 'K' and releases the rest
// at once.
type picky struct{ keeper }

func (p *picky) HandleFrames(c *Conn, frames []Frame) {
	for _, f := range frames {
		if len(f.Body) > 0 && f.Body[0] == 'K' {
			p.keeper.HandleFrames(c, []Frame{f})
		} else {
			f.Release()
		}
	}
}

// spec:34 the read budget counts what held frames pin, not what they
// carry: a held frame keeps its whole read chunk alive, so a peer that
// sends each small frame the handler holds beside a large one it releases
// (one 64 KiB chunk pinned per 10-byte frame) is stopped by the budget
// after a budget's worth of chunks, not a budget's worth of 10-byte
// bodies (6,500 chunks, 400 MiB, for a 64 KiB budget).
func TestReadBudgetCountsPinnedChunks(t *testing.T) {
	const budget = 256 << 10
	eachStdAndGnet(t, Options{}, func(t *testing.T, tr Transport) {
		h := &picky{}
		defer h.release()
		conns := make(chan *Conn, 1)
		ln := listenFor(t, tr, func(c *Conn) Handler {
			c.SetReadBudget(budget)
			conns <- c
			return h
		})
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		server := <-conns
		pair := AppendFrame(AppendFrame(nil, []byte("Kkeep this")), make([]byte, 60<<10))
		go func() {
			for range 400 { // 24 MiB: far past the budget and the kernel's buffers
				if _, err := nc.Write(pair); err != nil {
					return
				}
			}
		}()
		testwait.For(t, "reading to pause", server.Paused)
		kept := h.n.Load()
		if held := server.Held(); held < budget || held > budget+2*(64<<10) {
			t.Fatalf("paused holding %d bytes (%d frames kept) with a budget of %d", held, kept, budget)
		}
		if kept > budget/(32<<10) {
			t.Fatalf("%d frames kept, each pinning a chunk, with a budget of %d", kept, budget)
		}
		h.release() // reading resumes, and sees the end when the peer closes
	})
}
