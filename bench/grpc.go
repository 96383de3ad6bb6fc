package main

import (
	"context"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rawCodec passes []byte payloads through: no protobuf cost, so gRPC is
// measured at its fastest.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

var echoDesc = grpc.ServiceDesc{
	ServiceName: "bench.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &in, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			// The request is the item count and size, as loadgen's.
			var req []byte
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			n, size, err := parseStreamRequest(req)
			if err != nil {
				return err
			}
			item := make([]byte, size)
			for range n {
				if err := stream.SendMsg(&item); err != nil {
					return err
				}
			}
			return nil
		},
	}},
}

var streamDesc = grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}

// dialGRPCStream makes server-streaming calls on one gRPC connection.
func dialGRPCStream(target string) (streamer, func(), error) {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return nil, nil, err
	}
	return func(items, size int) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := cc.NewStream(ctx, &streamDesc, "/bench.Echo/Stream")
		if err != nil {
			return err
		}
		req := streamRequest(items, size)
		if err := st.SendMsg(&req); err != nil {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		var item []byte
		got := 0
		for {
			err := st.RecvMsg(&item)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			got++
		}
		return countItems(got, items)
	}, func() { cc.Close() }, nil
}

func serveGRPC(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	var impl any = struct{}{}
	s.RegisterService(&echoDesc, impl)
	go s.Serve(ln)
	return s.Stop, nil
}

func dialGRPC(target string) (caller, func(), error) {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return nil, nil, err
	}
	return func(payload []byte) error {
		var resp []byte
		return cc.Invoke(context.Background(), "/bench.Echo/Echo", &payload, &resp)
	}, func() { cc.Close() }, nil
}
