package core

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type keyDetails struct {
	Key   string `json:"key"`
	Shard int    `json:"shard"`
}

// A handler's *Error reaches the caller with its code, message and typed
// details, matchable with errors.Is and errors.As, its text showing code
// and message; the server's interceptors see the same error.
func TestErrorCodesEndToEnd(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		get := NewMethod("kv", "Get")
		r := NewRouter()
		r.Handle(get, func(ctx context.Context, req *Request) error {
			e, err := Errorf(NotFound, "no key %q", req.Payload()).WithDetails(keyDetails{Key: string(req.Payload()), Shard: 3})
			if err != nil {
				return err
			}
			return e
		})
		var seen atomic.Uint32 // the network gives the race detector no edge
		observe := func(ctx context.Context, req *Request, next HandlerFunc) error {
			err := next(ctx, req)
			seen.Store(uint32(CodeOf(err)))
			return err
		}
		client, _ := tr.pair(t, Options{}, Options{Router: r, ServerInterceptors: []ServerInterceptor{observe}})
		cl := client.Caller()
		defer cl.Close()
		_, err := call(context.Background(), cl, get, []byte("a"))
		var ae *Error
		switch {
		case !errors.As(err, &ae) || ae.Code != NotFound || ae.Message != `no key "a"`:
			t.Fatalf("errors.As: %v", err)
		case !errors.Is(err, &Error{Code: NotFound}) || errors.Is(err, &Error{Code: PermissionDenied}):
			t.Fatalf("errors.Is by code: %v", err)
		case !errors.Is(err, ErrApplication) || IsRetryable(err) || CodeOf(err) != NotFound:
			t.Fatalf("kind %v, code %v", err, CodeOf(err))
		case err.Error() != `rove: NotFound: no key "a"`:
			t.Fatalf("text %q", err.Error())
		case Code(seen.Load()) != NotFound:
			t.Fatalf("the interceptor saw %v", Code(seen.Load()))
		}
		if d, ok := DetailsAs[keyDetails](err); !ok || d != (keyDetails{Key: "a", Shard: 3}) {
			t.Fatalf("details %+v %v", d, ok)
		}
	})
}

// CodeOf gives every outcome a canonical code, not only *Error.
func TestCodeOf(t *testing.T) {
	deadline, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-deadline.Done()
	for _, c := range []struct {
		err  error
		want Code
	}{
		{nil, OK},
		{errors.New("plain"), Unknown},
		{Errorf(PermissionDenied, "no"), PermissionDenied},
		{&CallError{Kind: ErrApplication, Cause: Errorf(Aborted, "x")}, Aborted},
		{&CallError{Kind: ErrCancelled, Cause: deadline.Err()}, DeadlineExceeded},
		{&CallError{Kind: ErrCancelled}, Canceled},
		{&CallError{Kind: ErrUnknownMethod}, Unimplemented},
		{&CallError{Kind: ErrInvalidPayload}, InvalidArgument},
		{&CallError{Kind: ErrUnavailable}, Unavailable},
		{&CallError{Kind: ErrConnectionClosed}, Unavailable},
		{&CallError{Kind: ErrTooManyRequests}, ResourceExhausted},
		{&CallError{Kind: ErrInternal}, Internal},
		{&CallError{Kind: ErrUser}, Unknown},
	} {
		if got := CodeOf(c.err); got != c.want {
			t.Errorf("CodeOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if Code(99).String() != "Code(99)" || Unauthenticated.String() != "Unauthenticated" {
		t.Fatal("code names")
	}
	if errorFromPayload([]byte{0xff}).Code != Internal {
		t.Fatal("an undecodable error payload is not Internal")
	}
}
