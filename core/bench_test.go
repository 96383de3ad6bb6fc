package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// BenchmarkTypedVsRaw: a sonic-typed echo of a small struct against a raw
// echo of its encoding (the same bytes on the wire), both with handlers
// that may block (Handle, as typed methods register), parallel callers.
// The ratio of the two is issue 13's typed-call target (>= 0.8).
func BenchmarkTypedVsRaw(b *testing.B) {
	type item struct {
		ID   int64
		Name string
		Tags []string
	}
	mItem := NewTypedMethod[item, item]("bench", "item")
	r := NewRouter()
	r.Handle(mEcho, echo)
	mItem.Handle(r, func(_ context.Context, in item) (item, error) { return in, nil })
	v := item{ID: 42, Name: "a small struct", Tags: []string{"x", "y"}}
	raw, err := SonicCodec{}.AppendMarshal(nil, &v)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range transports() {
		client, _ := tr.pair(b, Options{}, Options{Router: r})
		cl := client.Caller()
		ctx := context.Background()
		run := func(b *testing.B, call func() error) { benchParallel(b, 32, call) }
		b.Run(tr.name+"/raw", func(b *testing.B) {
			run(b, func() error { return cl.Call(ctx, mEcho, raw, nil, nil) })
		})
		b.Run(tr.name+"/typed", func(b *testing.B) {
			run(b, func() error { _, err := mItem.Call(ctx, cl, v); return err })
		})
		cl.Close()
	}
}

// benchParallel warms call up (100 calls), then runs it from p goroutines
// per GOMAXPROCS until b.N calls are done, reporting allocations.
func benchParallel(b *testing.B, p int, call func() error) {
	for range 100 {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(p)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDerivedContext: pool handlers that derive a context from
// theirs (context.WithTimeout, as one making a downstream call does)
// against plain echo handlers, parallel callers over the pipe. The
// derived context registers with Request.AfterFunc: without it, Go's
// context package would start a goroutine per call to watch the Request.
func BenchmarkDerivedContext(b *testing.B) {
	mDerived := NewMethod("bench", "derived")
	r := NewRouter()
	r.Handle(mEcho, echo)
	r.Handle(mDerived, func(ctx context.Context, req *Request) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return req.Reply(req.Payload(), nil)
	})
	client, _ := transports()[0].pair(b, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	payload := make([]byte, 64)
	for _, m := range []Method{mEcho, mDerived} {
		b.Run(m.Name, func(b *testing.B) {
			benchParallel(b, 32, func() error { return cl.Call(ctx, m, payload, nil, nil) })
		})
	}
}
