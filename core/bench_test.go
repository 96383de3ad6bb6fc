package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkCallRaw: 64 B echo calls over the pipe and over gnet TCP, one
// caller at a time (sequential: a ping-pong round trip) and from parallel
// callers (b.RunParallel). allocs/op counts both sides: one process.
func BenchmarkCallRaw(b *testing.B) {
	for _, tr := range transports() {
		for _, inline := range []bool{false, true} {
			name := tr.name
			if inline {
				name += "/inline"
			}
			b.Run(name+"/seq", func(b *testing.B) { benchCall(b, tr, inline, false) })
			b.Run(name+"/parallel", func(b *testing.B) { benchCall(b, tr, inline, true) })
		}
	}
}

func benchRouter(inline bool) *Router {
	r := NewRouter()
	if inline {
		r.HandleInline(mEcho, echo)
	} else {
		r.Handle(mEcho, echo)
	}
	return r
}

func benchCall(b *testing.B, tr transport, inline, parallel bool) {
	client, _ := tr.pair(b, Options{}, Options{Router: benchRouter(inline)})
	cl := client.Caller()
	defer cl.Close()
	payload := make([]byte, 64)
	ctx := context.Background()
	for range 100 { // warm pools
		if err := cl.Call(ctx, mEcho, payload, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			if err := cl.Call(ctx, mEcho, payload, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(32) // 64 callers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := cl.Call(ctx, mEcho, payload, nil, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPipelined: one connection kept at 64 or 1024 calls in flight.
func BenchmarkPipelined(b *testing.B) {
	for _, tr := range transports() {
		for _, depth := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/inflight=%d", tr.name, depth), func(b *testing.B) {
				client, _ := tr.pair(b, Options{}, Options{Router: benchRouter(false), MaxConcurrentRequests: depth})
				cl := client.Caller()
				defer cl.Close()
				payload := make([]byte, 64)
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for range depth {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := cl.Call(context.Background(), mEcho, payload, nil, nil); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
