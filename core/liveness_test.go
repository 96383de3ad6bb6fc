package core

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

// gcUntil runs the collector until cond holds (cleanups run after a
// collection, on their own goroutine), failing the test after 10 s.
func gcUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, what, func() bool {
		runtime.GC()
		return cond()
	})
}

func ended(s *session) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// pipePair joins a dialing session to an accepting one in memory and
// returns the dialer's owner handle, the acceptor's handle, and the
// dialer's state (which holds nothing, so the test can watch the session
// after dropping every handle). The test must not keep the owner handle
// alive longer than it means to.
func pipePair(t *testing.T, client, server Options) (*Session, *Session, *session) {
	c, s, err := Pipe(context.Background(), client, server)
	if err != nil {
		t.Fatal(err)
	}
	inner := c.session
	t.Cleanup(func() { inner.Close(); s.Close() })
	return c, s, inner
}

// spec:31 Caller.Close releases that Caller only: a Caller per task,
// closed after each, and the session serves the next task.
func TestCallerCloseReleasesOnlyItself(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: echoRouter()})
		for task := range 3 {
			cl := client.Caller()
			if _, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil {
				t.Fatalf("task %d: %v", task, err)
			}
			cl.Close()
			cl.Close() // idempotent: releases once
		}
		if client.Err() != nil {
			t.Fatalf("session ended: %v", client.Err())
		}
	})
}

// spec:31,32 a Caller used once and not kept, then a collection: the
// Session handle still holds the session.
func TestUnkeptCallerLeavesSessionOpen(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	if err := client.Caller().Call(context.Background(), mEcho, []byte("x"), nil, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		runtime.GC()
	}
	cl := client.Caller()
	defer cl.Close()
	if _, err := call(context.Background(), cl, mEcho, []byte("y")); err != nil {
		t.Fatalf("after the unkept Caller was collected: %v", err)
	}
}

// spec:31 on the accepting side, a Caller a handler takes to call back to
// the peer (and closes, as asked) never ends the session.
func TestHandlerCallerNeverEndsSession(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		mBack := NewMethod("test", "callback")
		r := NewRouter()
		r.Handle(mBack, func(ctx context.Context, req *Request) error {
			back := req.Conn().Caller()
			defer back.Close()
			got, err := call(ctx, back, mEcho, []byte("from the server"))
			if err != nil {
				return err
			}
			return req.Reply(got, nil)
		})
		client, server := tr.pair(t, Options{Router: echoRouter()}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		for i := range 2 {
			if got, err := call(context.Background(), cl, mBack, nil); err != nil || string(got) != "from the server" {
				t.Fatalf("call %d: %q %v", i, got, err)
			}
		}
		if server.Err() != nil || client.Err() != nil {
			t.Fatalf("ended: server %v, client %v", server.Err(), client.Err())
		}
	})
}

// spec:31 a bound channel holds the connection: an Rx still streaming
// after the Session handle and every Caller are gone gets every item, and
// the session ends once the channel has.
func TestBoundChannelHoldsSession(t *testing.T) {
	client, _, inner := pipePair(t, Options{}, Options{Router: testbedRouter()})
	rx := func() *Rx[int] {
		cl := client.Caller()
		rx := NewRx[int](cl.Conn(), 1) // one item at a time: the stream outlasts the call's setup
		go call(context.Background(), cl, mGenerate, []byte("5"), &CallOptions{Channels: []Channel{rx}})
		cl.Close()
		return rx
	}()
	client = nil // the owner handle is dropped too
	for range 3 {
		runtime.GC()
	}
	for i := range 5 {
		v, err := rx.Recv(context.Background())
		if err != nil || v != i {
			t.Fatalf("item %d: %v %v", i, v, err)
		}
	}
	if _, err := rx.Recv(context.Background()); err != io.EOF {
		t.Fatalf("after the stream: %v", err)
	}
	rx.Close()
	gcUntil(t, "the session to end with its last holder", func() bool { return ended(inner) })
	if !errors.Is(inner.Err(), ErrSessionClosed) {
		t.Fatalf("ended with %v", inner.Err())
	}
}

// spec:32 a Session dropped without Close, with no Caller or channel
// left, is released by a cleanup: the session ends.
func TestLeakedSessionIsReleased(t *testing.T) {
	_, server, inner := pipePair(t, Options{}, Options{Router: echoRouter()})
	gcUntil(t, "the leaked session to end", func() bool { return ended(inner) })
	waitDone(t, server)
}

// spec:31,32 the owner handle dropped while a Caller is kept: the session
// lives on the Caller, and ends when it is closed.
func TestLastHolderEndsSession(t *testing.T) {
	client, _, inner := pipePair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	client = nil
	for range 3 {
		runtime.GC()
	}
	if _, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil {
		t.Fatalf("with a Caller left: %v", err)
	}
	cl.Close()
	gcUntil(t, "the session to end with its last Caller", func() bool { return ended(inner) })
}

// spec:31 the root closed internally keeps the session while a virtual
// connection remains; the virtual connection, dropped with its Callers,
// is closed as if by Close (the peer forgets it), and the session ends.
func TestVirtualConnLiveness(t *testing.T) {
	client, server, inner := pipePair(t, Options{}, Options{AcceptConn: acceptWith(echoRouter(), nil)})
	vc := func() *Caller {
		v, err := client.OpenConn(context.Background(), ConnOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return v.Caller()
	}()
	client = nil
	for range 3 {
		runtime.GC()
	}
	if _, err := call(context.Background(), vc, mEcho, []byte("x")); err != nil {
		t.Fatalf("virtual connection after the Session was dropped: %v", err)
	}
	if ended(inner) {
		t.Fatal("session ended while a virtual connection remained")
	}
	vc.Close()
	gcUntil(t, "the session to end with its virtual connection", func() bool { return ended(inner) })
	testwait.For(t, "the peer to forget the connection", func() bool { return server.vconns.Size() == 0 })
}

// spec:32 a leaked virtual connection handle is closed by a cleanup: the
// peer is told (CloseConn) and forgets it, and the session stays.
func TestLeakedVirtualConnIsClosed(t *testing.T) {
	client, server := transports()[0].pair(t, Options{}, Options{AcceptConn: acceptWith(echoRouter(), nil)})
	func() {
		if _, err := client.OpenConn(context.Background(), ConnOptions{}); err != nil {
			t.Fatal(err)
		}
	}()
	gcUntil(t, "the peer to forget the leaked connection", func() bool { return server.vconns.Size() == 0 && client.vconns.Size() == 0 })
	if err := client.Err(); err != nil {
		t.Fatalf("the session ended with the virtual connection: %v", err)
	}
}
