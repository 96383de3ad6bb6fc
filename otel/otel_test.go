package otelrove

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

var get = core.NewMethod("kv", "Get")

// pair runs a server and a client over a pipe, both instrumented.
func pair(t *testing.T, opts core.Options) *core.Caller {
	t.Helper()
	r := core.NewRouter()
	r.Handle(get, func(ctx context.Context, req *core.Request) error {
		if string(req.Payload()) == "missing" {
			return core.Errorf(core.NotFound, "no key")
		}
		// Under tracing, the handler's ctx carries the server span.
		if _, traced := req.Metadata().Get("traceparent"); traced && !trace.SpanFromContext(ctx).SpanContext().IsValid() {
			return core.Errorf(core.Internal, "no span in the handler's context")
		}
		return req.Reply([]byte("value"), nil)
	})
	server := opts
	server.Router = r
	client, srv, err := core.Pipe(context.Background(), opts, server)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.Caller()
	t.Cleanup(func() { cl.Close(); client.Close(); srv.Close() })
	return cl
}

// A call's client span and the handler's server span are one trace: the
// context travels in the call's metadata.
func TestTracingAcrossTheCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prop := propagation.TraceContext{}
	cl := pair(t, core.Options{
		ServerInterceptors: []core.ServerInterceptor{ServerTracing(tp, prop)},
		CallInterceptors:   []core.CallInterceptor{CallTracing(tp, prop)},
	})
	if err := cl.Call(context.Background(), get, []byte("a"), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := cl.Call(context.Background(), get, []byte("missing"), nil, nil); core.CodeOf(err) != core.NotFound {
		t.Fatal(err)
	}
	// The server ends its span just after it has sent the response, so
	// the caller can return first: wait for all four.
	testwait.For(t, "four ended spans", func() bool { return len(rec.Ended()) >= 4 })
	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans", len(spans))
	}
	// The first call's two spans succeeded; the second call's two say
	// NotFound (the order they ended in may mix the calls).
	var server, client sdktrace.ReadOnlySpan
	failed := 0
	for _, s := range spans {
		if s.Status().Description == "NotFound" {
			failed++
			continue
		}
		switch s.SpanKind() {
		case trace.SpanKindServer:
			server = s
		case trace.SpanKindClient:
			client = s
		}
	}
	if failed != 2 {
		t.Fatalf("%d spans of the failed call say NotFound, want 2: %v", failed, spans)
	}
	if server == nil || client == nil || server.Name() != "kv/Get" {
		t.Fatalf("spans %v", spans)
	}
	if server.SpanContext().TraceID() != client.SpanContext().TraceID() || server.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Fatal("the server span does not continue the client's trace")
	}
}

// Stats records the RPC metrics of both sides, by method and code.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	cl := pair(t, core.Options{Stats: NewStats(mp)})
	for _, key := range []string{"a", "b", "missing"} {
		_ = cl.Call(context.Background(), get, []byte(key), nil, nil)
	}
	// The server reports a call just after it has sent the response, so
	// the caller may see its outcome first: wait for the server's three.
	var counts map[string]uint64 // instrument + code -> calls
	testwait.For(t, "the server's reports of its three calls", func() bool {
		counts = collect(t, reader)
		return counts["rpc.server.call.duration OK"]+counts["rpc.server.call.duration NotFound"] == 3
	})
	want := map[string]uint64{
		"rpc.server.call.duration OK": 2, "rpc.server.call.duration NotFound": 1,
		"rpc.client.call.duration OK": 2, "rpc.client.call.duration NotFound": 1,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
}

// collect reads the call-duration histograms' counts by instrument and
// status code, checking every data point's method attribute.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]uint64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				continue
			}
			for _, dp := range h.DataPoints {
				code, _ := dp.Attributes.Value(attribute.Key("rpc.response.status_code"))
				method, _ := dp.Attributes.Value(attribute.Key("rpc.method"))
				if method.AsString() != "Get" {
					t.Errorf("method attribute %q", method.AsString())
				}
				counts[m.Name+" "+code.AsString()] += dp.Count
			}
		}
	}
	return counts
}
