package otelrove_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rove-rpc/rove/core"
	otelrove "github.com/rove-rpc/rove/otel"
	"github.com/rove-rpc/rove/reflection"
)

// The key-value service of issue 15, with typed methods and typed
// streams only: Get, Put and Delete; Watch streams changes to the
// client; Load streams entries from the client. An interceptor checks an
// auth token in the metadata; failures carry canonical codes; every call
// is traced with OpenTelemetry, the trace context travelling in metadata.
// (cmd/rove can call it once reflection is registered: see its tests.)

type entry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}
type key struct {
	Key string `json:"key"`
}
type loaded struct {
	Count int `json:"count"`
}

var (
	get   = core.NewTypedMethod[key, entry]("kv.v1", "Get")
	put   = core.NewTypedMethod[entry, struct{}]("kv.v1", "Put")
	del   = core.NewTypedMethod[key, struct{}]("kv.v1", "Delete")
	watch = core.NewServerStream[key, entry]("kv.v1", "Watch")
	load  = core.NewClientStream[entry, loaded]("kv.v1", "Load")
)

type store struct {
	mu       sync.Mutex
	data     map[string]string
	watchers map[chan entry]string
}

func (s *store) set(k, v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[k] = v
	for ch, prefix := range s.watchers {
		if prefix == k {
			ch <- entry{Key: k, Value: v}
		}
	}
}

func (s *store) register(r *core.Router) {
	get.Handle(r, func(ctx context.Context, k key) (entry, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v, ok := s.data[k.Key]
		if !ok {
			return entry{}, core.Errorf(core.NotFound, "no key %q", k.Key)
		}
		return entry{Key: k.Key, Value: v}, nil
	})
	put.Handle(r, func(ctx context.Context, e entry) (struct{}, error) {
		if e.Key == "" {
			return struct{}{}, core.Errorf(core.InvalidArgument, "empty key")
		}
		s.set(e.Key, e.Value)
		return struct{}{}, nil
	})
	del.Handle(r, func(ctx context.Context, k key) (struct{}, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.data, k.Key)
		return struct{}{}, nil
	})
	watch.Handle(r, func(ctx context.Context, k key, out *core.Tx[entry]) error {
		// The value now (if any), then every change: registered under the
		// lock that orders the changes, so none is missed or seen twice.
		ch := make(chan entry, 16)
		s.mu.Lock()
		s.watchers[ch] = k.Key
		if v, ok := s.data[k.Key]; ok {
			ch <- entry{Key: k.Key, Value: v}
		}
		s.mu.Unlock()
		defer func() { s.mu.Lock(); delete(s.watchers, ch); s.mu.Unlock() }()
		for {
			select {
			case e := <-ch:
				if err := out.Send(ctx, e); err != nil {
					return nil
				}
			case <-out.Done(): // the client stopped watching
				return nil
			case <-ctx.Done():
				return nil
			}
		}
	})
	load.Handle(r, func(ctx context.Context, in *core.Rx[entry]) (loaded, error) {
		n := 0
		for {
			e, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return loaded{Count: n}, nil
			}
			if err != nil {
				return loaded{}, err
			}
			s.set(e.Key, e.Value)
			n++
		}
	})
}

// auth refuses calls without the token.
func auth(ctx context.Context, req *core.Request, next core.HandlerFunc) error {
	if tok, _ := req.Metadata().Get("authorization"); tok.Str() != "Bearer s3cret" {
		return core.Errorf(core.Unauthenticated, "missing or bad token")
	}
	return next(ctx, req)
}

func Example_keyValueService() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	prop := propagation.TraceContext{}

	kv := &store{data: map[string]string{}, watchers: map[chan entry]string{}}
	router := core.NewRouter()
	kv.register(router)
	reflection.Register(router)

	token := core.Metadata{}.Add("authorization", core.StringValue("Bearer s3cret"), core.Sensitive)
	addToken := func(ctx context.Context, m core.Method, req []byte, opts *core.CallOptions, fn func(core.Reply) error, next core.CallFunc) error {
		o := core.CallOptions{}
		if opts != nil {
			o = *opts
		}
		o.Metadata = append(o.Metadata[:len(o.Metadata):len(o.Metadata)], token...)
		return next(ctx, m, req, &o, fn)
	}
	client, server, err := core.Pipe(context.Background(),
		core.Options{CallInterceptors: []core.CallInterceptor{otelrove.CallTracing(tp, prop), addToken}},
		core.Options{Router: router, ServerInterceptors: []core.ServerInterceptor{otelrove.ServerTracing(tp, prop), auth}})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()

	// Watch "b" while loading entries, then read the change.
	w, _ := watch.Call(ctx, cl, key{Key: "b"}, nil)
	up := load.Call(ctx, cl, nil)
	for _, e := range []entry{{"a", "1"}, {"b", "2"}, {"c", "3"}} {
		_ = up.Send(ctx, e)
	}
	n, err := up.CloseAndRecv()
	fmt.Println("loaded", n.Count, err)
	changed, _ := w.Recv(ctx)
	fmt.Println("watch saw", changed.Key, "=", changed.Value)
	w.Close()

	e, err := get.Call(ctx, cl, key{Key: "a"})
	fmt.Println("get a:", e.Value, err)
	_, err = del.Call(ctx, cl, key{Key: "a"})
	fmt.Println("delete a:", err)
	_, err = get.Call(ctx, cl, key{Key: "a"})
	fmt.Println("get a:", core.CodeOf(err), err)

	// Without the token: refused by the interceptor, with its code.
	bare, server2, _ := core.Pipe(ctx, core.Options{}, core.Options{Router: router, ServerInterceptors: []core.ServerInterceptor{auth}})
	defer server2.Close()
	defer bare.Close()
	c2 := bare.Caller()
	defer c2.Close()
	_, err = put.Call(ctx, c2, entry{Key: "x", Value: "y"})
	fmt.Println("no token:", core.CodeOf(err))

	// Every call left a client and a server span in one trace each.
	names := map[string]int{}
	for _, s := range spans.Ended() {
		names[s.Name()+" "+s.SpanKind().String()]++
	}
	var lines []string
	for k, v := range names {
		lines = append(lines, fmt.Sprintf("%s x%d", k, v))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// loaded 3 <nil>
	// watch saw b = 2
	// get a: 1 <nil>
	// delete a: <nil>
	// get a: NotFound rove: NotFound: no key "a"
	// no token: Unauthenticated
	// kv.v1/Delete client x1
	// kv.v1/Delete server x1
	// kv.v1/Get client x2
	// kv.v1/Get server x2
	// kv.v1/Load client x1
	// kv.v1/Load server x1
	// kv.v1/Watch client x1
	// kv.v1/Watch server x1
}
