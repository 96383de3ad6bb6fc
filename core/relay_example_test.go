package core_test

import (
	"context"
	"fmt"

	"github.com/rove-rpc/rove/core"
)

// A proxy: the middle peer relays a virtual connection from one session
// to another without translating request or channel ids. The client's
// first request id on its connection (1) is the id the server sees.
func Example_relay() {
	ctx := context.Background()
	whoami := core.NewMethod("demo", "WhoAmI")

	// The server accepts virtual connections with its handlers.
	serverRouter := core.NewRouter()
	serverRouter.Handle(whoami, func(ctx context.Context, req *core.Request) error {
		return req.Reply(fmt.Appendf(nil, "server saw request id %d", req.ID()), nil)
	})
	serverOpts := core.Options{AcceptConn: func(ctx context.Context, req core.ConnRequest) (core.ConnOptions, error) {
		return core.ConnOptions{Router: serverRouter}, nil
	}}
	middleToServer, server, err := core.Pipe(ctx, core.Options{}, serverOpts)
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer middleToServer.Close()

	// The middle peer relays every virtual connection a client opens to a
	// connection of its own on the server session, with the client's parity.
	middleOpts := core.Options{AcceptConn: func(ctx context.Context, req core.ConnRequest) (core.ConnOptions, error) {
		far, err := middleToServer.OpenConn(ctx, core.ConnOptions{Parity: req.Parity, Relay: req.Conn})
		if err != nil {
			return core.ConnOptions{}, err
		}
		return core.ConnOptions{Relay: far}, nil
	}}
	client, middle, err := core.Pipe(ctx, core.Options{}, middleOpts)
	if err != nil {
		panic(err)
	}
	defer middle.Close()
	defer client.Close()

	conn, err := client.OpenConn(ctx, core.ConnOptions{})
	if err != nil {
		panic(err)
	}
	caller := conn.Caller()
	defer caller.Close()
	for range 2 {
		caller.Call(ctx, whoami, nil, nil, func(r core.Reply) error {
			fmt.Println(string(r.Payload))
			return nil
		})
	}
	// Output:
	// server saw request id 1
	// server saw request id 3
}
