package core

import (
	"context"
	"runtime"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
)

// Types that serve no other test, one pair per kind of method, so that
// nothing but the Handle under test can have compiled sonic's codec for
// them. Each is decoded (the first of a pair) or encoded (the second) by
// its handler.
type (
	pretouchUnaryIn  struct{ A int64 }
	pretouchUnaryOut struct{ B string }
	pretouchSrvIn    struct{ C []string }
	pretouchSrvOut   struct{ D float64 }
	pretouchCliIn    struct{ E map[string]int }
	pretouchCliOut   struct{ F bool }
	pretouchBidiIn   struct{ G struct{ H int } }
	pretouchBidiOut  struct{ I []int64 }
)

// Handle compiles sonic's decoder for what the handler decodes and its
// encoder for what it encodes at registration, not on the first request:
// the first decode and encode after it allocate as little as warm ones,
// where compiling allocates thousands of objects. One case per kind of
// method. (Counted without -race: the race runtime allocates.)
func TestTypedHandlePretouches(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	r := NewRouter()
	NewTypedMethod[pretouchUnaryIn, pretouchUnaryOut]("pretouch", "unary").Handle(r,
		func(context.Context, pretouchUnaryIn) (pretouchUnaryOut, error) { return pretouchUnaryOut{}, nil })
	NewServerStream[pretouchSrvIn, pretouchSrvOut]("pretouch", "server").Handle(r,
		func(context.Context, pretouchSrvIn, *Tx[pretouchSrvOut]) error { return nil })
	NewClientStream[pretouchCliIn, pretouchCliOut]("pretouch", "client").Handle(r,
		func(context.Context, *Rx[pretouchCliIn]) (pretouchCliOut, error) { return pretouchCliOut{}, nil })
	NewBidiStream[pretouchBidiIn, pretouchBidiOut]("pretouch", "bidi").Handle(r,
		func(context.Context, *Rx[pretouchBidiIn], *Tx[pretouchBidiOut]) error { return nil })

	codec := SonicCodec{}
	cases := []struct {
		name   string
		decode func() error
		encode func() error
	}{
		{"TypedMethod",
			func() error { var v pretouchUnaryIn; return codec.Unmarshal([]byte(`{"A":1}`), &v) },
			func() error {
				_, err := codec.AppendMarshal(make([]byte, 0, 64), &pretouchUnaryOut{B: "b"})
				return err
			}},
		{"ServerStream",
			func() error { var v pretouchSrvIn; return codec.Unmarshal([]byte(`{"C":["c"]}`), &v) },
			func() error { _, err := codec.AppendMarshal(make([]byte, 0, 64), &pretouchSrvOut{D: 1}); return err }},
		{"ClientStream",
			func() error { var v pretouchCliIn; return codec.Unmarshal([]byte(`{"E":{"e":1}}`), &v) },
			func() error { _, err := codec.AppendMarshal(make([]byte, 0, 64), &pretouchCliOut{F: true}); return err }},
		{"BidiStream",
			func() error { var v pretouchBidiIn; return codec.Unmarshal([]byte(`{"G":{"H":1}}`), &v) },
			func() error {
				_, err := codec.AppendMarshal(make([]byte, 0, 64), &pretouchBidiOut{I: []int64{1}})
				return err
			}},
	}
	for _, c := range cases {
		if n, err := mallocsOf(c.decode); err != nil || n > 20 {
			t.Errorf("%s: the first decode after Handle allocated %d objects (err %v): its decoder was compiled then", c.name, n, err)
		}
		if n, err := mallocsOf(c.encode); err != nil || n > 20 {
			t.Errorf("%s: the first encode after Handle allocated %d objects (err %v): its encoder was compiled then", c.name, n, err)
		}
	}
}

// The callers' side, one pair per kind of method, again of types no
// other test uses: each is encoded (the first of a pair) or decoded (the
// second) by the caller.
type (
	callerUnaryReq  struct{ A uint8 }
	callerUnaryResp struct{ B []byte }
	callerSrvReq    struct{ C int32 }
	callerSrvItem   struct{ D []float32 }
	callerCliItem   struct{ E [2]int }
	callerCliResp   struct{ F *int }
	callerBidiIn    struct{ G int16 }
	callerBidiOut   struct{ H map[string]string }
)

// Pretouch compiles what the caller encodes and decodes, so that a
// client's first call does not: as for Handle, the first encode and
// decode after it allocate as little as warm ones. One case per kind of
// method. (Counted without -race.)
func TestTypedPretouchCallerSide(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	codec := SonicCodec{}
	cases := []struct {
		name     string
		pretouch func() error
		encode   func() error
		decode   func() error
	}{
		{"TypedMethod", NewTypedMethod[callerUnaryReq, callerUnaryResp]("pretouch", "unary").Pretouch,
			func() error { _, err := codec.AppendMarshal(make([]byte, 0, 64), &callerUnaryReq{A: 1}); return err },
			func() error { var v callerUnaryResp; return codec.Unmarshal([]byte(`{"B":"Yg=="}`), &v) }},
		{"ServerStream", NewServerStream[callerSrvReq, callerSrvItem]("pretouch", "server").Pretouch,
			func() error { _, err := codec.AppendMarshal(make([]byte, 0, 64), &callerSrvReq{C: 1}); return err },
			func() error { var v callerSrvItem; return codec.Unmarshal([]byte(`{"D":[1.5]}`), &v) }},
		{"ClientStream", NewClientStream[callerCliItem, callerCliResp]("pretouch", "client").Pretouch,
			func() error {
				_, err := codec.AppendMarshal(make([]byte, 0, 64), &callerCliItem{E: [2]int{1, 2}})
				return err
			},
			func() error { var v callerCliResp; return codec.Unmarshal([]byte(`{"F":1}`), &v) }},
		{"BidiStream", NewBidiStream[callerBidiIn, callerBidiOut]("pretouch", "bidi").Pretouch,
			func() error { _, err := codec.AppendMarshal(make([]byte, 0, 64), &callerBidiIn{G: 1}); return err },
			func() error { var v callerBidiOut; return codec.Unmarshal([]byte(`{"H":{"h":"i"}}`), &v) }},
	}
	for _, c := range cases {
		if err := c.pretouch(); err != nil {
			t.Fatalf("%s: Pretouch: %v", c.name, err)
		}
	}
	for _, c := range cases {
		if n, err := mallocsOf(c.encode); err != nil || n > 20 {
			t.Errorf("%s: the first encode after Pretouch allocated %d objects (err %v): its encoder was compiled then", c.name, n, err)
		}
		if n, err := mallocsOf(c.decode); err != nil || n > 20 {
			t.Errorf("%s: the first decode after Pretouch allocated %d objects (err %v): its decoder was compiled then", c.name, n, err)
		}
	}
}

// mallocsOf counts the heap allocations f makes.
func mallocsOf(f func() error) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := f()
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs, err
}
