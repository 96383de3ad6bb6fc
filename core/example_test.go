package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// A server and a client over gnet event loops on loopback, with a raw
// echo method: payloads are zero-copy views.
func Example() {
	echo := core.NewMethod("demo", "Echo")
	router := core.NewRouter()
	router.Handle(echo, func(ctx context.Context, req *core.Request) error {
		return req.Reply(req.Payload(), nil) // the payload is valid until we return
	})

	tr := netpoll.NewGnet(netpoll.GnetOptions{})
	defer tr.Close()
	srv, err := core.Serve(tr, "tcp", "127.0.0.1:0", core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sess, err := core.Dial(ctx, tr, "tcp", srv.Addr().String(), core.Options{})
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	caller := sess.Caller()
	defer caller.Close()

	err = caller.Call(ctx, echo, []byte("hello"), nil, func(r core.Reply) error {
		fmt.Printf("%s\n", r.Payload) // valid during this callback
		return nil
	})
	fmt.Println(err)
	// Output:
	// hello
	// <nil>
}

type sumReq struct{ Numbers []int }
type sumResp struct{ Total int }

// Typed methods: request and response types, encoded with sonic.
func ExampleTypedMethod() {
	sum := core.NewTypedMethod[sumReq, sumResp]("calc", "Sum")
	router := core.NewRouter()
	sum.Handle(router, func(ctx context.Context, req sumReq) (sumResp, error) {
		if len(req.Numbers) == 0 {
			return sumResp{}, core.ErrorValue(map[string]string{"reason": "nothing to add"})
		}
		var t int
		for _, n := range req.Numbers {
			t += n
		}
		return sumResp{Total: t}, nil
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

	resp, err := sum.Call(ctx, caller, sumReq{Numbers: []int{1, 2, 3}})
	fmt.Println(resp.Total, err)

	_, err = sum.Call(ctx, caller, sumReq{})
	var ce *core.CallError
	var detail map[string]string
	if errors.Is(err, core.ErrUser) && errors.As(err, &ce) && ce.Decode(&detail) == nil {
		fmt.Println("user error:", detail["reason"])
	}
	// Output:
	// 6 <nil>
	// user error: nothing to add
}

// Cancelling the context cancels the call on both sides at once.
func ExampleCaller_Call_cancel() {
	wait := core.NewMethod("demo", "Wait")
	router := core.NewRouter()
	router.Handle(wait, func(ctx context.Context, req *core.Request) error {
		<-ctx.Done() // the caller's cancel reaches the handler
		return ctx.Err()
	})
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = caller.Call(ctx, wait, nil, nil, nil)
	fmt.Println(errors.Is(err, core.ErrCancelled), errors.Is(err, context.DeadlineExceeded), core.IsRetryable(err))
	// Output:
	// true true false
}
