package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
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

// A call that streams: the caller sends numbers on a channel, the handler
// sums them. Credit flow control keeps at most the window in flight.
func ExampleNewTx() {
	sum := core.NewMethod("demo", "Sum")
	router := core.NewRouter()
	router.Handle(sum, func(ctx context.Context, req *core.Request) error {
		raw, err := req.Rx(0) // the request's first channel
		if err != nil {
			return err
		}
		rx := core.RxOf[int](raw, nil)
		defer rx.Close()
		total := 0
		for {
			n, err := rx.Recv(ctx)
			if err == io.EOF {
				return req.Reply([]byte(strconv.Itoa(total)), nil)
			}
			if err != nil {
				return err
			}
			total += n
		}
	})
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	tx := core.NewTx[int](caller.Conn(), 4) // window: 4 items before a grant
	go func() {
		for i := 1; i <= 100; i++ {
			tx.Send(context.Background(), i)
		}
		tx.Close()
	}()
	err = caller.Call(context.Background(), sum, nil, &core.CallOptions{Channels: []core.Channel{tx}}, func(r core.Reply) error {
		fmt.Println("total:", string(r.Payload))
		return nil
	})
	fmt.Println(err)
	// Output:
	// total: 5050
	// <nil>
}

// Virtual connections: many logical connections in one session, each with
// its own handlers.
func ExampleSession_OpenConn() {
	hello := core.NewMethod("demo", "Hello")
	tenants := func(ctx context.Context, req core.ConnRequest) (core.ConnOptions, error) {
		v, _ := req.Metadata.Get("tenant")
		r := core.NewRouter()
		r.Handle(hello, func(ctx context.Context, q *core.Request) error {
			return q.Reply([]byte("hello from "+v.Str()+"'s connection"), nil)
		})
		return core.ConnOptions{Router: r}, nil
	}
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{AcceptConn: tenants})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()

	for _, tenant := range []string{"ann", "bob"} {
		conn, err := client.OpenConn(context.Background(), core.ConnOptions{
			Metadata: core.Metadata{}.Add("tenant", core.StringValue(tenant), 0),
		})
		if err != nil {
			panic(err)
		}
		caller := conn.Caller()
		caller.Call(context.Background(), hello, nil, nil, func(r core.Reply) error {
			fmt.Println(string(r.Payload))
			return nil
		})
		caller.Close() // releases this Caller only
		conn.Close()   // ends the virtual connection (dropping conn would, later)
	}
	// Output:
	// hello from ann's connection
	// hello from bob's connection
}
