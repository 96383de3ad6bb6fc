package netpoll

import "testing"

// Buffers come in power-of-two classes up to maxPooledChunk; a larger one
// (one large frame, read or written) is sized to it in largeChunkStep
// steps, so a frame just over a power of two does not cost nearly twice
// its size.
func TestBufferSizes(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{1, 4 << 10},
		{4<<10 + 1, 8 << 10},
		{maxPooledChunk, maxPooledChunk},
		{maxPooledChunk + 5, maxPooledChunk + largeChunkStep},
		{3<<20 + 1, 3<<20 + largeChunkStep},
	} {
		if got := cap(getOutBuf(c.n)); got != c.want {
			t.Errorf("outbound buffer for %d bytes: %d, want %d", c.n, got, c.want)
		}
		ch := getChunk(c.n)
		if got := len(ch.buf); got != c.want {
			t.Errorf("read chunk for %d bytes: %d, want %d", c.n, got, c.want)
		}
		ch.dropReader()
	}
}
