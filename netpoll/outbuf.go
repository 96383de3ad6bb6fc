package netpoll

import (
	"math/bits"
	"sync"
	"unsafe"
)

// outBufPools caches the outbound buffers of every connection, one
// sync.Pool per power-of-two size class (chunkClass's: 4 KiB and up). A
// connection takes one when a batch of frames starts and gives it back
// when the batch is written and nothing more waits, so an idle connection
// holds no outbound buffer, whatever it sent before (as gRPC-Go's shared
// write buffer). An entry is the first byte of a buffer of exactly its
// class's size: a pointer, so Put allocates nothing.
var outBufPools [chunkClasses]sync.Pool

// getOutBuf returns an empty buffer of at least n bytes, from its class's
// pool when one is there. Over maxPooledChunk (a batch of one large frame)
// it is made to n in largeChunkStep steps and not pooled, as a large read
// chunk is: a power of two could nearly double it.
func getOutBuf(n int) []byte {
	if n > maxPooledChunk {
		return make([]byte, 0, (n+largeChunkStep-1)/largeChunkStep*largeChunkStep)
	}
	class := chunkClass(n)
	size := 1 << (class + minChunkShift)
	if p, _ := outBufPools[class].Get().(*byte); p != nil {
		return unsafe.Slice(p, size)[:0]
	}
	return make([]byte, 0, size)
}

// putOutBuf gives b's array to the pool of its class if its capacity is
// exactly a class size (any array of that size will do, whoever made it);
// other arrays (nil among them) are left to the collector. The caller must
// hold the only reference to the array.
func putOutBuf(b []byte) {
	c := cap(b)
	if c < 1<<minChunkShift || bits.OnesCount(uint(c)) != 1 || c > maxPooledChunk {
		return
	}
	outBufPools[chunkClass(c)].Put(unsafe.SliceData(b[:1]))
}
