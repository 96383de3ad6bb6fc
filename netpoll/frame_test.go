package netpoll

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// frameStream encodes bodies back to back.
func frameStream(bodies [][]byte) []byte {
	var b []byte
	for _, body := range bodies {
		b = AppendFrame(b, body)
	}
	return b
}

func testBodies(max int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := [][]byte{{}, {1}, bytes.Repeat([]byte{7}, 127), bytes.Repeat([]byte{8}, 128), make([]byte, max), {}}
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.IntN(9000))
		for j := range b {
			b[j] = byte(i + j)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// cut runs a stream through an inbound whose reads are split by next, which
// returns how many bytes the next read gets. It checks that what comes out
// is exactly what went in.
func cut(t *testing.T, stream []byte, want [][]byte, chunkSize, max int, next func() int, useFeed bool) {
	t.Helper()
	in := inbound{chunkSize: chunkSize, maxFrame: max}
	var got [][]byte
	collect := func() {
		for _, f := range in.batch {
			got = append(got, append([]byte{}, f.Body...))
			f.Release()
		}
		in.reset()
	}
	for len(stream) > 0 {
		n := min(next(), len(stream))
		if useFeed {
			if err := in.feed(stream[:n]); err != nil {
				t.Fatal(err)
			}
			stream = stream[n:]
		} else {
			room := in.room()
			n = copy(room[:min(n, len(room))], stream)
			stream = stream[n:]
			if err := in.commit(n); err != nil {
				t.Fatal(err)
			}
		}
		collect()
	}
	if in.partial() {
		t.Fatal("bytes left over after a whole stream")
	}
	in.free()
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs (len %d vs %d)", i, len(got[i]), len(want[i]))
		}
	}
}

// spec:1 frames survive any split of the byte stream, in order, with no loss
// or duplication; empty payloads and bodies of exactly the maximum pass.
func TestFramesSurviveAnySplit(t *testing.T) {
	const max = 20000
	bodies := testBodies(max)
	stream := frameStream(bodies)
	rng := rand.New(rand.NewPCG(3, 4))
	splits := map[string]func() int{
		"one byte":    func() int { return 1 },
		"seven":       func() int { return 7 },
		"random":      func() int { return 1 + rng.IntN(5000) },
		"all at once": func() int { return len(stream) },
	}
	for name, next := range splits {
		for _, feed := range []bool{false, true} {
			for _, chunk := range []int{4096, 64 << 10} {
				cut(t, stream, bodies, chunk, max, next, feed)
			}
		}
		_ = name
	}
}

func TestManyFramesInOneRead(t *testing.T) {
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = []byte{byte(i), byte(i >> 8)}
	}
	stream := frameStream(bodies)
	in := inbound{chunkSize: 64 << 10, maxFrame: 100}
	if err := in.feed(stream); err != nil {
		t.Fatal(err)
	}
	if len(in.batch) != 1000 {
		t.Fatalf("one read of 1000 frames gave a batch of %d", len(in.batch))
	}
	for _, f := range in.batch {
		f.Release()
	}
	in.reset()
	in.free()
}

// spec:1 a header announcing more than the maximum is refused from the
// header alone, before the body arrives.
func TestOversizedHeaderRefused(t *testing.T) {
	hdr := AppendFrame(nil, make([]byte, 101))[:2] // header only
	_, _, ok, err := ParseFrame(hdr, 100)
	var fe *FrameError
	if ok || !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &fe) || fe.Size != 101 || fe.Limit != 100 {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	// At the maximum it is fine, once the body is there.
	full := AppendFrame(nil, make([]byte, 100))
	if _, _, ok, err := ParseFrame(full[:50], 100); ok || err != nil {
		t.Fatalf("partial: ok=%v err=%v", ok, err)
	}
	if _, body, ok, err := ParseFrame(full, 100); !ok || err != nil || len(body) != 100 {
		t.Fatalf("full: ok=%v err=%v", ok, err)
	}
	// A header that never ends is malformed, not "need more".
	if _, _, _, err := ParseFrame([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 100); !errors.Is(err, ErrMalformedHeader) {
		t.Fatalf("endless header: %v", err)
	}
	in := inbound{chunkSize: 4096, maxFrame: 100}
	if err := in.feed(hdr); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("inbound: %v", err)
	}
	in.free()
}

func FuzzParseFrame(f *testing.F) {
	f.Add(frameStream(testBodies(300)[:8]), 300)
	f.Add([]byte{0x80}, 10)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1<<20)
	f.Fuzz(func(t *testing.T, buf []byte, max int) {
		if max < 0 || max > MaxFrameSizeLimit {
			return
		}
		var bodies [][]byte
		rest := buf
		for {
			r, body, ok, err := ParseFrame(rest, max)
			if err != nil || !ok {
				break
			}
			if len(body) > max {
				t.Fatalf("body of %d over max %d", len(body), max)
			}
			bodies = append(bodies, body)
			rest = r
		}
		// Re-encoding what was cut gives back the bytes it was cut from
		// when the headers were minimal; in any case it must cut again
		// to the same bodies.
		again := frameStream(bodies)
		for i := 0; len(again) > 0; i++ {
			r, body, ok, err := ParseFrame(again, max)
			if err != nil || !ok || !bytes.Equal(body, bodies[i]) {
				t.Fatalf("re-cut frame %d: ok=%v err=%v", i, ok, err)
			}
			again = r
		}
		// The same bytes fed through the chunked reader in two pieces
		// give the same frames.
		in := inbound{chunkSize: 4096, maxFrame: max}
		defer in.free()
		half := len(buf) / 2
		n := 0
		for _, part := range [][]byte{buf[:half], buf[half:]} {
			if err := in.feed(part); err != nil {
				return
			}
			for _, f := range in.batch {
				if n >= len(bodies) || !bytes.Equal(f.Body, bodies[n]) {
					t.Fatalf("chunked frame %d differs", n)
				}
				n++
				f.Release()
			}
			in.reset()
		}
	})
}

// FrameLen is the length AppendFrame writes, on both sides of every
// length-prefix step.
func TestFrameLenMatchesAppendFrame(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 1<<21 - 1, 1 << 21} {
		if got, want := FrameLen(n), len(AppendFrame(nil, make([]byte, n))); got != want {
			t.Fatalf("FrameLen(%d) = %d, AppendFrame wrote %d", n, got, want)
		}
	}
}
