package main

import (
	"context"
	"errors"
	"io"
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

// Stream is the server stream: the mux reads the request, then the
// handler sends the items on the stream.
func (drpcEcho) Stream(in *[]byte, st drpc.Stream) error {
	n, size, err := parseStreamRequest(*in)
	if err != nil {
		return err
	}
	item := make([]byte, size)
	for range n {
		if err := st.MsgSend(&item, drpcRaw{}); err != nil {
			return err
		}
	}
	return nil
}

type drpcEchoDesc struct{}

func (drpcEchoDesc) NumMethods() int { return 2 }
func (drpcEchoDesc) Method(n int) (string, drpc.Encoding, drpc.Receiver, any, bool) {
	switch n {
	case 0:
		return "/bench.Echo/Echo", drpcRaw{}, func(srv any, ctx context.Context, in1, _ any) (drpc.Message, error) {
			return srv.(drpcEcho).Echo(ctx, in1.(*[]byte))
		}, drpcEcho.Echo, true
	case 1:
		return "/bench.Echo/Stream", drpcRaw{}, func(srv any, _ context.Context, in1, in2 any) (drpc.Message, error) {
			return nil, srv.(drpcEcho).Stream(in1.(*[]byte), in2.(drpc.Stream))
		}, drpcEcho.Stream, true
	}
	return "", nil, nil, nil, false
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

// drpcPool dials inflight drpc connections: one per call in flight.
func drpcPool(target string, inflight int) (chan *drpcconn.Conn, func(), error) {
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
	return pool, closeAll, nil
}

// dialDRPCStream makes server-streaming calls, each on a connection of
// the pool.
func dialDRPCStream(target string, inflight int) (streamer, func(), error) {
	pool, closeAll, err := drpcPool(target, inflight)
	if err != nil {
		return nil, nil, err
	}
	return func(items, size int) error {
		c := <-pool
		defer func() { pool <- c }()
		st, err := c.NewStream(context.Background(), "/bench.Echo/Stream", drpcRaw{})
		if err != nil {
			return err
		}
		defer st.Close()
		req := streamRequest(items, size)
		if err := st.MsgSend(&req, drpcRaw{}); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		got := 0
		for {
			var item []byte
			err := st.MsgRecv(&item, drpcRaw{})
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			got++
		}
		return countItems(got, items)
	}, closeAll, nil
}

func dialDRPC(target string, inflight int) (caller, func(), error) {
	pool, closeAll, err := drpcPool(target, inflight)
	if err != nil {
		return nil, nil, err
	}
	return func(payload []byte) error {
		c := <-pool
		var out []byte
		err := c.Invoke(context.Background(), "/bench.Echo/Echo", drpcRaw{}, &payload, &out)
		pool <- c
		return err
	}, closeAll, nil
}
