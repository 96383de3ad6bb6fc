package netpoll

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// chunk is a pooled read buffer shared by the frames cut from it.
//
// refs is one word for both of its counts, so that a frame costs one
// atomic add to cut (and that one shared by every frame of a read) and one
// to release, on a line the reader and the frames' holders otherwise pass
// back and forth twice as often:
//   - readerRef while the chunk is its reader's current one;
//   - plus one per frame cut from it and not yet released, and one per
//     Retain (refs & frameRefs). While that part is above zero the whole
//     chunk is charged to the frames' connection's read budget (see
//     Frame.Release).
//
// The chunk goes back to its pool when refs reaches zero.
type chunk struct {
	buf   []byte
	refs  atomic.Int64
	class int8
}

// readerRef is the reader's share of refs; frameRefs masks the frames'.
// A chunk holds at most 2 GiB, so frames and retains stay far below it.
const (
	readerRef = 1 << 40
	frameRefs = readerRef - 1
)

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

// getChunk returns a chunk of at least size bytes held by its reader (the
// caller) alone.
func getChunk(size int) *chunk {
	if size > maxPooledChunk {
		c := &chunk{buf: make([]byte, (size+largeChunkStep-1)/largeChunkStep*largeChunkStep), class: -1}
		c.refs.Store(readerRef)
		return c
	}
	class := chunkClass(size)
	if v := chunkPools[class].Get(); v != nil {
		c := v.(*chunk)
		c.refs.Store(readerRef)
		return c
	}
	c := &chunk{buf: make([]byte, 1<<(class+minChunkShift)), class: int8(class)}
	c.refs.Store(readerRef)
	return c
}

// addFrames takes the references of k frames just cut from c, before any
// of them is handed over, and reports whether they are the only frames of
// c held: the chunk is then charged to the read budget anew.
func (c *chunk) addFrames(k int) (first bool) {
	return c.refs.Add(int64(k))&frameRefs == int64(k)
}

// readerOnly reports whether only the reader holds c: no frame of it is
// held, so nobody can be looking at its bytes.
func (c *chunk) readerOnly() bool { return c.refs.Load() == readerRef }

// heldFrames returns how many frames of c (and retains) are held.
func (c *chunk) heldFrames() int64 { return c.refs.Load() & frameRefs }

// dropReader gives the reader's share back: the chunk is no longer its
// current one.
func (c *chunk) dropReader() {
	switch n := c.refs.Add(-readerRef); {
	case n == 0:
		c.put()
	case n < 0:
		panic("netpoll: read chunk dropped twice by its reader")
	}
}

func (c *chunk) put() {
	if c.class >= 0 {
		chunkPools[c.class].Put(c)
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
	n := f.chunk.refs.Add(-1)
	switch n & frameRefs {
	case frameRefs: // the frames' part went below zero
		panic("netpoll: Frame released more times than retained")
	case 0:
		// The last frame held: the chunk leaves the budget. Its reader may
		// already be cutting frames from it again and charging it anew;
		// the budget's count is a sum, and a pause that the two crossing
		// caused is ended by this unhold (budget's states).
		if f.acct != nil {
			f.acct.unhold(len(f.chunk.buf))
		}
		if n == 0 {
			f.chunk.put()
		}
	}
}

// Retain takes one more reference to the frame's bytes and returns the
// frame; each Retain is balanced by one more Release. The chunk stays
// charged to the read budget until the last of them.
func (f Frame) Retain() Frame {
	if f.chunk != nil {
		f.chunk.refs.Add(1)
	}
	return f
}
