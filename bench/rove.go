package main

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// Rove served and dialled on gnet, with the inline echo loadgen uses.

var (
	roveEcho     = core.NewMethod("bench", "echo")
	roveEchoPool = core.NewMethod("bench", "echo-pool")
	roveTyped    = core.NewTypedMethod[typedItem, typedItem]("bench", "typed")
	// roveTypedBin is the typed echo with a hand-written codec (binCodec):
	// the typed API's cost without sonic's.
	roveTypedBin = core.TypedMethod[typedItem, typedItem]{Method: core.NewMethod("bench", "typed-bin"), Codec: binCodec{}}
	roveStream   = core.NewMethod("bench", "stream")
)

// typedItem is the small struct of the typed echo (as core's
// BenchmarkTypedVsRaw): its Name is sized so that the JSON encoding is
// about the scenario's payload size, the bytes the raw echoes carry.
type typedItem struct {
	ID   int64
	Name string
	Tags []string
}

func newTypedItem(size int) typedItem {
	const base = len(`{"ID":42,"Name":"","Tags":["x","y"]}`)
	return typedItem{ID: 42, Name: strings.Repeat("n", max(size-base, 0)), Tags: []string{"x", "y"}}
}

func serveRove(addr string, std bool) (func(), error) {
	var tr netpoll.Transport = netpoll.Std{}
	stop := func() {}
	if !std {
		g := netpoll.NewGnet(netpoll.GnetOptions{})
		tr, stop = g, func() { g.Close() }
	}
	r := core.NewRouter()
	echo := func(_ context.Context, req *core.Request) error { return req.Reply(req.Payload(), nil) }
	r.HandleInline(roveEcho, echo)
	// The typed echo and its raw twin both run on the worker pool, as
	// typed handlers do (Handle).
	r.Handle(roveEchoPool, echo)
	typedEcho := func(_ context.Context, in typedItem) (typedItem, error) { return in, nil }
	roveTyped.Handle(r, typedEcho)
	roveTypedBin.Handle(r, typedEcho)
	// Streaming waits for credit: a handler that may block.
	r.Handle(roveStream, func(ctx context.Context, req *core.Request) error {
		n, size, err := parseStreamRequest(req.Payload())
		if err != nil {
			return &core.InvalidPayloadError{Err: err}
		}
		tx, err := req.Tx(0)
		if err != nil {
			return &core.InvalidPayloadError{Err: err}
		}
		defer tx.Close()
		item := make([]byte, size)
		for range n {
			if err := tx.Send(ctx, item); err != nil {
				return err
			}
		}
		return req.Reply(nil, nil)
	})
	srv, err := core.Serve(tr, "tcp", addr, core.Options{Router: r})
	if err != nil {
		stop()
		return nil, err
	}
	return func() { srv.Close(); stop() }, nil
}

// roveClients share one gnet transport, as an application would.
var roveClients = netpoll.NewGnet(netpoll.GnetOptions{})

// dialRoveCaller opens a session to target (on the shared gnet
// transport, or std net) and returns a Caller and how to close both.
func dialRoveCaller(target string, std bool) (*core.Caller, func(), error) {
	var tr netpoll.Transport = roveClients
	if std {
		tr = netpoll.Std{}
	}
	s, err := core.Dial(context.Background(), tr, "tcp", target, core.Options{})
	if err != nil {
		return nil, nil, err
	}
	cl := s.Caller()
	return cl, func() { cl.Close(); s.Close() }, nil
}

func dialRove(target string, std bool, m core.Method) (caller, func(), error) {
	cl, closeFn, err := dialRoveCaller(target, std)
	if err != nil {
		return nil, nil, err
	}
	return func(payload []byte) error {
		return cl.Call(context.Background(), m, payload, nil, func(core.Reply) error { return nil })
	}, closeFn, nil
}

// dialRoveTyped calls the typed echo tm with an item whose encoding is
// about the payload's size (made when the size changes).
func dialRoveTyped(target string, tm core.TypedMethod[typedItem, typedItem]) (caller, func(), error) {
	if err := tm.Pretouch(); err != nil {
		return nil, nil, err
	}
	cl, closeFn, err := dialRoveCaller(target, false)
	if err != nil {
		return nil, nil, err
	}
	type sized struct {
		size int
		item typedItem
	}
	var cur atomic.Pointer[sized] // read-shared: a load per call, no lock
	return func(payload []byte) error {
		v := cur.Load()
		if v == nil || v.size != len(payload) {
			v = &sized{len(payload), newTypedItem(len(payload))}
			cur.Store(v)
		}
		_, err := tm.Call(context.Background(), cl, v.item)
		return err
	}, closeFn, nil
}

// dialRoveStream makes streaming calls on one Rove session: the request
// binds one channel (core.DefaultWindow) the server sends the items on.
func dialRoveStream(target string, std bool) (streamer, func(), error) {
	cl, closeFn, err := dialRoveCaller(target, std)
	if err != nil {
		return nil, nil, err
	}
	return func(items, size int) error {
		ctx := context.Background()
		rx := cl.Conn().NewRx(core.DefaultWindow)
		defer rx.Close()
		req := streamRequest(items, size)
		// The items are read on this goroutine while the call runs.
		return cl.Call(ctx, roveStream, req, &core.CallOptions{Channels: []core.Channel{rx}, While: func() error {
			for range items {
				it, err := rx.Recv(ctx)
				if err != nil {
					return err
				}
				it.Release()
			}
			return nil
		}}, nil)
	}, closeFn, nil
}
