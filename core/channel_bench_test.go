package core

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
)

var mStream = NewMethod("bench", "stream")

// streamRouter streams n raw 64 B items on the request's channel 0.
func streamRouter() *Router {
	r := NewRouter()
	r.Handle(mStream, func(ctx context.Context, req *Request) error {
		n, _ := strconv.Atoi(string(req.Payload()))
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		item := make([]byte, 64)
		for range n {
			if err := tx.Send(ctx, item); err != nil {
				return err
			}
		}
		tx.Close()
		return req.Reply(nil, nil)
	})
	return r
}

// streamItems has the stream method send n items on a channel of the given
// window, and receives and releases them all.
func streamItems(tb testing.TB, cl *Caller, window, n int) {
	rx := cl.Conn().NewRx(window)
	done := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), cl, mStream, strconv.AppendInt(nil, int64(n), 10), &CallOptions{Channels: []Channel{rx}})
		done <- err
	}()
	for range n {
		it, err := rx.Recv(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		it.Release()
	}
	rx.Close()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkChannel: one channel streaming 64 B raw items callee to
// caller. One op is one item. Metrics: allocs/op for both sides together,
// and GrantCredit frames per item sent back by the receiver.
func BenchmarkChannel(b *testing.B) {
	for _, tr := range transports() {
		for _, window := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/window=%d", tr.name, window), func(b *testing.B) {
				client, _ := tr.pair(b, Options{}, Options{Router: streamRouter()})
				cl := client.Caller()
				defer cl.Close()
				run := func(n int) { streamItems(b, cl, window, n) }
				run(1000) // warm pools
				before := client.LinkStats().FramesOut
				b.ReportAllocs()
				b.SetBytes(64)
				b.ResetTimer()
				run(b.N)
				b.StopTimer()
				grants := client.LinkStats().FramesOut - before - 1 // minus the request
				b.ReportMetric(float64(grants)/float64(b.N), "grants/item")
			})
		}
	}
}

// Items on a raw channel allocate nothing in steady state: a whole call
// streaming 4000 items allocates only its fixed costs (the request, the
// channel states and handles, the goroutines), not per item.
func TestChannelItemAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	client, _ := transports()[0].pair(t, Options{}, Options{Router: streamRouter()})
	cl := client.Caller()
	defer cl.Close()
	stream := func(n int) { streamItems(t, cl, 16, n) }
	stream(1000)
	small := testing.AllocsPerRun(5, func() { stream(10) })
	large := testing.AllocsPerRun(5, func() { stream(4000) })
	if perItem := (large - small) / 3990; perItem > 0.01 {
		t.Fatalf("%.3f allocations per item (%.0f for 10 items, %.0f for 4000)", perItem, small, large)
	}
}

// BenchmarkShortStreams: many short streams at once, as loadgen's stream
// workload runs them (16 items of 64 B each, the default window, items
// read in the call's While). One op is one stream: its channel's set-up
// and tear-down (the table, the handle's cleanup) weigh as much as its
// items.
func BenchmarkShortStreams(b *testing.B) {
	for _, tr := range transports() {
		b.Run(tr.name, func(b *testing.B) {
			client, _ := tr.pair(b, Options{}, Options{Router: streamRouter()})
			cl := client.Caller()
			defer cl.Close()
			req := []byte("16")
			stream := func() error {
				ctx := context.Background()
				rx := cl.Conn().NewRx(DefaultWindow)
				defer rx.Close()
				return cl.Call(ctx, mStream, req, &CallOptions{Channels: []Channel{rx}, While: func() error {
					for range 16 {
						it, err := rx.Recv(ctx)
						if err != nil {
							return err
						}
						it.Release()
					}
					return nil
				}}, nil)
			}
			benchParallel(b, 64, stream)
		})
	}
}
