package core

import "context"

// Interceptors wrap every handler a session serves and every call it
// makes: auth, logging, metrics, tracing. A Rove stream is a call with
// channels, so the same interceptors see streaming calls too (the call
// lasts until its outcome; its channels may outlive it).
//
// With none set, serving and calling take their usual path: no
// allocation, no indirection. Each interceptor costs a closure per call.

// ServerInterceptor wraps a handler: it may inspect req (Method,
// Metadata, Conn), refuse the call by returning an error without calling
// next (the caller gets the error as a handler's: a *UserError, an
// *Error, an *InvalidPayloadError, or Internal), or call next and observe
// the outcome it returns (nil: the handler replied). It runs where the
// handler runs: on the reading goroutine for HandleInline's handlers (it
// must not block there), on a worker otherwise.
type ServerInterceptor func(ctx context.Context, req *Request, next HandlerFunc) error

// CallFunc makes one call, as Caller.Call.
type CallFunc func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error

// CallInterceptor wraps a call this peer makes: it may add metadata
// (pass next a copy of opts: the caller's value is not its to change),
// refuse the call, or time it and observe its error. m's Service and Name
// are set when the Method came from NewMethod.
type CallInterceptor func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error, next CallFunc) error

// serveIntercepted runs r's handler under the session's interceptors,
// outermost first.
func (r *Request) serveIntercepted(ctx context.Context, ics []ServerInterceptor, h HandlerFunc) error {
	if len(ics) == 0 {
		return h(ctx, r)
	}
	return ics[0](ctx, r, func(ctx context.Context, req *Request) error {
		return req.serveIntercepted(ctx, ics[1:], h)
	})
}

// invoke makes a call on c under the session's call interceptors.
func (c *conn) invoke(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	if st := c.s.opts.Stats; st != nil {
		return c.invokeMeasured(ctx, st, m, req, opts, fn)
	}
	ics := c.s.opts.CallInterceptors
	if len(ics) == 0 {
		return c.call(ctx, m.ID, req, opts, fn, false)
	}
	return c.invokeChain(ctx, ics, m, req, opts, fn)
}

// invokeEarly is invoke for a reply callback that never blocks and keeps
// nothing of the Reply (a typed call's decode): with no interceptor or
// stats handler to see the Reply, the reading goroutine may run it (see
// outCall.early).
func (c *conn) invokeEarly(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	if c.s.opts.Stats != nil || len(c.s.opts.CallInterceptors) > 0 {
		return c.invoke(ctx, m, req, opts, fn)
	}
	return c.call(ctx, m.ID, req, opts, fn, true)
}

func (c *conn) invokeChain(ctx context.Context, ics []CallInterceptor, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	if len(ics) == 0 {
		return c.call(ctx, m.ID, req, opts, fn, false)
	}
	return ics[0](ctx, m, req, opts, fn, func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
		return c.invokeChain(ctx, ics[1:], m, req, opts, fn)
	})
}
