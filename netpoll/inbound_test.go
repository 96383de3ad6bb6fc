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
