package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rove-rpc/rove/core"
)

// Metadata both ways: the caller sends a request id, the handler reads it
// and answers with metadata of its own. Sensitive values never print.
func ExampleMetadata() {
	hello := core.NewMethod("demo", "Hello")
	router := core.NewRouter()
	router.Handle(hello, func(ctx context.Context, req *core.Request) error {
		id, _ := req.Metadata().Get("request-id")
		return req.Reply([]byte("hi"), core.Metadata{}.Add("echo-id", core.StringValue(id.Str()), 0))
	})
	client, server, _ := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	md := core.Metadata{}.
		Add("request-id", core.StringValue("r-42"), 0).
		Add("password", core.StringValue("hunter2"), core.Sensitive)
	fmt.Println(md)
	_ = caller.Call(context.Background(), hello, nil, &core.CallOptions{Metadata: md}, func(r core.Reply) error {
		fmt.Println(r.Metadata())
		return nil
	})
	// Output:
	// ["request-id"="r-42", "password"=<redacted>]
	// ["echo-id"="r-42"]
}

// Calls both ways on one session: the server's handler calls back to the
// client that called it, on the same connection.
func ExampleRequest_Conn_callback() {
	ask := core.NewMethod("demo", "Ask")       // served by the server
	name := core.NewMethod("demo", "YourName") // served by the client
	serverRouter := core.NewRouter()
	serverRouter.Handle(ask, func(ctx context.Context, req *core.Request) error {
		back := req.Conn().Caller() // calls the peer that called us
		defer back.Close()
		var who string
		if err := back.Call(ctx, name, nil, nil, func(r core.Reply) error { who = string(r.Payload); return nil }); err != nil {
			return err
		}
		return req.Reply([]byte("hello, "+who), nil)
	})
	clientRouter := core.NewRouter()
	clientRouter.Handle(name, func(ctx context.Context, req *core.Request) error { return req.Reply([]byte("ann"), nil) })

	client, server, _ := core.Pipe(context.Background(), core.Options{Router: clientRouter}, core.Options{Router: serverRouter})
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()
	_ = caller.Call(context.Background(), ask, nil, nil, func(r core.Reply) error {
		fmt.Printf("%s\n", r.Payload)
		return nil
	})
	// Output: hello, ann
}

// A server-streaming method declared with its item type: the handler
// sends, the caller receives until io.EOF.
func ExampleServerStream() {
	countdown := core.NewServerStream[int, string]("demo", "Countdown")
	router := core.NewRouter()
	countdown.Handle(router, func(ctx context.Context, from int, out *core.Tx[string]) error {
		for i := from; i > 0; i-- {
			if err := out.Send(ctx, fmt.Sprint(i)); err != nil {
				return err
			}
		}
		return out.Send(ctx, "liftoff")
	})
	client, server, _ := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	stream, err := countdown.Call(context.Background(), caller, 3, nil)
	if err != nil {
		panic(err)
	}
	for {
		s, err := stream.Recv(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(s)
	}
	// Output:
	// 3
	// 2
	// 1
	// liftoff
}

// Drain shuts a server down gracefully: running calls finish, new ones
// are refused as Unavailable (retryable; core.Client retries them on its
// next session).
func ExampleServer_Drain() {
	slow := core.NewMethod("demo", "Slow")
	started, release := make(chan struct{}), make(chan struct{})
	router := core.NewRouter()
	router.Handle(slow, func(ctx context.Context, req *core.Request) error {
		close(started)
		<-release
		return req.Reply([]byte("finished"), nil)
	})
	client, server, _ := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	result := make(chan string)
	go func() {
		_ = caller.Call(context.Background(), slow, nil, nil, func(r core.Reply) error { result <- string(r.Payload); return nil })
	}()
	<-started
	drained := make(chan error)
	go func() { drained <- server.Drain(context.Background()) }()
	close(release) // the running call may finish
	fmt.Println("running call:", <-result)
	fmt.Println("drain:", <-drained)
	// The server is gone: a new call fails, retryable (and unsent).
	err := caller.Call(context.Background(), slow, nil, nil, nil)
	var ce *core.CallError
	fmt.Println("new call retryable:", core.IsRetryable(err), errors.As(err, &ce) && ce.Unsent)
	// Output:
	// running call: finished
	// drain: <nil>
	// new call retryable: true true
}

type scaleReq struct{ X, Factor float64 }
type scaleResp struct{ Y float64 }

// A typed handler that never blocks (it computes from its arguments) can
// run on the event loop that read the request: no hand-off to a worker.
func ExampleTypedMethod_HandleInline() {
	scale := core.NewTypedMethod[scaleReq, scaleResp]("calc", "Scale")
	router := core.NewRouter()
	scale.HandleInline(router, func(_ context.Context, req scaleReq) (scaleResp, error) {
		return scaleResp{Y: req.X * req.Factor}, nil
	})

	ctx := context.Background()
	client, server, err := core.Pipe(ctx, core.Options{}, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	resp, err := scale.Call(ctx, caller, scaleReq{X: 1.5, Factor: 4})
	fmt.Println(resp.Y, err)
	// Output: 6 <nil>
}
