package core

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

type rangeReq struct{ From, To int }
type num struct{ N int }
type total struct{ Sum, Count int }

// A server-streaming method: items in order, then io.EOF; a handler's
// error (with its code) after the items it sent; Close stops a handler
// that waits for more to send.
func TestServerStreamMethod(t *testing.T) {
	count := NewServerStream[rangeReq, num]("test", "count")
	stopped := make(chan struct{})
	r := NewRouter()
	count.Handle(r, func(ctx context.Context, req rangeReq, out *Tx[num]) error {
		for i := req.From; i < req.To; i++ {
			if err := out.Send(ctx, num{i}); err != nil {
				return err
			}
		}
		switch {
		case req.To < 0:
			return Errorf(InvalidArgument, "to %d", req.To)
		case req.To == 100: // a watch that never ends on its own
			<-out.Done()
			close(stopped)
		}
		return nil
	})
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		ctx := context.Background()

		s, err := count.Call(ctx, cl, rangeReq{From: 3, To: 7}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for {
			v, err := s.Recv(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v.N)
		}
		if len(got) != 4 || got[0] != 3 || got[3] != 6 {
			t.Fatalf("items %v", got)
		}

		s, _ = count.Call(ctx, cl, rangeReq{From: 0, To: -1}, nil)
		if _, err := s.Recv(ctx); CodeOf(err) != InvalidArgument {
			t.Fatalf("error outcome: %v", err)
		}
	})
	// Close ends a stream the handler would keep open.
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	s, _ := count.Call(context.Background(), cl, rangeReq{From: 99, To: 100}, nil)
	if v, err := s.Recv(context.Background()); err != nil || v.N != 99 {
		t.Fatalf("%v %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testwait.Recv(t, "the handler to learn the caller stopped", stopped)
}

// A client-streaming method sums what the caller sends.
func TestClientStreamMethod(t *testing.T) {
	sum := NewClientStream[num, total]("test", "sum")
	r := NewRouter()
	sum.Handle(r, func(ctx context.Context, in *Rx[num]) (total, error) {
		var t total
		for {
			v, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return t, nil
			}
			if err != nil {
				return t, err
			}
			if v.N < 0 {
				return t, Errorf(OutOfRange, "negative %d", v.N)
			}
			t.Sum, t.Count = t.Sum+v.N, t.Count+1
		}
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	s := sum.Call(ctx, cl, nil)
	for i := 1; i <= 100; i++ {
		if err := s.Send(ctx, num{i}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.CloseAndRecv(); err != nil || got != (total{Sum: 5050, Count: 100}) {
		t.Fatalf("%+v %v", got, err)
	}
	s = sum.Call(ctx, cl, nil)
	_ = s.Send(ctx, num{-1})
	if _, err := s.CloseAndRecv(); CodeOf(err) != OutOfRange {
		t.Fatalf("error outcome: %v", err)
	}
}

// A bidirectional method answers each item as it comes.
func TestBidiStreamMethod(t *testing.T) {
	shout := NewBidiStream[string, string]("test", "shout")
	r := NewRouter()
	shout.Handle(r, func(ctx context.Context, in *Rx[string], out *Tx[string]) error {
		for {
			v, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := out.Send(ctx, strings.ToUpper(v)); err != nil {
				return err
			}
		}
	})
	client, _ := transports()[1].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	s := shout.Call(ctx, cl, &CallOptions{Metadata: Metadata{}.Add("k", StringValue("v"), 0)})
	for _, w := range []string{"a", "bc", "def"} {
		if err := s.Send(ctx, w); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Recv(ctx); err != nil || got != strings.ToUpper(w) {
			t.Fatalf("%q %v", got, err)
		}
	}
	s.CloseSend()
	if _, err := s.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

// A server stream's request that does not decode as the handler's type
// fails the call as InvalidPayload (code InvalidArgument), which the
// caller's first Recv returns, without running the handler.
func TestServerStreamBadRequest(t *testing.T) {
	count := NewServerStream[rangeReq, num]("test", "count")
	wrong := NewServerStream[string, num]("test", "count") // the same method, another request type
	ran := make(chan struct{}, 1)
	r := NewRouter()
	count.Handle(r, func(ctx context.Context, req rangeReq, out *Tx[num]) error {
		ran <- struct{}{}
		return nil
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	s, err := wrong.Call(context.Background(), cl, "not a range", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv(context.Background())
	if !errors.Is(err, ErrInvalidPayload) || CodeOf(err) != InvalidArgument {
		t.Fatalf("Recv: %v (code %v), want InvalidPayload", err, CodeOf(err))
	}
	if n := strings.Count(err.Error(), "invalid payload"); n != 1 {
		t.Fatalf("%q says invalid payload %d times", err, n)
	}
	select {
	case <-ran:
		t.Fatal("the handler ran on an undecodable request")
	default:
	}
}

// Bad input: a caller (a raw one, or another implementation) that calls a
// streaming method without binding the channels its shape needs gets
// InvalidPayload naming the method; the handler never runs, a channel it
// did bind is ended, and the connection goes on.
func TestStreamMethodsNeedTheirChannels(t *testing.T) {
	ss := NewServerStream[rangeReq, num]("test", "ss")
	cs := NewClientStream[num, total]("test", "cs")
	bs := NewBidiStream[string, string]("test", "bs")
	ran := make(chan string, 4)
	r := NewRouter()
	ss.Handle(r, func(context.Context, rangeReq, *Tx[num]) error { ran <- "ss"; return nil })
	cs.Handle(r, func(context.Context, *Rx[num]) (total, error) { ran <- "cs"; return total{}, nil })
	bs.Handle(r, func(context.Context, *Rx[string], *Tx[string]) error { ran <- "bs"; return nil })
	r.HandleInline(mEcho, echo)
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	lone := cl.Conn().NewTx(4) // a bidi call's first channel without its second
	for _, tc := range []struct {
		name string
		m    Method
		req  []byte
		opts *CallOptions
	}{
		{"server stream without its Tx", ss.Method, []byte(`{"From":0,"To":1}`), nil},
		{"client stream without its Rx", cs.Method, nil, nil},
		{"bidi without channels", bs.Method, nil, nil},
		{"bidi with one channel", bs.Method, nil, &CallOptions{Channels: []Channel{lone}}},
	} {
		err := cl.Call(ctx, tc.m, tc.req, tc.opts, nil)
		if !errors.Is(err, ErrInvalidPayload) || !strings.Contains(err.Error(), tc.m.String()) {
			t.Fatalf("%s: %v, want InvalidPayload naming %v", tc.name, err, tc.m)
		}
	}
	// The bidi handler's side of the one channel was ended: the Tx sees it.
	if err := lone.Send(ctx, []byte("x")); err == nil {
		t.Fatal("a Send on the channel the refused call bound went through")
	}
	select {
	case name := <-ran:
		t.Fatalf("the %s handler ran", name)
	default:
	}
	if got, err := call(ctx, cl, mEcho, []byte("still up")); err != nil || string(got) != "still up" {
		t.Fatalf("after the refused calls: %q %v", got, err)
	}
}

// A client-streaming handler that fails before reading everything: once
// the call has ended, Send returns the call's outcome (the handler's
// error, with its code) rather than a bare channel error, and so does
// CloseAndRecv.
func TestClientStreamHandlerFailsEarly(t *testing.T) {
	sum := NewClientStream[num, total]("test", "sum")
	r := NewRouter()
	sum.Handle(r, func(ctx context.Context, in *Rx[num]) (total, error) {
		return total{}, Errorf(PermissionDenied, "no sums today")
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx := context.Background()
	s := sum.Call(ctx, cl, nil)
	testwait.Recv(t, "the call's end", s.call.done)
	if err := s.Send(ctx, num{1}); CodeOf(err) != PermissionDenied {
		t.Fatalf("Send after the handler failed: %v", err)
	}
	if _, err := s.CloseAndRecv(); CodeOf(err) != PermissionDenied {
		t.Fatalf("CloseAndRecv: %v", err)
	}
}

// Recv is bounded by its context, also after the last item, while it
// waits for the call's outcome (here a handler that closed its stream
// but has not answered): then the context's error, and the call goes on
// until its own context ends. The handler is a raw one on the stream's
// method, as another implementation's server could be.
func TestServerStreamRecvWaitsForTheOutcome(t *testing.T) {
	count := NewServerStream[rangeReq, num]("test", "count")
	r := NewRouter()
	r.Handle(count.Method, func(ctx context.Context, req *Request) error {
		tx, err := req.Tx(0)
		if err != nil {
			return err
		}
		tx.Close() // the last item, and no answer until the caller gives up
		<-ctx.Done()
		return ctx.Err()
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	callCtx, cancelCall := context.WithCancel(context.Background())
	defer cancelCall()
	s, err := count.Call(callCtx, cl, rangeReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recvCtx, cancelRecv := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := s.Recv(recvCtx); got <- err }()
	testwait.Blocked(t, "core.(*pendingCall).outcome", 1) // past the end of the items
	cancelRecv()
	if err := testwait.Recv(t, "Recv's end", got); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv when its context ended: %v", err)
	}
	select {
	case <-s.call.done:
		t.Fatal("the call ended with Recv's context")
	default:
	}
	cancelCall()
	if err := s.Close(); !errors.Is(err, ErrCancelled) {
		t.Fatalf("Close after the call's context ended: %v", err)
	}
}
