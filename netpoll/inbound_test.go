package netpoll

import (
	"bytes"
	"testing"
)

// spec:34 a partial frame costs the bytes that arrived, never the length
// its header announces: a 4 MiB header with 2 body bytes holds one default
// chunk, and while the frame arrives the buffer stays within twice what
// arrived (plus one chunk). The frame still comes out whole.
func TestReadBufferGrowsWithArrivedBytes(t *testing.T) {
	const chunkSize, size = 64 << 10, 4 << 20
	in := inbound{chunkSize: chunkSize, maxFrame: size}
	defer in.free()
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	stream := AppendFrame(nil, body)
	header := len(stream) - size

	if err := in.feed(stream[:header+2]); err != nil {
		t.Fatal(err)
	}
	if got := len(in.cur.buf); got > chunkSize {
		t.Fatalf("announced %d bytes, sent 2: buffer is %d bytes, want at most %d", size, got, chunkSize)
	}
	for off := header + 2; off < len(stream); {
		n := min(3000, len(stream)-off)
		if err := in.feed(stream[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		if got, arrived := len(in.cur.buf), off; len(in.batch) == 0 && got > 2*arrived+chunkSize {
			t.Fatalf("%d bytes arrived: buffer is %d bytes", arrived, got)
		}
	}
	if len(in.batch) != 1 || !bytes.Equal(in.batch[0].Body, body) {
		t.Fatalf("got %d frames, first intact: %v", len(in.batch), len(in.batch) == 1 && bytes.Equal(in.batch[0].Body, body))
	}
	in.batch[0].Release()
	in.reset()
}

// A read of many frames is handed over in runs of at most maxBatchFrames,
// in order, none lost: the frame list never grows past a run.
func TestManyFramesDeliveredInRuns(t *testing.T) {
	const frames = 3*maxBatchFrames + 7
	var stream []byte
	for i := range frames {
		stream = AppendFrame(stream, []byte{byte(i)})
	}
	in := inbound{chunkSize: 64 << 10, maxFrame: 1 << 10}
	defer in.free()
	var runs []int
	next := 0
	take := func() {
		runs = append(runs, len(in.batch))
		for _, f := range in.batch {
			if len(f.Body) != 1 || f.Body[0] != byte(next) {
				t.Fatalf("frame %d: got %v", next, f.Body)
			}
			next++
			f.Release()
		}
		in.reset()
	}
	in.full = take
	if err := in.feed(stream); err != nil {
		t.Fatal(err)
	}
	take() // what the read left, as the connection delivers after it
	if next != frames {
		t.Fatalf("%d of %d frames came out", next, frames)
	}
	for _, n := range runs {
		if n > maxBatchFrames {
			t.Fatalf("runs of %v frames, want at most %d each", runs, maxBatchFrames)
		}
	}
	if cap(in.batch) > 2*maxBatchFrames { // append rounds up to a size class
		t.Fatalf("the frame list grew to %d", cap(in.batch))
	}
}

// A read of at most an eighth of the chunk that starts a new run of frames
// (nothing unparsed before it) moves to a chunk of its own size, so that a
// frame held from it pins that, not the default chunk (the std transport's
// reads; see shrink). A larger read stays where it landed, and so does one
// that completes a frame already begun.
func TestSmallReadMovesToItsOwnChunk(t *testing.T) {
	const chunkSize = 64 << 10
	read := func(t *testing.T, in *inbound, p []byte) {
		t.Helper()
		n := copy(in.room(), p)
		if n != len(p) {
			t.Fatalf("room for %d of %d bytes", n, len(p))
		}
		in.shrink(n)
		if err := in.commit(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name      string
		read      int // one frame of this many bytes, header included, in one read
		wantChunk int
	}{
		{"small", 104, 4 << 10},
		{"an eighth of the chunk", chunkSize / 8, 8 << 10},
		{"over an eighth", chunkSize/8 + 1, chunkSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := inbound{chunkSize: chunkSize, maxFrame: 1 << 20}
			defer in.free()
			body := c.read - 1
			for FrameLen(body) > c.read {
				body--
			}
			read(t, &in, AppendFrame(nil, make([]byte, body)))
			if len(in.batch) != 1 {
				t.Fatalf("%d frames cut, want 1", len(in.batch))
			}
			if got := len(in.batch[0].chunk.buf); got != c.wantChunk {
				t.Fatalf("a read of %d bytes: its frame is held in a chunk of %d bytes, want %d", c.read, got, c.wantChunk)
			}
			in.batch[0].Release()
			in.reset()
		})
	}
	t.Run("completing a frame begun", func(t *testing.T) {
		in := inbound{chunkSize: chunkSize, maxFrame: 1 << 20}
		defer in.free()
		frame := AppendFrame(nil, make([]byte, 100))
		read(t, &in, frame[:3])
		begun := in.cur
		read(t, &in, frame[3:])
		if len(in.batch) != 1 || in.batch[0].chunk != begun {
			t.Fatalf("%d frames; the rest of a frame begun moved to another chunk", len(in.batch))
		}
		in.batch[0].Release()
		in.reset()
	})
}
