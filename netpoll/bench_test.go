package netpoll

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// benchClient counts echoed frames and frees a window slot for each.
type benchClient struct {
	window chan struct{}
	got    atomic.Int64
	want   atomic.Int64 // 0 while warming up
	done   chan struct{}
}

func (h *benchClient) HandleFrames(c *Conn, frames []Frame) {
	for _, f := range frames {
		f.Release()
		<-h.window
	}
	if got := h.got.Add(int64(len(frames))); got == h.want.Load() {
		close(h.done)
	}
}

func (h *benchClient) HandleClose(*Conn, error) {}

// benchEchoServer echoes inline, from the reading goroutine (the event loop
// on gnet), as a non-blocking handler does.
type benchEchoServer struct{}

func (benchEchoServer) HandleFrames(c *Conn, frames []Frame) {
	for _, f := range frames {
		for c.QueueFrame(f.Body) == ErrWouldBlock {
			time.Sleep(10 * time.Microsecond)
		}
		f.Release()
	}
}

func (benchEchoServer) HandleClose(*Conn, error) {}

// BenchmarkEcho: framed echo over each transport, with 1 and 64 frames in
// flight. One op is one round trip. Metrics: frames/s (round trips),
// writes per frame on each side (write syscalls / frames), allocs/op for
// both sides together (one process).
func BenchmarkEcho(b *testing.B) {
	for _, tc := range transports() {
		if tc.name == "std-unix" || tc.name == "gnet-unix" {
			continue
		}
		for _, size := range []int{64, 4096} {
			for _, inflight := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/%dB/inflight=%d", tc.name, size, inflight), func(b *testing.B) {
					benchEcho(b, tc, size, inflight)
				})
			}
		}
	}
}

func benchEcho(b *testing.B, tc transportCase, size, inflight int) {
	h := &benchClient{window: make(chan struct{}, inflight), done: make(chan struct{})}
	client, server := tc.connect(b, Options{}, h, benchEchoServer{})
	payload := make([]byte, size)
	ctx := context.Background()
	// Warm the pools and the connection outside the timed part.
	for range inflight {
		h.window <- struct{}{}
		if err := client.WriteFrame(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	for h.got.Load() < int64(inflight) {
		time.Sleep(time.Millisecond)
	}
	h.got.Store(0)
	h.want.Store(int64(b.N))
	c0, s0 := client.Stats(), server.Stats()

	b.ReportAllocs()
	b.SetBytes(int64(2 * size))
	b.ResetTimer()
	start := time.Now()
	// inflight senders, as inflight concurrent callers would be; the
	// window keeps at most inflight frames unanswered.
	var sent atomic.Int64
	for range inflight {
		go func() {
			for sent.Add(1) <= int64(b.N) {
				h.window <- struct{}{}
				if err := client.WriteFrame(ctx, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	<-h.done
	elapsed := time.Since(start)
	b.StopTimer()

	c1, s1 := client.Stats(), server.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(c1.Writes-c0.Writes)/float64(b.N), "cwrites/frame")
	b.ReportMetric(float64(s1.Writes-s0.Writes)/float64(b.N), "swrites/frame")
}
