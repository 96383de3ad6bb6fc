package netpoll

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
	"github.com/rove-rpc/rove/internal/testwait"
)

// heapInUse is the live heap after collecting twice (the second empties
// the pools' victim caches, so pooled chunks do not count).
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// heapSettles waits for the heap grown since before, per each of n
// connections, to come down to limit; it returns the last figure and
// whether it did.
func heapSettles(before int64, n int, limit int64) (int64, bool) {
	var per int64
	ok := testwait.Until(func() bool { per = (heapInUse() - before) / int64(n); return per <= limit })
	return per, ok
}

// An idle connection on the standard-library transport holds no read
// chunk on either side: over a socket its read goroutine waits for the
// socket to become readable without a buffer; over TLS it waits in a
// small Read (it used to block in Read on a 64 KiB chunk, which a server
// with many idle clients paid per connection). Over TLS most of what is
// left is crypto/tls's own record buffers.
func TestStdIdleConnHoldsNoReadChunk(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	tlsTr, _ := tlsTransport(Options{})
	for _, tc := range []struct {
		name  string
		tr    Transport
		limit int64 // bytes of heap per idle connection, both ends
	}{
		{"std", Std{}, 8 << 10},
		{"tls", tlsTr, 24 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := idleConnHeap(t, tc.tr, tc.limit)
			t.Logf("an idle connection costs %d bytes of heap (both ends)", per)
		})
	}
}

// idleConnHeap opens connections on tr, sends a frame on each, and waits
// for the heap per connection to come down to limit, which it never does
// while each reader holds a chunk; it fails the test if it does not.
func idleConnHeap(t *testing.T, tr Transport, limit int64) int64 {
	srv := &frameCounter{}
	ln := listenFor(t, tr, func(*Conn) Handler { return srv })
	var conns []*Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() {
		c, err := tr.Dial(context.Background(), "tcp", ln.Addr().String(), newRecorder())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := c.WriteFrame(context.Background(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	dial() // warms the pools
	testwait.For(t, "the first frame", func() bool { return srv.n.Load() == 1 })
	before := heapInUse()
	const n = 50
	for range n {
		dial()
	}
	testwait.For(t, "every frame", func() bool { return srv.n.Load() == n+1 })
	per, ok := heapSettles(before, n, limit)
	if !ok {
		t.Fatalf("an idle connection costs %d bytes of heap (both ends), want at most %d", per, limit)
	}
	return per
}

// A connection that sent one large frame keeps no buffer of its size once
// its outbound buffer is empty: an idle connection costs the same after a
// burst as before (a peer could otherwise make each connection pin its
// largest response for as long as it stays open).
func TestIdleConnKeepsNoLargeWriteBuffer(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	eachStdAndGnet(t, Options{}, func(t *testing.T, tr Transport) {
		srv := &frameCounter{}
		ln := listenFor(t, tr, func(*Conn) Handler { return srv })
		const n, size = 20, 256 << 10
		big := make([]byte, size)
		var conns []*Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		before := heapInUse()
		for range n {
			c, err := tr.Dial(context.Background(), "tcp", ln.Addr().String(), newRecorder())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if err := c.WriteFrame(context.Background(), big); err != nil {
				t.Fatal(err)
			}
		}
		testwait.For(t, "every frame", func() bool { return srv.n.Load() == n })
		const limit = 32 << 10 // both ends of a connection
		if per, ok := heapSettles(before, n, limit); !ok {
			t.Fatalf("a connection that sent a %d byte frame holds %d bytes of heap (both ends) once idle, want at most %d", size, per, limit)
		}
	})
}

// A connection that received a read of many small frames keeps no frame
// list of that length once idle: a peer that sends tens of thousands of
// empty frames in one burst must not make the connection pin a list of
// them for as long as it stays open.
func TestIdleConnKeepsNoLongFrameBatch(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	eachStdAndGnet(t, Options{}, func(t *testing.T, tr Transport) {
		srv := &frameCounter{}
		ln := listenFor(t, tr, func(*Conn) Handler { return srv })
		const n, frames = 10, 30000
		burst := make([]byte, frames) // one byte per empty frame
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		before := heapInUse()
		for range n {
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, nc)
			if _, err := nc.Write(burst); err != nil {
				t.Fatal(err)
			}
		}
		testwait.For(t, "every frame", func() bool { return srv.n.Load() == n*frames })
		const limit = 16 << 10
		if per, ok := heapSettles(before, n, limit); !ok {
			t.Fatalf("a connection that received %d frames in a burst holds %d bytes of heap once idle, want at most %d", frames, per, limit)
		}
	})
}

// keeper is a Handler that keeps every frame it gets until the test
// releases them: a handler that is slow to answer.
type keeper struct {
	mu     sync.Mutex
	frames []Frame
	n      atomic.Int64
}

func (k *keeper) HandleFrames(_ *Conn, frames []Frame) {
	k.mu.Lock()
	k.frames = append(k.frames, frames...)
	k.mu.Unlock()
	k.n.Add(int64(len(frames)))
}

func (k *keeper) HandleClose(*Conn, error) {}

func (k *keeper) release() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range k.frames {
		f.Release()
	}
	k.frames = nil
}

// A small frame that arrives alone and is held (a request whose handler
// waits, an item nobody has taken yet) pins a buffer of about its read's
// size, not a whole read chunk: a server holding many slow requests, each
// of which came in a read of its own, must not keep 64 KiB for each.
func TestHeldSmallFramePinsLittle(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	eachStdAndGnet(t, Options{}, func(t *testing.T, tr Transport) {
		k := &keeper{}
		defer k.release()
		ln := listenFor(t, tr, func(*Conn) Handler { return k })
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		frame := AppendFrame(nil, make([]byte, 100))
		before := heapInUse()
		const n = 50
		for i := range n { // one frame per read: each waits for the last to arrive
			if _, err := nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			testwait.For(t, "the frame", func() bool { return k.n.Load() == int64(i+1) })
		}
		const limit = 8 << 10
		if per, ok := heapSettles(before, n, limit); !ok {
			t.Fatalf("a held 100-byte frame that came alone pins %d bytes, want at most %d", per, limit)
		}
	})
}
