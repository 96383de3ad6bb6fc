package netpoll

import (
	"testing"
)

// mustPanic runs f and fails unless it panics.
func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// A chunk's one word keeps the reader's share and the frames' apart: the
// frames' count says when the chunk is charged to the budget (the first
// frame cut, the last one released, whether or not the reader still holds
// it), and a release too many is caught on either side of the reader's
// share, not taken from it.
func TestChunkCountsReaderAndFrames(t *testing.T) {
	var budget Conn
	c := getChunk(4 << 10)
	if !c.readerOnly() || c.heldFrames() != 0 {
		t.Fatalf("a fresh chunk: reader only %v, frames %d", c.readerOnly(), c.heldFrames())
	}
	if !c.addFrames(3) {
		t.Fatal("the first frames cut were not reported first")
	}
	budget.hold(len(c.buf))
	if c.addFrames(2) {
		t.Fatal("frames cut while others are held were reported first")
	}
	f := Frame{Body: c.buf[:1], chunk: c, acct: &budget}
	f.Retain()
	if got := c.heldFrames(); got != 6 {
		t.Fatalf("held frames %d, want 6", got)
	}
	for range 5 {
		f.Release()
	}
	if c.readerOnly() || budget.Held() != int64(len(c.buf)) {
		t.Fatalf("with one frame held: reader only %v, budget %d", c.readerOnly(), budget.Held())
	}
	f.Release() // the last frame: the chunk leaves the budget, the reader keeps it
	if !c.readerOnly() || budget.Held() != 0 {
		t.Fatalf("after the last frame: reader only %v, budget %d", c.readerOnly(), budget.Held())
	}
	mustPanic(t, "a release too many while the reader holds the chunk", f.Release)

	c = getChunk(maxPooledChunk + 1) // not pooled: the releases too many below touch no pooled chunk
	c.addFrames(1)
	f = Frame{Body: c.buf[:1], chunk: c}
	c.dropReader()
	if c.heldFrames() != 1 {
		t.Fatalf("after the reader let go: frames %d, want 1", c.heldFrames())
	}
	f.Release()
	mustPanic(t, "a release too many after the reader let go", f.Release)
	mustPanic(t, "the reader letting go twice", c.dropReader)
}

// A chunk (and a write batch's buffer) fits what it must hold: a pooled one the power of two of its
// class, up to maxPooledChunk; a larger one the size rounded up to the
// next largeChunkStep, so that a large frame pins (and is charged) little
// more than its own size, and is left to the collector, not pooled.
func TestChunkSizes(t *testing.T) {
	for _, c := range []struct {
		size, want int
		pooled     bool
	}{
		{1, 1 << minChunkShift, true},
		{1<<minChunkShift + 1, 2 << minChunkShift, true},
		{maxPooledChunk, maxPooledChunk, true},
		{maxPooledChunk + 1, maxPooledChunk + largeChunkStep, false},
		{3 * maxPooledChunk, 3 * maxPooledChunk, false},
		{3*maxPooledChunk + largeChunkStep - 1, 3*maxPooledChunk + largeChunkStep, false},
	} {
		ch := getChunk(c.size)
		if len(ch.buf) != c.want || (ch.class >= 0) != c.pooled || !ch.readerOnly() {
			t.Errorf("getChunk(%d): %d bytes, class %d, reader only %v; want %d bytes, pooled %v",
				c.size, len(ch.buf), ch.class, ch.readerOnly(), c.want, c.pooled)
		}
		// A write batch's buffer is sized the same way.
		if b := getOutBuf(c.size); len(b) != 0 || cap(b) != c.want {
			t.Errorf("getOutBuf(%d): len %d, cap %d; want 0, %d", c.size, len(b), cap(b), c.want)
		}
	}
}
