package loadtest_test

import (
	"context"
	"os"

	"github.com/rove-rpc/rove/cmd/loadgen/loadtest"
	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// A load test as code: its own sessions, payloads and checks, run with
// loadgen's open loop at 5,000 calls/s for 10 s and written as JSON.
func ExampleRun() {
	get := core.NewTypedMethod[map[string]string, map[string]string]("kv.v1", "Get")
	ctx := context.Background()
	sess, err := core.Dial(ctx, netpoll.Std{}, "tcp", "127.0.0.1:9000", core.Options{})
	if err != nil {
		return // no server in this example
	}
	defer sess.Close()
	caller := sess.Caller()
	defer caller.Close()
	keys := []string{"a", "b", "c"}
	test := loadtest.Test{
		Name: "kv.v1/Get over three keys",
		Call: func(ctx context.Context, worker int) error {
			_, err := get.Call(ctx, caller, map[string]string{"key": keys[worker%len(keys)]})
			return err // NotFound and the like are counted by code
		},
	}
	os.Exit(loadtest.Run(test, []string{"-rate", "5k", "-d", "10s", "-json", "kv.json"}, os.Stdout, os.Stderr))
}
