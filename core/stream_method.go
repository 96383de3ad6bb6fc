package core

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Streaming methods declared with their item types, so that the caller
// and the handler agree on the channels by type, checked by the compiler,
// not by a positional convention. Each is a call binding channels (the
// runtime's streaming model): items flow with credit flow control while
// the call is open, and the call's outcome (a response, or an error with
// a code) comes once the handler returns. Items are encoded with the
// method's Codec (SonicCodec by default), as typed calls are.

// ServerStream is a method whose handler answers one request with a
// stream of items.
type ServerStream[Req, Item any] struct {
	Method
	Codec Codec
	// Window is the credit the caller grants (DefaultWindow if 0).
	Window int
}

// ClientStream is a method whose caller sends a stream of items and gets
// one response.
type ClientStream[Item, Resp any] struct {
	Method
	Codec  Codec
	Window int // the credit the handler grants (DefaultWindow if 0)
}

// BidiStream is a method with a stream each way.
type BidiStream[In, Out any] struct {
	Method
	Codec  Codec
	Window int // the credit each receiver grants (DefaultWindow if 0)
}

// NewServerStream declares the server-streaming method service.name.
func NewServerStream[Req, Item any](service, name string) ServerStream[Req, Item] {
	return ServerStream[Req, Item]{Method: NewMethod(service, name)}
}

// NewClientStream declares the client-streaming method service.name.
func NewClientStream[Item, Resp any](service, name string) ClientStream[Item, Resp] {
	return ClientStream[Item, Resp]{Method: NewMethod(service, name)}
}

// NewBidiStream declares the bidirectional method service.name.
func NewBidiStream[In, Out any](service, name string) BidiStream[In, Out] {
	return BidiStream[In, Out]{Method: NewMethod(service, name)}
}

// Pretouch prepares the caller's side now, as TypedMethod.Pretouch does:
// sonic's encoder for Req and decoder for Item.
func (m ServerStream[Req, Item]) Pretouch() error {
	return pretouchSonic[Item, Req](codecOr(m.Codec))
}

// Pretouch prepares the caller's side now, as TypedMethod.Pretouch does:
// sonic's encoder for Item and decoder for Resp.
func (m ClientStream[Item, Resp]) Pretouch() error {
	return pretouchSonic[Resp, Item](codecOr(m.Codec))
}

// Pretouch prepares the caller's side now, as TypedMethod.Pretouch does:
// sonic's encoder for In (what the caller sends) and decoder for Out.
func (m BidiStream[In, Out]) Pretouch() error {
	return pretouchSonic[Out, In](codecOr(m.Codec))
}

func codecOr(c Codec) Codec {
	if c == nil {
		return SonicCodec{}
	}
	return c
}

func windowOr(w int) int {
	if w <= 0 {
		return DefaultWindow
	}
	return w
}

// pendingCall runs a call on a goroutine of its own while its channels
// are used, and keeps its outcome.
type pendingCall struct {
	done chan struct{}
	err  error
	resp []byte
}

func startCall(ctx context.Context, cl *Caller, m Method, req []byte, opts *CallOptions, chans ...Channel) *pendingCall {
	o := CallOptions{}
	if opts != nil {
		o = *opts
	}
	o.Channels = append(o.Channels[:len(o.Channels):len(o.Channels)], chans...)
	pc := &pendingCall{done: make(chan struct{})}
	go func() {
		defer close(pc.done)
		pc.err = cl.Call(ctx, m, req, &o, func(r Reply) error {
			pc.resp = append([]byte(nil), r.Payload...)
			return nil
		})
	}()
	return pc
}

func (pc *pendingCall) wait() error {
	<-pc.done
	return pc.err
}

