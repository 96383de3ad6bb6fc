package main

import (
	"context"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// Rove served and dialled on gnet, with the inline echo loadgen uses.

var (
	roveEcho   = core.NewMethod("bench", "echo")
	roveStream = core.NewMethod("bench", "stream")
)

func serveRove(addr string, std bool) (func(), error) {
	var tr netpoll.Transport = netpoll.Std{}
	stop := func() {}
	if !std {
		g := netpoll.NewGnet(netpoll.GnetOptions{})
		tr, stop = g, func() { g.Close() }
	}
	r := core.NewRouter()
	r.HandleInline(roveEcho, func(_ context.Context, req *core.Request) error {
		return req.Reply(req.Payload(), nil)
	})
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

func dialRove(target string, std bool) (caller, func(), error) {
	cl, closeFn, err := dialRoveCaller(target, std)
	if err != nil {
		return nil, nil, err
	}
	return func(payload []byte) error {
		return cl.Call(context.Background(), roveEcho, payload, nil, func(core.Reply) error { return nil })
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
