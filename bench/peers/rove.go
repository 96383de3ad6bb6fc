package main

import (
	"context"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// Rove served and dialled on gnet, with the inline echo loadgen uses.

var roveEcho = core.NewMethod("bench", "echo")

func serveRove(addr string) (func(), error) {
	tr := netpoll.NewGnet(netpoll.GnetOptions{})
	r := core.NewRouter()
	r.HandleInline(roveEcho, func(_ context.Context, req *core.Request) error {
		return req.Reply(req.Payload(), nil)
	})
	srv, err := core.Serve(tr, "tcp", addr, core.Options{Router: r})
	if err != nil {
		tr.Close()
		return nil, err
	}
	return func() { srv.Close(); tr.Close() }, nil
}

// roveClients share one gnet transport, as an application would.
var roveClients = netpoll.NewGnet(netpoll.GnetOptions{})

func dialRove(target string) (caller, func(), error) {
	s, err := core.Dial(context.Background(), roveClients, "tcp", target, core.Options{})
	if err != nil {
		return nil, nil, err
	}
	cl := s.Caller()
	return func(payload []byte) error {
			return cl.Call(context.Background(), roveEcho, payload, nil, func(core.Reply) error { return nil })
		}, func() {
			cl.Close()
			s.Close()
		}, nil
}
