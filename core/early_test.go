package core

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

// goid is the current goroutine's id, read from its stack header: the
// tests below check which goroutine ran a reply callback.
func goid() uint64 {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(s[:bytes.IndexByte(s, ' ')]), 10, 64)
	return id
}

// An early reply callback (a typed call's decode) runs on the reading
// goroutine for a successful response of up to earlyMax bytes, and on the
// caller's goroutine for a larger one, so that one big decode does not
// hold up the responses behind it.
func TestEarlyReplyRunsOnReader(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		r := NewRouter()
		r.HandleInline(mEcho, echo)
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		for _, tc := range []struct {
			size     int
			onCaller bool
		}{{64, false}, {earlyMax, false}, {earlyMax + 1, true}} {
			me := goid()
			var ran uint64
			got := -1
			err := cl.c.invokeEarly(context.Background(), mEcho, make([]byte, tc.size), nil, func(r Reply) error {
				ran, got = goid(), len(r.Payload)
				return nil
			})
			if err != nil || got != tc.size {
				t.Fatalf("size %d: got %d bytes, %v", tc.size, got, err)
			}
			if (ran == me) != tc.onCaller {
				t.Errorf("size %d: ran on the caller's goroutine: %v, want %v", tc.size, ran == me, tc.onCaller)
			}
		}
	})
}

// Interceptors and stats handlers see the Reply on the caller's
// goroutine, so an early callback under them runs there too.
func TestEarlyReplyStaysWithInterceptors(t *testing.T) {
	pass := func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error, next CallFunc) error {
		return next(ctx, m, req, opts, fn)
	}
	for name, opts := range map[string]Options{
		"interceptor": {CallInterceptors: []CallInterceptor{pass}},
		"stats":       {Stats: &recordingStats{}},
	} {
		t.Run(name, func(t *testing.T) {
			r := NewRouter()
			r.HandleInline(mEcho, echo)
			client, _ := transports()[1].pair(t, opts, Options{Router: r})
			cl := client.Caller()
			defer cl.Close()
			me := goid()
			var ran uint64
			if err := cl.c.invokeEarly(context.Background(), mEcho, []byte("x"), nil, func(Reply) error {
				ran = goid()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if ran != me {
				t.Errorf("the callback ran on goroutine %d, not the caller's (%d)", ran, me)
			}
		})
	}
}

// A typed call decodes on the reading goroutine only with SonicCodec,
// whose decode never blocks: another codec decodes on the caller's.
func TestTypedDecodeGoroutine(t *testing.T) {
	for _, sonic := range []bool{true, false} {
		t.Run(map[bool]string{true: "sonic", false: "other"}[sonic], func(t *testing.T) {
			client, _ := transports()[1].pair(t, Options{}, Options{Router: calcRouter()})
			cl := client.Caller()
			defer cl.Close()
			// The response type notes the goroutine that decodes it
			// (sonic calls its UnmarshalJSON): on the early path the
			// reading goroutine runs it, as TypedMethod.Call says.
			m := TypedMethod[addReq, goidSum]{Method: mAdd.Method}
			if !sonic {
				m.Codec = otherCodec{}
			}
			got, err := m.Call(context.Background(), cl, addReq{A: 1, B: 2})
			if err != nil || got.Sum != 3 {
				t.Fatalf("got %+v, %v", got, err)
			}
			if onCaller := got.decodedOn == goid(); onCaller == sonic {
				t.Errorf("decoded on the caller's goroutine: %v, want %v", onCaller, !sonic)
			}
		})
	}
}

// goidSum is addResp that notes the goroutine that decoded it.
type goidSum struct {
	Sum       int
	decodedOn uint64
}

func (g *goidSum) UnmarshalJSON(b []byte) error {
	g.decodedOn = goid()
	var r addResp
	err := SonicCodec{}.Unmarshal(b, &r)
	g.Sum = r.Sum
	return err
}

// otherCodec is SonicCodec under another type: a codec the runtime
// cannot know never to block.
type otherCodec struct{ SonicCodec }

// A response that does not decode fails its typed call with
// ErrInvalidPayload when the reading goroutine decoded it, and a callback
// that panics there fails its one call, not the connection; either way
// the call's slot and its response's frame are given back.
func TestEarlyReplyErrors(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		r := NewRouter()
		r.HandleInline(mAdd.Method, func(_ context.Context, req *Request) error { return req.Reply([]byte("{not json"), nil) })
		r.HandleInline(mEcho, echo)
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()
		if _, err := mAdd.Call(ctx, cl, addReq{}); !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("undecodable response: %v", err)
		}
		err := cl.c.invokeEarly(ctx, mEcho, []byte("x"), nil, func(Reply) error { panic("codec bug") })
		if !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("panicking callback: %v", err)
		}
		// Both calls gave back their slots and their responses' frames
		// (the read budget).
		if n := client.root.slots.inUse(); n != 0 {
			t.Fatalf("%d call slots still in use", n)
		}
		testwait.For(t, "the responses' frames released", func() bool { return client.link.Load().Held() == 0 })
		if got, err := call(ctx, cl, mEcho, []byte("after")); err != nil || string(got) != "after" {
			t.Fatalf("the next call: %q, %v", got, err)
		}
	})
}
