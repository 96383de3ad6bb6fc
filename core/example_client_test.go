package core_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// A Client keeps a session to a server across restarts and graceful
// drains: it redials with back-off, moves to a new session when the
// server sends GoAway, and retries calls that did not run, or that are
// marked idempotent.
func ExampleClient() {
	get := core.NewMethod("kv", "Get")
	router := core.NewRouter()
	router.Handle(get, func(ctx context.Context, req *core.Request) error {
		return req.Reply([]byte("value of "+string(req.Payload())), nil)
	})
	tr := netpoll.Std{}
	srv, err := core.Serve(tr, "tcp", "127.0.0.1:0", core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	addr := srv.Addr().String()

	client := core.NewClient(func(ctx context.Context) (*core.Session, error) {
		return core.Dial(ctx, tr, "tcp", addr, core.Options{})
	}, core.ClientOptions{PerTry: time.Second})
	defer client.Close()

	call := func(key string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := client.Call(ctx, get, []byte(key), &core.ClientCallOptions{Idempotent: true}, func(r core.Reply) error {
			fmt.Printf("%s\n", r.Payload)
			return nil
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	call("a")
	// A new server version takes over the address: the old one drains.
	_ = srv.Drain(context.Background())
	srv, err = core.Serve(tr, "tcp", addr, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	call("b")
	// Output:
	// value of a
	// value of b
}
