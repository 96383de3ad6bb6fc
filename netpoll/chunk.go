package netpoll

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// chunk is a pooled read buffer shared by the frames cut from it. refs
// counts the reader (while the chunk is its current one) plus every frame not
// yet released; the chunk goes back to its pool when refs reaches zero.
type chunk struct {
	buf  []byte
	refs atomic.Int32
	// frames counts the frames cut from the chunk for a connection with a
	// read budget and not yet released: while it is above zero the whole
	// chunk is charged to that budget (see Frame.Release).
	frames atomic.Int32
	class  int8
}

// Chunk size classes are powers of two from minChunkShift up; a frame
// larger than the default chunk gets a chunk of its own class.
const (
	minChunkShift = 12 // 4 KiB
	maxChunkShift = 31 // 2 GiB, above MaxFrameSizeLimit + header
	chunkClasses  = maxChunkShift - minChunkShift + 1
)

// chunkPools is the process-wide cache of read chunks, one sync.Pool per size
// class. It holds no state beyond a cache: a chunk from it is always reset.
var chunkPools [chunkClasses]sync.Pool

func chunkClass(size int) int {
	if size <= 1<<minChunkShift {
		return 0
	}
	return bits.Len(uint(size-1)) - minChunkShift
}

// maxPooledChunk is the largest chunk kept in a pool. A larger one holds
// one large frame: it is made to the frame's size (rounded up to
// largeChunkStep, not to a power of two, which could nearly double what
// the frame pins and is charged) and left to the collector when released.
const (
	maxPooledChunk = 1 << 20
	largeChunkStep = 64 << 10
)

// getChunk returns a chunk of at least size bytes with one reference (the
// caller's).
func getChunk(size int) *chunk {
	if size > maxPooledChunk {
		c := &chunk{buf: make([]byte, (size+largeChunkStep-1)/largeChunkStep*largeChunkStep), class: -1}
		c.refs.Store(1)
		return c
	}
	class := chunkClass(size)
	if v := chunkPools[class].Get(); v != nil {
		c := v.(*chunk)
		c.refs.Store(1)
		return c
	}
	c := &chunk{buf: make([]byte, 1<<(class+minChunkShift)), class: int8(class)}
	c.refs.Store(1)
	return c
}

func (c *chunk) retain() { c.refs.Add(1) }

func (c *chunk) release() {
	switch n := c.refs.Add(-1); {
	case n == 0:
		if c.class >= 0 {
			chunkPools[c.class].Put(c)
		}
	case n < 0:
		panic("netpoll: Frame released more times than retained")
	}
}

// Frame is one inbound frame body: a view into a pooled chunk. It stays
// valid until Release; after that its bytes may be overwritten by a later
// read. A Frame is a small value: copies share the same reference, so
// exactly one Release is owed per Frame handed to HandleFrames plus one per
// Retain. Release and Retain are safe from any goroutine.
type Frame struct {
	// Body is the frame body, without the length prefix.
	Body  []byte
	chunk *chunk
	acct  *Conn // the connection whose read budget the chunk is charged to while frames of it are held; nil without one
}

// Release gives the frame's bytes back. The Frame must not be used after.
//
// The read budget is charged by chunk, not by body: a held frame keeps its
// whole chunk alive, so a chunk costs its size from the first frame cut
// from it to the last one released, however few bytes those frames carry
// (a peer that makes each held frame keep a chunk of its own pays for the
// chunks).
func (f Frame) Release() {
	if f.chunk == nil {
		return
	}
	if f.acct != nil && f.chunk.frames.Add(-1) == 0 {
		f.acct.unhold(len(f.chunk.buf)) // before the chunk may be reused
	}
	f.chunk.release()
}

// Retain takes one more reference to the frame's bytes and returns the
// frame; each Retain is balanced by one more Release. The chunk stays
// charged to the read budget until the last of them.
func (f Frame) Retain() Frame {
	if f.chunk != nil {
		f.chunk.retain()
		if f.acct != nil {
			f.chunk.frames.Add(1)
		}
	}
	return f
}
