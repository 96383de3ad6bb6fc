package core

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// Server interceptors run outermost first around every handler, inline
// or not, see the method and metadata, may refuse a call, and see the
// handler's outcome.
func TestServerInterceptors(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		var mu sync.Mutex
		var trail []string
		note := func(s string) { mu.Lock(); trail = append(trail, s); mu.Unlock() }
		auth := func(ctx context.Context, req *Request, next HandlerFunc) error {
			if tok, ok := req.Metadata().Get("token"); !ok || tok.Str() != "ok" {
				note("auth refused " + req.Method().Name)
				return &UserError{Payload: []byte("unauthenticated")}
			}
			note("auth in")
			err := next(ctx, req)
			note("auth out")
			return err
		}
		logging := func(ctx context.Context, req *Request, next HandlerFunc) error {
			note("log in " + req.Method().Name)
			err := next(ctx, req)
			if err != nil {
				note("log out: " + err.Error())
			} else {
				note("log out: ok")
			}
			return err
		}
		failing := NewMethod("test", "failing")
		r := NewRouter()
		r.HandleInline(mEcho, echo)
		r.Handle(failing, func(ctx context.Context, req *Request) error { return &UserError{Payload: []byte("nope")} })
		client, _ := tr.pair(t, Options{}, Options{Router: r, ServerInterceptors: []ServerInterceptor{auth, logging}})
		cl := client.Caller()
		defer cl.Close()
		withToken := &CallOptions{Metadata: Metadata{}.Add("token", StringValue("ok"), 0)}

		if got, err := call(context.Background(), cl, mEcho, []byte("hi"), withToken); err != nil || string(got) != "hi" {
			t.Fatalf("echo: %q %v", got, err)
		}
		_, err := call(context.Background(), cl, failing, nil, withToken)
		var ce *CallError
		if !errors.As(err, &ce) || string(ce.Payload) != "nope" {
			t.Fatalf("failing: %v", err)
		}
		_, err = call(context.Background(), cl, mEcho, []byte("hi"))
		if !errors.As(err, &ce) || string(ce.Payload) != "unauthenticated" {
			t.Fatalf("without a token: %v", err)
		}
		want := []string{
			"auth in", "log in echo", "log out: ok", "auth out",
			"auth in", "log in failing", "log out: rove: user error: nope", "auth out",
			"auth refused echo",
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(trail, want) {
			t.Fatalf("trail\n%q\nwant\n%q", trail, want)
		}
	})
}

// Call interceptors wrap every call, outermost first: they add metadata
// for the peer (without touching the caller's options), see the method's
// names and the call's error, and may refuse a call before it is sent.
func TestCallInterceptors(t *testing.T) {
	var trail []string
	addTenant := func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error, next CallFunc) error {
		o := CallOptions{}
		if opts != nil {
			o = *opts
		}
		o.Metadata = append(slices.Clone(o.Metadata), Metadata{}.Add("tenant", StringValue("acme"), 0)...)
		return next(ctx, m, req, &o, fn)
	}
	record := func(ctx context.Context, m Method, req []byte, opts *CallOptions, fn func(Reply) error, next CallFunc) error {
		if m.Name == "forbidden" {
			trail = append(trail, "refused")
			return errors.New("not from this client")
		}
		err := next(ctx, m, req, opts, fn)
		trail = append(trail, m.Service+"/"+m.Name+": "+errText(err))
		return err
	}
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		v, _ := req.Metadata().Get("tenant")
		return req.Reply([]byte(v.Str()), nil)
	})
	client, _ := transports()[0].pair(t, Options{CallInterceptors: []CallInterceptor{record, addTenant}}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	mine := &CallOptions{}
	got, err := call(context.Background(), cl, mEcho, nil, mine)
	if err != nil || string(got) != "acme" {
		t.Fatalf("echo: %q %v", got, err)
	}
	if len(mine.Metadata) != 0 {
		t.Fatal("the interceptor changed the caller's options")
	}
	if _, err := call(context.Background(), cl, NewMethod("test", "forbidden"), nil); err == nil || err.Error() != "not from this client" {
		t.Fatalf("forbidden: %v", err)
	}
	if _, err := call(context.Background(), cl, mSlow, nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("unknown: %v", err)
	}
	want := []string{"test/echo: ok", "refused", "test/slow: unknown method"}
	if !slices.Equal(trail, want) {
		t.Fatalf("trail\n%q\nwant\n%q", trail, want)
	}
}

func errText(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnknownMethod):
		return "unknown method"
	}
	return err.Error()
}
