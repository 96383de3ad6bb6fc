package core

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
)

type addReq struct {
	A, B int
	Note string
}

type addResp struct {
	Sum  int
	Note string
}

type addErr struct {
	Code   int
	Reason string
}

var mAdd = NewTypedMethod[addReq, addResp]("calc", "Add")

func calcRouter() *Router {
	r := NewRouter()
	mAdd.Handle(r, func(ctx context.Context, req addReq) (addResp, error) {
		if req.A < 0 {
			return addResp{}, ErrorValue(addErr{Code: 7, Reason: "negative"})
		}
		return addResp{Sum: req.A + req.B, Note: req.Note + "!"}, nil
	})
	return r
}

// spec:14,16 typed calls round-trip through sonic; a typed user error
// comes back decodable; undecodable arguments are InvalidPayload.
func TestTypedCalls(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: calcRouter()})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()
		got, err := mAdd.Call(ctx, cl, addReq{A: 2, B: 3, Note: "hi"})
		if err != nil || got.Sum != 5 || got.Note != "hi!" {
			t.Fatalf("got %+v %v", got, err)
		}
		_, err = mAdd.Call(ctx, cl, addReq{A: -1})
		var ce *CallError
		var ae addErr
		if !errors.Is(err, ErrUser) || !errors.As(err, &ce) || ce.Decode(&ae) != nil || ae.Code != 7 || ae.Reason != "negative" {
			t.Fatalf("user error: %v %+v", err, ae)
		}
		if err := cl.Call(ctx, mAdd.Method, []byte("{not json"), nil, nil); !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("bad payload: %v", err)
		}
	})
}

// Allocation budgets (run without -race; .ci/run does): a raw call to an
// inline handler allocates nothing on either side; to a pooled handler,
// only the Request that is its context; a typed call at most 3 more.
func TestCallAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	r := calcRouter()
	r.HandleInline(mEcho, echo)
	r.Handle(mSlow, echo)
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()
		shared, cancel := context.WithCancel(ctx) // waited under its watch
		defer cancel()
		payload := make([]byte, 64)
		budgets := []struct {
			name string
			max  float64
			f    func()
		}{
			{"raw inline", 0, func() { _ = cl.Call(ctx, mEcho, payload, nil, nil) }},
			{"raw inline, a shared cancellable context", 0, func() { _ = cl.Call(shared, mEcho, payload, nil, nil) }},
			{"raw pooled handler", 1, func() { _ = cl.Call(ctx, mSlow, payload, nil, nil) }},
			{"typed", 4, func() { _, _ = mAdd.Call(ctx, cl, addReq{A: 1, B: 2}) }},
		}
		for _, b := range budgets {
			for range 200 {
				b.f()
			}
			if got := testing.AllocsPerRun(500, b.f); got > b.max {
				t.Errorf("%s: %.2f allocations per call, budget %.0f", b.name, got, b.max)
			}
		}
		// A pool handler's one allocation is the Request's context part
		// (128 B, a size class): what the call holds of the request is
		// reused (served). 16 B of slack for whatever else runs.
		if got := bytesPerRun(2000, func() { _ = cl.Call(ctx, mSlow, payload, nil, nil) }); got > 128+16 {
			t.Errorf("raw pooled handler: %.0f bytes allocated per call, budget 128", got)
		}
	})
}

// bytesPerRun is testing.AllocsPerRun for bytes: the heap bytes
// allocated per call of f, on average over runs.
func bytesPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// Typed calls take options and return the response metadata; typed
// handlers read the request's metadata and set the response's through
// RequestFrom.
func TestTypedMetadataBothWays(t *testing.T) {
	type in struct{ N int }
	type out struct{ Tenant string }
	m := NewTypedMethod[in, out]("test", "whoami")
	r := NewRouter()
	m.Handle(r, func(ctx context.Context, req in) (out, error) {
		rq, ok := RequestFrom(ctx)
		if !ok {
			return out{}, errors.New("no request in ctx")
		}
		tenant, _ := rq.Metadata().Get("tenant")
		rq.SetReplyMetadata(Metadata{}.Add("served-by", StringValue("node-7"), 0))
		return out{Tenant: tenant.Str()}, nil
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	resp, md, err := m.CallWith(context.Background(), cl, in{N: 1}, &CallOptions{Metadata: Metadata{}.Add("tenant", StringValue("acme"), 0)})
	if err != nil || resp.Tenant != "acme" {
		t.Fatalf("CallWith: %+v %v", resp, err)
	}
	if v, ok := md.Get("served-by"); !ok || v.Str() != "node-7" {
		t.Fatalf("response metadata %v", md)
	}
	// The plain Call still works, without metadata.
	if resp, err := m.Call(context.Background(), cl, in{}); err != nil || resp.Tenant != "" {
		t.Fatalf("Call: %+v %v", resp, err)
	}
}

// SonicCodec's decoded values never point into the payload, which is a
// view of pooled memory reused once the call returns: overwriting the
// payload after Unmarshal leaves them as they were.
func TestSonicUnmarshalOwnsStrings(t *testing.T) {
	type item struct {
		Name string
		Tags []string
		Meta map[string]string
	}
	for _, name := range []string{"short", strings.Repeat("long", 1000)} {
		data, err := SonicCodec{}.AppendMarshal(nil, &item{Name: name, Tags: []string{"x", "y"}, Meta: map[string]string{"k": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		var got item
		if err := (SonicCodec{}).Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] = '#'
		}
		if got.Name != name || len(got.Tags) != 2 || got.Tags[0] != "x" || got.Tags[1] != "y" || got.Meta["k"] != "v" {
			t.Fatalf("decoded values changed with the payload (%d bytes): %+v", len(data), got)
		}
	}
}

// spec:17 a typed handler registered with HandleInline runs on the
// reading goroutine (no hand-off: its Request is answered from the loop),
// one registered with Handle on a worker; both decode, answer and report
// an undecodable request the same way.
func TestTypedHandleInline(t *testing.T) {
	mInline := NewTypedMethod[addReq, addResp]("calc", "AddInline")
	onLoop := make(chan bool, 2)
	add := func(ctx context.Context, req addReq) (addResp, error) {
		r, _ := RequestFrom(ctx)
		onLoop <- r.onLoop
		return addResp{Sum: req.A + req.B, Note: req.Note}, nil
	}
	r := NewRouter()
	mInline.HandleInline(r, add)
	mAdd.Handle(r, add)
	client, _, _ := pipePair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	for _, c := range []struct {
		m      TypedMethod[addReq, addResp]
		inline bool
	}{{mInline, true}, {mAdd, false}} {
		got, err := c.m.Call(ctx, cl, addReq{A: 2, B: 3, Note: "n"})
		if err != nil || got.Sum != 5 || got.Note != "n" {
			t.Fatalf("%s: got %+v %v", c.m.Name, got, err)
		}
		if loop := <-onLoop; loop != c.inline {
			t.Errorf("%s ran on the reading goroutine: %v, want %v", c.m.Name, loop, c.inline)
		}
		if err := cl.Call(ctx, c.m.Method, []byte("{not json"), nil, nil); !errors.Is(err, ErrInvalidPayload) {
			t.Errorf("%s, bad payload: %v", c.m.Name, err)
		}
	}
}
