package core_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/rove-rpc/rove/core"
)

type getReq struct{ Key string }
type getResp struct{ Value string }

// Error codes: a typed handler fails with NotFound and details; the
// caller tells it apart from other failures by code.
func ExampleErrorf() {
	get := core.NewTypedMethod[getReq, getResp]("kv", "Get")
	router := core.NewRouter()
	store := map[string]string{"a": "1"}
	get.Handle(router, func(ctx context.Context, req getReq) (getResp, error) {
		v, ok := store[req.Key]
		if !ok {
			e, err := core.Errorf(core.NotFound, "no key %q", req.Key).WithDetails(map[string]int{"keys": len(store)})
			if err != nil {
				return getResp{}, err
			}
			return getResp{}, e
		}
		return getResp{Value: v}, nil
	})
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: router})
	if err != nil {
		panic(err)
	}
	defer server.Close()
	defer client.Close()
	caller := client.Caller()
	defer caller.Close()

	_, err = get.Call(context.Background(), caller, getReq{Key: "b"})
	fmt.Println(err)
	fmt.Println(errors.Is(err, &core.Error{Code: core.NotFound}), core.CodeOf(err), core.IsRetryable(err))
	details, _ := core.DetailsAs[map[string]int](err)
	fmt.Println(details["keys"])
	// Output:
	// rove: NotFound: no key "b"
	// true NotFound false
	// 1
}
