package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/bytedance/sonic/decoder"
	"github.com/bytedance/sonic/encoder"
)

// Codec turns typed values into payloads and back.
type Codec interface {
	// AppendMarshal appends the encoding of v to dst.
	AppendMarshal(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into v. data is a view that is released after
	// the call, so v must not keep references into it.
	Unmarshal(data []byte, v any) error
}

// SonicCodec is the default codec: JSON through bytedance/sonic, encoding
// into pooled buffers and copying every string it decodes (payloads are
// views into pooled memory).
type SonicCodec struct{}

// sonic needs a *[]byte to encode into and a Decoder per decode; both come
// from pools so that a call allocates neither.
var (
	sonicBufs     = sync.Pool{New: func() any { return new([]byte) }}
	sonicDecoders = sync.Pool{New: func() any { return decoder.NewDecoder("") }}
)

// AppendMarshal implements Codec.
func (SonicCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	p := sonicBufs.Get().(*[]byte)
	*p = dst
	err := encoder.EncodeInto(p, v, 0)
	dst, *p = *p, nil
	sonicBufs.Put(p)
	return dst, err
}

// Unmarshal implements Codec. Decoded strings are copies (CopyString), so
// v never points into data.
func (SonicCodec) Unmarshal(data []byte, v any) error {
	dec := sonicDecoders.Get().(*decoder.Decoder)
	// A zero-copy string view of data: valid for this call only, and the
	// decoder copies every string it keeps.
	dec.Reset(unsafe.String(unsafe.SliceData(data), len(data)))
	dec.SetOptions(decoder.OptionCopyString | decoder.OptionValidateString)
	err := dec.Decode(v)
	if err == nil {
		err = dec.CheckTrailings()
	}
	dec.Reset("")
	sonicDecoders.Put(dec)
	return err
}

// TypedMethod binds a Method to its request and response types and a
// codec: the typed face of the raw API. The zero Codec means SonicCodec.
type TypedMethod[Req, Resp any] struct {
	Method
	Codec Codec
}

// NewTypedMethod returns the typed method service.name with SonicCodec.
func NewTypedMethod[Req, Resp any](service, name string) TypedMethod[Req, Resp] {
	return TypedMethod[Req, Resp]{Method: NewMethod(service, name)}
}

func (tm TypedMethod[Req, Resp]) codec() Codec {
	if tm.Codec == nil {
		return SonicCodec{}
	}
	return tm.Codec
}

// typedCall is the per-call state of TypedMethod.Call, pooled per type
// pair so that neither the values nor the reply callback escape per call.
type typedCall[Req, Resp any] struct {
	req    Req
	resp   Resp
	codec  Codec
	buf    []byte
	wantMD bool              // CallWith: keep the response metadata
	md     Metadata          // the response metadata, when wanted
	decode func(Reply) error // bound once to this typedCall
}

func (tc *typedCall[Req, Resp]) decodeReply(r Reply) error {
	if tc.wantMD {
		tc.md = r.Metadata()
	}
	if err := tc.codec.Unmarshal(r.Payload, &tc.resp); err != nil {
		return &CallError{Kind: ErrInvalidPayload, Message: "decoding the response", Cause: err}
	}
	return nil
}

// typedPools holds one pool of typedCall per type pair.
var typedPools sync.Map // reflect-free key: *typedCall[Req, Resp](nil) as any

func typedPool[Req, Resp any]() *sync.Pool {
	key := (*typedCall[Req, Resp])(nil)
	if p, ok := typedPools.Load(key); ok {
		return p.(*sync.Pool)
	}
	p, _ := typedPools.LoadOrStore(key, &sync.Pool{New: func() any {
		tc := new(typedCall[Req, Resp])
		tc.decode = tc.decodeReply
		return tc
	}})
	return p.(*sync.Pool)
}

// Call calls the method with req and decodes the result. Errors are as
// for Caller.Call; a response that does not decode is ErrInvalidPayload.
// A deadline comes with ctx; CallWith takes options.
//
// With SonicCodec, and no CallInterceptors or Stats on the session, the
// connection's reading goroutine decodes a response of up to 1 KiB itself
// before it wakes the caller: the bytes are still in its core's cache
// there, and sonic's decode never blocks. (As with net/rpc's client,
// which decodes every reply on its reading goroutine, a Resp type's own
// UnmarshalJSON or UnmarshalText methods then run there too: they must
// not block, or every call of the connection waits.) Other codecs, and
// larger responses, are decoded on the caller's goroutine.
func (tm TypedMethod[Req, Resp]) Call(ctx context.Context, cl *Caller, req Req) (Resp, error) {
	resp, _, err := tm.call(ctx, cl, req, nil, false)
	return resp, err
}

// CallWith is Call with options (request metadata, FailFast, channels
// bound to the call) that also returns the response's metadata.
func (tm TypedMethod[Req, Resp]) CallWith(ctx context.Context, cl *Caller, req Req, opts *CallOptions) (Resp, Metadata, error) {
	return tm.call(ctx, cl, req, opts, true)
}

func (tm TypedMethod[Req, Resp]) call(ctx context.Context, cl *Caller, req Req, opts *CallOptions, wantMD bool) (Resp, Metadata, error) {
	pool := typedPool[Req, Resp]()
	tc := pool.Get().(*typedCall[Req, Resp])
	defer func() {
		var zeroReq Req
		var zeroResp Resp
		tc.req, tc.resp, tc.codec, tc.md, tc.wantMD = zeroReq, zeroResp, nil, nil, false
		pool.Put(tc)
	}()
	tc.req, tc.codec, tc.wantMD = req, tm.codec(), wantMD
	b, err := tc.codec.AppendMarshal(tc.buf[:0], &tc.req)
	tc.buf = b
	if err != nil {
		var zero Resp
		return zero, nil, &CallError{Kind: ErrSendFailed, Message: "encoding the request", Cause: fmt.Errorf("%w: %w", ErrEncoding, err)}
	}
	if _, ok := tc.codec.(SonicCodec); ok {
		// Sonic's decode never blocks: the reading goroutine may run it.
		err = cl.c.invokeEarly(ctx, tm.Method, b, opts, tc.decode)
	} else {
		err = cl.Call(ctx, tm.Method, b, opts, tc.decode)
	}
	return tc.resp, tc.md, err
}

// Handle registers fn as the method's handler on r. A request that does
// not decode is answered InvalidPayload without calling fn. fn's error is
// sent as for HandlerFunc: an *Error (Errorf) carries a canonical code,
// ErrorValue a typed error value. fn reaches the call's *Request through
// RequestFrom(ctx): its metadata, its channels, and SetReplyMetadata for
// the response's. With SonicCodec, Handle compiles sonic's codec for Req
// and Resp before it returns, so that the first request does not wait for
// it (so do the stream methods' Handle).
func (tm TypedMethod[Req, Resp]) Handle(r *Router, fn func(ctx context.Context, req Req) (Resp, error)) {
	r.Handle(tm.Method, tm.handler(fn))
}

// HandleInline is Handle for a handler declared non-blocking, as
// Router.HandleInline: fn runs on the event loop that read the request,
// with no hand-off to a worker. It must never block, and its ctx must not
// outlive it (it is pooled). The decoded request is fn's own (its strings
// are copies), so fn may keep it.
func (tm TypedMethod[Req, Resp]) HandleInline(r *Router, fn func(ctx context.Context, req Req) (Resp, error)) {
	r.HandleInline(tm.Method, tm.handler(fn))
}

// handler is fn as a raw handler: decode, call, encode, reply. It compiles
// sonic's codec for the type pair first (see Handle).
func (tm TypedMethod[Req, Resp]) handler(fn func(ctx context.Context, req Req) (Resp, error)) HandlerFunc {
	codec := tm.codec()
	_ = pretouchSonic[Req, Resp](codec)
	pool := typedPool[Req, Resp]()
	return func(ctx context.Context, req *Request) error {
		tc := pool.Get().(*typedCall[Req, Resp])
		defer func() {
			var zeroReq Req
			var zeroResp Resp
			tc.req, tc.resp = zeroReq, zeroResp
			pool.Put(tc)
		}()
		if err := codec.Unmarshal(req.Payload(), &tc.req); err != nil {
			return &InvalidPayloadError{Err: err}
		}
		out, err := fn(ctx, tc.req)
		if err != nil {
			return err
		}
		tc.resp = out
		b, err := codec.AppendMarshal(tc.buf[:0], &tc.resp)
		tc.buf = b
		if err != nil {
			return err
		}
		req.mu.Lock()
		md := req.replyMD
		req.mu.Unlock()
		return req.Reply(b, md)
	}
}

// pretouchSonic compiles, when codec is SonicCodec, sonic's decoder for
// In and encoder for Out now instead of on the first use: compiling them
// took 5-10 ms and thousands of allocations on the first request or call
// of a type pair. (Values are encoded through a *Out, and sonic's encoder
// keys its cache by the type it is given.) Handle ignores the error: a
// failure only leaves the compilation to the first request, as without
// it.
func pretouchSonic[In, Out any](codec Codec) error {
	if _, ok := codec.(SonicCodec); !ok {
		return nil
	}
	return errors.Join(decoder.Pretouch(reflect.TypeFor[In]()), encoder.Pretouch(reflect.TypeFor[*Out]()))
}

// Pretouch prepares the caller's side now: with SonicCodec it compiles
// sonic's encoder for Req and decoder for Resp, which the first Call of
// this type pair would otherwise do, taking 5-10 ms and thousands of
// allocations. Call it at start-up in a client that must not pay that on
// its first call (Handle does the same for the handler's side). With
// another codec it does nothing. The error is sonic's, for a type it
// cannot compile.
func (tm TypedMethod[Req, Resp]) Pretouch() error { return pretouchSonic[Resp, Req](tm.codec()) }

// ErrorValue returns an error that a handler returns to send v, encoded
// with SonicCodec, as its own error value; the caller decodes it with
// CallError.Decode.
func ErrorValue(v any) error {
	b, err := SonicCodec{}.AppendMarshal(nil, v)
	if err != nil {
		return err
	}
	return &UserError{Payload: b}
}

// Decode decodes a user error's payload (ErrUser) into v with SonicCodec.
func (e *CallError) Decode(v any) error {
	if e.Kind != ErrUser {
		return errors.New("rove: not a user error: " + e.Error())
	}
	return SonicCodec{}.Unmarshal(e.Payload, v)
}
