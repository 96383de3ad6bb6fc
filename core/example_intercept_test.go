package core_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/rove-rpc/rove/core"
)

// Interceptors: the server checks a token in each call's metadata and
// counts outcomes per method; the client adds the token to every call.
func ExampleServerInterceptor() {
	get := core.NewMethod("kv", "Get")
	router := core.NewRouter()
	router.Handle(get, func(ctx context.Context, req *core.Request) error {
		return req.Reply([]byte("v1"), nil)
	})

	auth := func(ctx context.Context, req *core.Request, next core.HandlerFunc) error {
		if tok, _ := req.Metadata().Get("authorization"); tok.Str() != "Bearer s3cret" {
			return &core.UserError{Payload: []byte("unauthenticated")}
		}
		return next(ctx, req)
	}
	var ok, failed atomic.Int64
	metrics := func(ctx context.Context, req *core.Request, next core.HandlerFunc) error {
		err := next(ctx, req)
		if err != nil {
			failed.Add(1)
		} else {
			ok.Add(1)
		}
		return err
	}
	withToken := func(ctx context.Context, m core.Method, req []byte, opts *core.CallOptions, fn func(core.Reply) error, next core.CallFunc) error {
		o := core.CallOptions{}
		if opts != nil {
			o = *opts // the caller's options are not ours to change
		}
		o.Metadata = append(o.Metadata[:len(o.Metadata):len(o.Metadata)], core.Metadata{}.Add("authorization", core.StringValue("Bearer s3cret"), core.Sensitive)...)
		return next(ctx, m, req, &o, fn)
	}

	client, server, err := core.Pipe(context.Background(),
		core.Options{CallInterceptors: []core.CallInterceptor{withToken}},
		core.Options{Router: router, ServerInterceptors: []core.ServerInterceptor{metrics, auth}})
	if err != nil {
		panic(err)
	}
	caller := client.Caller()
	err = caller.Call(context.Background(), get, nil, nil, func(r core.Reply) error {
		fmt.Printf("%s\n", r.Payload)
		return nil
	})
	fmt.Println(err)

	// A session without the token's interceptor is refused by auth.
	bare, server2, _ := core.Pipe(context.Background(), core.Options{},
		core.Options{Router: router, ServerInterceptors: []core.ServerInterceptor{metrics, auth}})
	c2 := bare.Caller()
	err = c2.Call(context.Background(), get, nil, nil, nil)
	var ce *core.CallError
	fmt.Println(errors.As(err, &ce) && string(ce.Payload) == "unauthenticated")

	// The handler's Reply sends the response before next returns, so a
	// caller can see its reply before metrics has counted the call. Close
	// waits for every handler, so the counts are final once the servers
	// are closed.
	caller.Close()
	c2.Close()
	client.Close()
	bare.Close()
	server.Close()
	server2.Close()
	fmt.Println("ok", ok.Load(), "failed", failed.Load())
	// Output:
	// v1
	// <nil>
	// true
	// ok 1 failed 1
}
