package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// spec:33 a handler that replied and keeps running (to stream, say) still
// sees its context end when the session ends, and Close returns once it
// has.
func TestRepliedHandlerSeesSessionEnd(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		ended := make(chan error, 1)
		r := NewRouter()
		r.Handle(mSlow, func(ctx context.Context, req *Request) error {
			if err := req.Reply(nil, nil); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				ended <- req.Cause()
			case <-time.After(testwait.Timeout):
				ended <- errors.New("the context never ended")
			}
			return nil
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		if _, err := call(context.Background(), cl, mSlow, nil); err != nil {
			t.Fatal(err)
		}
		server.Close() // returns only once the handler has
		if err := <-ended; err != ErrConnectionClosed {
			t.Fatalf("the handler's context ended with %v", err)
		}
	})
}

// A handler that asks for Done after its deadline passed gets a closed
// channel (this used to close it twice, a panic).
func TestDoneAfterDeadline(t *testing.T) {
	r := NewRouter()
	r.Handle(mSlow, func(ctx context.Context, req *Request) error {
		d, _ := ctx.Deadline()
		time.Sleep(time.Until(d)) // past the deadline, never having asked for Done
		<-ctx.Done()
		return req.Reply([]byte(ctx.Err().Error()), nil)
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := call(ctx, cl, mSlow, nil)
	if err != nil && !errors.Is(err, ErrCancelled) {
		t.Fatal(err)
	}
}

// spec:6 Drain returns when its ctx ends, cancelling the handlers that
// remain, even one that ignores its context: it does not wait for it.
func TestDrainReturnsWhenCtxEnds(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{})
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		close(running)
		<-release // ignores ctx
		return nil
	})
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	defer tr.Close()
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	client, err := Dial(context.Background(), tr, "tcp", srv.Addr().String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cl := client.Caller()
	defer cl.Close()
	callErr := make(chan error, 1)
	go func() { _, err := call(context.Background(), cl, mBlock, nil); callErr <- err }()
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- srv.Drain(ctx) }()
	select {
	case err := <-drained:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Drain returned %v", err)
		}
	case <-time.After(testwait.Timeout):
		t.Fatal("Drain waited for a handler that ignores its context")
	}
	if err := <-callErr; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("the call in flight got %v", err)
	}
	close(release)
	if err := srv.Close(); err != nil { // waits for the handler now
		t.Fatal(err)
	}
}

// RequestFrom reaches the Request from a handler's ctx with every option
// on: with ProfileLabels the ctx is derived from the Request, not it.
func TestRequestFromWithProfileLabels(t *testing.T) {
	type kv struct{ K, V string }
	get := NewTypedMethod[kv, string]("kv", "get")
	r := NewRouter()
	get.Handle(r, func(ctx context.Context, in kv) (string, error) {
		req, ok := RequestFrom(ctx)
		if !ok {
			return "", errors.New("no request in ctx")
		}
		if _, isReq := ctx.(*Request); isReq {
			return "", errors.New("ctx is the Request itself: labels are off")
		}
		tok, _ := req.Metadata().Get("token")
		return tok.Str(), nil
	})
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r, ProfileLabels: true})
	cl := client.Caller()
	defer cl.Close()
	var out []byte
	err := cl.Call(context.Background(), get.Method, []byte(`{"K":"a"}`), &CallOptions{Metadata: Metadata{{Key: "token", Value: StringValue("s3cret")}}}, func(rp Reply) error {
		out = append(out, rp.Payload...)
		return nil
	})
	if err != nil || string(out) != `"s3cret"` {
		t.Fatalf("got %s, %v", out, err)
	}
	if _, ok := RequestFrom(context.Background()); ok {
		t.Fatal("RequestFrom found a Request in a plain context")
	}
}

// spec:6 Drain does not close before the peer has seen its GoAway: it
// sends a Ping after the GoAway and waits for the Pong, so a request the
// peer sent in between (here with no handler running, which would let a
// Drain without the barrier close at once) is still answered Unavailable,
// and the caller knows it did not run: for a pool handler's method and
// for an inline one's (which is otherwise served without the inbound
// table, solo).
func TestDrainWaitsUntilGoAwaySeen(t *testing.T) {
	mInline := NewMethod("test", "inline-echo")
	r := echoRouter()
	r.HandleInline(mInline, echo)
	s, p := newRawPeer(t, false, Options{Router: r})
	p.silent.Store(true) // we answer the Ping by hand, late
	p.hello(t, wire.Settings{})
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	p.nextKind(t, wire.KindGoAway)
	ping := p.nextKind(t, wire.KindPing)
	for id, m := range map[uint64]Method{5: mEcho, 7: mInline} {
		p.send(t, wire.Message{Kind: wire.KindRequest, ID: id, Method: m.ID})
		if m := p.nextKind(t, wire.KindResponse); m.ID != id || m.Status != wire.StatusUnavailable {
			t.Fatalf("response %d %v, want Unavailable for %d", m.ID, m.Status, id)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) before the peer answered its Ping", err)
	default:
	}
	p.send(t, wire.Message{Kind: wire.KindPong, ID: ping.ID})
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not end after the Pong")
	}
}

// spec:6 Drain is bounded by its context: against a peer that never
// answers the Ping after the GoAway, it returns the context's error when
// the context ends, and the session ends with ErrSessionClosed rather than
// waiting for the peer.
func TestDrainGivesUpOnASilentPeer(t *testing.T) {
	s, p := newRawPeer(t, false, Options{Router: echoRouter()})
	p.silent.Store(true)
	p.hello(t, wire.Settings{})
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(ctx) }()
	p.nextKind(t, wire.KindGoAway)
	p.nextKind(t, wire.KindPing) // never answered
	cancel()
	if err := <-drained; !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain: %v, want the context's error", err)
	}
	waitDone(t, s)
	if !errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("session error %v", s.Err())
	}
}

// spec:6 a Drain during the handshake ends it at once, before any
// HelloAck and with no GoAway: the peer never gets a session to send
// calls on, and Drain does not wait for one.
func TestDrainDuringHandshake(t *testing.T) {
	s, p := newRawPeer(t, false, Options{})
	if err := s.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Ended by the Drain, not by the handshake timing out meanwhile.
	if !errors.Is(s.Err(), ErrSessionClosed) {
		t.Fatalf("session error %v", s.Err())
	}
	p.expectEndWithout(t, wire.KindHelloAck, wire.KindGoAway)
	waitDone(t, s)
}

// spec:6 once the peer has sent GoAway, a new call is refused before it
// is sent: Unavailable, retryable (elsewhere), and no request reaches the
// draining peer.
func TestCallAfterPeerGoAway(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindGoAway, Payload: []byte("draining")})
	testwait.For(t, "the GoAway to be read", s.peerGoAway.Load)
	cl := s.Caller()
	defer cl.Close()
	_, err := call(context.Background(), cl, mEcho, []byte("late"))
	if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
		t.Fatalf("a call after the peer's GoAway: %v", err)
	}
	// Anything the call had sent would come before this Ping's Pong.
	p.send(t, wire.Message{Kind: wire.KindPing, ID: 9})
	if m := p.next(t); m.Kind != wire.KindPong || m.ID != 9 {
		t.Fatalf("got %v %d, want the Pong: a request went out", m.Kind, m.ID)
	}
}
