package core_test

import (
	"context"
	"fmt"
	"strconv"

	"github.com/rove-rpc/rove/core"
)

// A server stream read on the caller's goroutine: While runs once the
// request is out and before Call waits for the response, so no goroutine
// is needed to run the call while its items are received.
func ExampleCallOptions_while() {
	count := core.NewMethod("demo", "Count")
	router := core.NewRouter()
	router.Handle(count, func(ctx context.Context, req *core.Request) error {
		n, _ := strconv.Atoi(string(req.Payload()))
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		for i := 1; i <= n; i++ {
			if err := tx.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
				return err
			}
		}
		tx.Close()
		return req.Reply([]byte("done"), nil)
	})
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	ctx := context.Background()
	rx := caller.Conn().NewRx(core.DefaultWindow)
	defer rx.Close()
	sum := 0
	err = caller.Call(ctx, count, []byte("10"), &core.CallOptions{
		Channels: []core.Channel{rx},
		While: func() error {
			for range 10 {
				it, err := rx.Recv(ctx)
				if err != nil {
					return err
				}
				n, _ := strconv.Atoi(string(it.Payload))
				it.Release()
				sum += n
			}
			return nil
		},
	}, func(r core.Reply) error {
		fmt.Println("sum:", sum, "then", string(r.Payload))
		return nil
	})
	fmt.Println(err)
	// Output:
	// sum: 55 then done
	// <nil>
}
