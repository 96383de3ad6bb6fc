package core_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/testcert"
	"github.com/rove-rpc/rove/netpoll"
)

// A server and a client over mutual TLS, with an accept hook that admits
// only the client certificate it knows and a token in the handshake
// metadata. The refused client's Dial fails with ErrRejected, which is
// not worth retrying. (testcert makes a throwaway CA; use your own
// certificates.)
func ExampleOptions_acceptSession() {
	ca := testcert.NewCA("example CA")
	server := netpoll.TLS{Config: &tls.Config{
		Certificates: []tls.Certificate{ca.Server("kv.internal")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool,
	}}
	admit := func(ctx context.Context, req core.SessionRequest) error {
		if name := req.TLS.VerifiedChains[0][0].Subject.CommonName; name != "billing" {
			return core.Reject(name + " is not a client of this service")
		}
		if tok, _ := req.Metadata.Get("token"); tok.Str() != "s3cret" {
			return core.Reject("bad token")
		}
		return nil
	}
	srv, err := core.Serve(server, "tcp", "127.0.0.1:0", core.Options{AcceptSession: admit})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	dial := func(name string) error {
		client := netpoll.TLS{Config: &tls.Config{
			RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{ca.Client(name)},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sess, err := core.Dial(ctx, client, "tcp", srv.Addr().String(),
			core.Options{Metadata: core.Metadata{}.Add("token", core.StringValue("s3cret"), 0)})
		if err != nil {
			return err
		}
		return sess.Close()
	}
	fmt.Println("billing:", dial("billing"))
	err = dial("reports")
	fmt.Println("reports:", errors.Is(err, core.ErrRejected), core.IsRetryable(err))
	fmt.Println(err)
	// Output:
	// billing: <nil>
	// reports: true false
	// rove: handshake rejected by peer (refused): reports is not a client of this service
}
