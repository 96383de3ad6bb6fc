package core

import (
	"cmp"
	"context"
	"runtime/pprof"
	"slices"
	"strings"

	"github.com/puzpuzpuz/xsync/v3"
)

// HandlerFunc serves one request. ctx is cancelled when the caller cancels,
// the request's deadline passes, or the session ends; it carries the
// deadline. req is valid until the handler returns.
//
// The handler answers by calling req.Reply, or by returning an error:
// *UserError sends its payload as the handler's own error, an
// *InvalidPayloadError sends InvalidPayload, anything else an internal
// error. Returning nil without replying, or panicking, still produces
// exactly one response (Internal), as does a cancelled call (Cancelled).
type HandlerFunc func(ctx context.Context, req *Request) error

type route struct {
	method Method
	h      HandlerFunc
	inline bool
	labels pprof.LabelSet // service and method, for Options.ProfileLabels
}

func newRoute(m Method, h HandlerFunc, inline bool) *route {
	return &route{method: m, h: h, inline: inline, labels: pprof.Labels("service", m.Service, "method", m.Name)}
}

// Router maps method ids to handlers. Methods can be added at any time,
// also while serving; lookups are lock-free (an xsync map). A Router may
// be shared by many sessions.
type Router struct {
	routes *xsync.MapOf[uint64, *route]
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{routes: xsync.NewMapOf[uint64, *route]()}
}

// Handle registers h for m; its handlers run on the session's goroutine
// pool. It replaces an earlier registration of the same method. ctx may
// be kept by goroutines h starts (it ends when h returns, if not before);
// req is valid only until h returns, when what it holds of the call is
// reused for another request.
func (r *Router) Handle(m Method, h HandlerFunc) { r.routes.Store(m.ID, newRoute(m, h, false)) }

// HandleInline registers a handler declared non-blocking: it runs on the
// link's reading goroutine (a gnet event loop), saving the hand-off to a
// worker. It must never block: no locks held long, no I/O, no waiting on
// ctx. Its Reply never blocks either (if the outbound buffer is full the
// response is handed to a goroutine). Its ctx and req are valid only until
// it returns (they are pooled: an inline call allocates nothing), so it must
// not hand them to other goroutines; Request.Retain still keeps the payload.
// A context it derives from ctx (context.WithTimeout, for a downstream
// call queued without waiting) registers with Request.AfterFunc, which
// keeps that call's Request out of the pool: the derived context stays
// valid, and ends when the handler returns.
func (r *Router) HandleInline(m Method, h HandlerFunc) {
	r.routes.Store(m.ID, newRoute(m, h, true))
}

// Methods returns the methods registered, sorted by service and name
// (a method registered by id alone has empty names).
func (r *Router) Methods() []Method {
	var out []Method
	r.routes.Range(func(_ uint64, rt *route) bool {
		out = append(out, rt.method)
		return true
	})
	slices.SortFunc(out, func(a, b Method) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

func (r *Router) lookup(id uint64) *route {
	if r == nil {
		return nil
	}
	rt, _ := r.routes.Load(id)
	return rt
}
