package main

import (
	"context"
	"net"

	"storj.io/drpc"
	"storj.io/drpc/drpcconn"
	"storj.io/drpc/drpcmux"
	"storj.io/drpc/drpcserver"
)

// drpc (storj.io/drpc) with a raw-bytes encoding, as gRPC's peer here. A
// drpc connection carries one call at a time, so a client "connection"
// is a pool of inflight drpc connections, one per call in flight.

type drpcRaw struct{}

func (drpcRaw) Marshal(msg drpc.Message) ([]byte, error) { return *(msg.(*[]byte)), nil }
func (drpcRaw) Unmarshal(buf []byte, msg drpc.Message) error {
	p := msg.(*[]byte)
	*p = append((*p)[:0], buf...)
	return nil
}

type drpcEcho struct{}

func (drpcEcho) Echo(_ context.Context, in *[]byte) (*[]byte, error) { return in, nil }

type drpcEchoDesc struct{}

func (drpcEchoDesc) NumMethods() int { return 1 }
func (drpcEchoDesc) Method(n int) (string, drpc.Encoding, drpc.Receiver, any, bool) {
	if n != 0 {
		return "", nil, nil, nil, false
	}
	return "/bench.Echo/Echo", drpcRaw{}, func(srv any, ctx context.Context, in1, _ any) (drpc.Message, error) {
		return srv.(drpcEcho).Echo(ctx, in1.(*[]byte))
	}, drpcEcho.Echo, true
}

func serveDRPC(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := drpcmux.New()
	if err := mux.Register(drpcEcho{}, drpcEchoDesc{}); err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = drpcserver.New(mux).Serve(ctx, ln) }()
	return func() { cancel(); <-done }, nil
}

func dialDRPC(target string, inflight int) (caller, func(), error) {
	pool := make(chan *drpcconn.Conn, inflight)
	var all []*drpcconn.Conn
	closeAll := func() {
		for _, c := range all {
			c.Close()
		}
	}
	for range inflight {
		nc, err := net.Dial("tcp", target)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		c := drpcconn.New(nc)
		all = append(all, c)
		pool <- c
	}
	return func(payload []byte) error {
		c := <-pool
		var out []byte
		err := c.Invoke(context.Background(), "/bench.Echo/Echo", drpcRaw{}, &payload, &out)
		pool <- c
		return err
	}, closeAll, nil
}
