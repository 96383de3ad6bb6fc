package core

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// spec:31 callers share a refcount: the root stays open while any caller
// lives; closing the last one ends the session.
func TestLastCallerClosesSession(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, server := tr.pair(t, Options{}, Options{Router: echoRouter()})
		a, b := client.Caller(), client.Caller()
		a.Close()
		a.Close() // idempotent: must not drop b's reference
		if _, err := call(context.Background(), b, mEcho, []byte("x")); err != nil {
			t.Fatalf("call with one caller left: %v", err)
		}
		b.Close()
		waitDone(t, client)
		waitDone(t, server)
		if _, err := call(context.Background(), b, mEcho, nil); !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("call after the last caller closed: %v", err)
		}
	})
}

// spec:32 a Caller dropped without Close is caught by a cleanup, so it
// cannot hold the connection open forever.
func TestLeakedCallerIsCleanedUp(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	func() {
		cl := client.Caller()
		if _, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}() // cl is now unreachable
	deadline := time.After(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-client.Done():
			return
		case <-deadline:
			t.Fatal("a leaked caller kept the session open")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