// outcome turns the error that ended a stream's Recv into what the caller
// should see: after the last item (io.EOF), the call's outcome once it
// comes; the call's error if it already failed; else recvErr (ctx ended).
func (pc *pendingCall) outcome(ctx context.Context, recvErr error) error {
	if errors.Is(recvErr, io.EOF) {
		select {
		case <-pc.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if pc.err != nil {
			return pc.err
		}
		return io.EOF
	}
	select {
	case <-pc.done:
		if pc.err != nil {
			return pc.err
		}
	default:
	}
	return recvErr
}

// Handle registers fn as the handler: it gets the decoded request and a
// Tx to send items on (closed for it when fn returns); its error is the
// call's outcome, as for HandlerFunc (an *Error carries a code).
func (m ServerStream[Req, Item]) Handle(r *Router, fn func(ctx context.Context, req Req, out *Tx[Item]) error) {
	codec := codecOr(m.Codec)
	_ = pretouchSonic[Req, Item](codec)
	r.Handle(m.Method, func(ctx context.Context, rq *Request) error {
		var req Req
		if err := codec.Unmarshal(rq.Payload(), &req); err != nil {
			return &InvalidPayloadError{Err: err}
		}
		raw, err := rq.Tx(0)
		if err != nil {
			return &InvalidPayloadError{Err: fmt.Errorf("%s: %w", m.Method, err)}
		}
		out := TxOf[Item](raw, codec)
		err = fn(ctx, req, out)
		out.Close()
		if err != nil {
			return err
		}
		return rq.Reply(nil, nil)
	})
}

// ServerStreamCall is the caller's side of a server-streaming call.
type ServerStreamCall[Item any] struct {
	in   *Rx[Item]
	call *pendingCall
}

// Call starts the call; read the items with Recv. opts may add metadata.
func (m ServerStream[Req, Item]) Call(ctx context.Context, cl *Caller, req Req, opts *CallOptions) (*ServerStreamCall[Item], error) {
	codec := codecOr(m.Codec)
	b, err := codec.AppendMarshal(nil, &req)
	if err != nil {
		return nil, &CallError{Kind: ErrSendFailed, Message: "encoding the request", Cause: fmt.Errorf("%w: %w", ErrEncoding, err)}
	}
	in := RxOf[Item](cl.Conn().NewRx(windowOr(m.Window)), codec)
	return &ServerStreamCall[Item]{in: in, call: startCall(ctx, cl, m.Method, b, opts, in)}, nil
}

// Recv returns the next item. After the last it returns the call's
// outcome: io.EOF when the handler succeeded, else its error. If ctx ends
// first, its error (the call goes on; Close ends it).
func (s *ServerStreamCall[Item]) Recv(ctx context.Context) (Item, error) {
	v, err := s.in.Recv(ctx)
	if err == nil {
		return v, nil
	}
	return v, s.call.outcome(ctx, err)
}

// Close stops the stream early (the handler's Send then fails, and its
// Tx.Done is closed) and waits for the call to end.
func (s *ServerStreamCall[Item]) Close() error {
	s.in.Close()
	return s.call.wait()
}

// Handle registers fn as the handler: it reads the caller's items from
// in (io.EOF after the last) and returns the response.
func (m ClientStream[Item, Resp]) Handle(r *Router, fn func(ctx context.Context, in *Rx[Item]) (Resp, error)) {
	codec := codecOr(m.Codec)
	_ = pretouchSonic[Item, Resp](codec)
	r.Handle(m.Method, func(ctx context.Context, rq *Request) error {
		raw, err := rq.Rx(0)
		if err != nil {
			return &InvalidPayloadError{Err: fmt.Errorf("%s: %w", m.Method, err)}
		}
		in := RxOf[Item](raw, codec)
		resp, err := fn(ctx, in)
		in.Close()
		if err != nil {
			return err
		}
		b, err := codec.AppendMarshal(nil, &resp)
		if err != nil {
			return err
		}
		return rq.Reply(b, nil)
	})
}

// ClientStreamCall is the caller's side of a client-streaming call.
type ClientStreamCall[Item, Resp any] struct {
	out   *Tx[Item]
	call  *pendingCall
	codec Codec
}

// Call starts the call; send items with Send, then CloseAndRecv.
func (m ClientStream[Item, Resp]) Call(ctx context.Context, cl *Caller, opts *CallOptions) *ClientStreamCall[Item, Resp] {
	codec := codecOr(m.Codec)
	out := TxOf[Item](cl.Conn().NewTx(windowOr(m.Window)), codec)
	return &ClientStreamCall[Item, Resp]{out: out, codec: codec, call: startCall(ctx, cl, m.Method, nil, opts, out)}
}

// Send sends one item, waiting for credit within ctx.
func (s *ClientStreamCall[Item, Resp]) Send(ctx context.Context, v Item) error {
	err := s.out.Send(ctx, v)
	if err != nil {
		select {
		case <-s.call.done: // the call ended first: its outcome says why
			if s.call.err != nil {
				return s.call.err
			}
		default:
		}
	}
	return err
}

// CloseAndRecv ends the stream and waits for the response.
func (s *ClientStreamCall[Item, Resp]) CloseAndRecv() (Resp, error) {
	var resp Resp
	s.out.Close()
	if err := s.call.wait(); err != nil {
		return resp, err
	}
	if err := s.codec.Unmarshal(s.call.resp, &resp); err != nil {
		return resp, &CallError{Kind: ErrInvalidPayload, Message: "decoding the response", Cause: err}
	}
	return resp, nil
}

// Handle registers fn as the handler: it reads from in and sends on out
// (closed for it when fn returns).
func (m BidiStream[In, Out]) Handle(r *Router, fn func(ctx context.Context, in *Rx[In], out *Tx[Out]) error) {
	codec := codecOr(m.Codec)
	_ = pretouchSonic[In, Out](codec)
	r.Handle(m.Method, func(ctx context.Context, rq *Request) error {
		rawIn, err := rq.Rx(0)
		if err != nil {
			return &InvalidPayloadError{Err: fmt.Errorf("%s: %w", m.Method, err)}
		}
		rawOut, err := rq.Tx(1)
		if err != nil {
			rawIn.Close()
			return &InvalidPayloadError{Err: fmt.Errorf("%s: %w", m.Method, err)}
		}
		in, out := RxOf[In](rawIn, codec), TxOf[Out](rawOut, codec)
		err = fn(ctx, in, out)
		in.Close()
		out.Close()
		if err != nil {
			return err
		}
		return rq.Reply(nil, nil)
	})
}

// BidiStreamCall is the caller's side of a bidirectional call.
type BidiStreamCall[In, Out any] struct {
	out  *Tx[In]
	in   *Rx[Out]
	call *pendingCall
}

// Call starts the call: Send and Recv may run on different goroutines.
func (m BidiStream[In, Out]) Call(ctx context.Context, cl *Caller, opts *CallOptions) *BidiStreamCall[In, Out] {
	codec := codecOr(m.Codec)
	w := windowOr(m.Window)
	out := TxOf[In](cl.Conn().NewTx(w), codec)
	in := RxOf[Out](cl.Conn().NewRx(w), codec)
	return &BidiStreamCall[In, Out]{out: out, in: in, call: startCall(ctx, cl, m.Method, nil, opts, out, in)}
}

// Send sends one item to the handler.
func (s *BidiStreamCall[In, Out]) Send(ctx context.Context, v In) error { return s.out.Send(ctx, v) }

// CloseSend tells the handler no more items come.
func (s *BidiStreamCall[In, Out]) CloseSend() error { return s.out.Close() }

// Recv returns the handler's next item; after the last, the call's
// outcome: io.EOF when the handler succeeded, else its error.
func (s *BidiStreamCall[In, Out]) Recv(ctx context.Context) (Out, error) {
	v, err := s.in.Recv(ctx)
	if err == nil {
		return v, nil
	}
	return v, s.call.outcome(ctx, err)
}

// Close ends both directions early and waits for the call to end.
func (s *BidiStreamCall[In, Out]) Close() error {
	s.out.Close()
	s.in.Close()
	return s.call.wait()
}
