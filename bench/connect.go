package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
)

// connect-go (connectrpc.com/connect) over HTTP/2 in clear text, with a
// raw-bytes codec, as gRPC's peer here.

type connectRaw struct{}

func (connectRaw) Name() string { return "raw" }

// Marshal copies: connect recycles the buffers a codec returns, so handing
// it the caller's slice would let it write over the caller's payload.
func (connectRaw) Marshal(v any) ([]byte, error) {
	return append([]byte(nil), *(v.(*[]byte))...), nil
}

// MarshalAppend appends into connect's own buffer (no allocation).
func (connectRaw) MarshalAppend(dst []byte, v any) ([]byte, error) {
	return append(dst, *(v.(*[]byte))...), nil
}
func (connectRaw) Unmarshal(b []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], b...)
	return nil
}

const (
	connectEchoPath   = "/bench.Echo/Echo"
	connectStreamPath = "/bench.Echo/Stream"
)

func serveConnect(addr string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(connectEchoPath, connect.NewUnaryHandler(connectEchoPath,
		func(_ context.Context, req *connect.Request[[]byte]) (*connect.Response[[]byte], error) {
			return connect.NewResponse(req.Msg), nil
		}, connect.WithCodec(connectRaw{})))
	mux.Handle(connectStreamPath, connect.NewServerStreamHandler(connectStreamPath,
		func(_ context.Context, req *connect.Request[[]byte], st *connect.ServerStream[[]byte]) error {
			n, size, err := parseStreamRequest(*req.Msg)
			if err != nil {
				return connect.NewError(connect.CodeInvalidArgument, err)
			}
			item := make([]byte, size)
			for range n {
				if err := st.Send(&item); err != nil {
					return err
				}
			}
			return nil
		}, connect.WithCodec(connectRaw{})))
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// connectClient is one HTTP/2 connection's worth of client for path.
func connectClient(target, path string) (*connect.Client[[]byte, []byte], *http.Transport) {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols, TLSClientConfig: &tls.Config{}, MaxIdleConnsPerHost: 1}
	hc := &http.Client{Transport: tr}
	return connect.NewClient[[]byte, []byte](hc, "http://"+target+path, connect.WithCodec(connectRaw{})), tr
}

// dialConnectStream makes server-streaming calls on one HTTP/2 connection.
func dialConnectStream(target string) (streamer, func(), error) {
	cl, tr := connectClient(target, connectStreamPath)
	return func(items, size int) error {
		req := streamRequest(items, size)
		st, err := cl.CallServerStream(context.Background(), connect.NewRequest(&req))
		if err != nil {
			return err
		}
		defer st.Close()
		got := 0
		for st.Receive() {
			got++
		}
		if err := st.Err(); err != nil {
			return err
		}
		return countItems(got, items)
	}, func() { tr.CloseIdleConnections() }, nil
}

func dialConnect(target string) (caller, func(), error) {
	cl, tr := connectClient(target, connectEchoPath)
	return func(payload []byte) error {
		resp, err := cl.CallUnary(context.Background(), connect.NewRequest(&payload))
		if err == nil && resp.Msg == nil {
			err = errors.New("connect: empty response")
		}
		return err
	}, func() { tr.CloseIdleConnections() }, nil
}
