package core

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:24 a server stream read on the caller's goroutine: While receives
// every item once the request is out, then Call returns the response (no
// goroutine of the caller's runs the call).
func TestCallWhileReadsStream(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, _ := tr.pair(t, Options{}, Options{Router: streamRouter()})
		cl := client.Caller()
		defer cl.Close()
		for _, n := range []int{0, 1, 1000} {
			rx := cl.Conn().NewRx(16)
			got := 0
			err := cl.Call(context.Background(), mStream, strconv.AppendInt(nil, int64(n), 10), &CallOptions{
				Channels: []Channel{rx},
				While: func() error {
					for {
						it, err := rx.Recv(context.Background())
						if err != nil {
							return ignoreEnd(err)
						}
						it.Release()
						got++
					}
				},
			}, nil)
			if err != nil || got != n {
				t.Fatalf("%d items: call %v, received %d", n, err, got)
			}
			rx.Close()
		}
	})
}

// ignoreEnd is nil for the end of a channel's items.
func ignoreEnd(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// spec:19 While failing cancels the call as a context would: Call returns
// While's error, the handler's context is cancelled, and the call's slot
// comes back with its late response.
func TestCallWhileErrorCancels(t *testing.T) {
	r := blockRouter()
	client, server := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	stop := errors.New("enough")
	err := cl.Call(context.Background(), mBlock, nil, &CallOptions{While: func() error {
		waitInflight(t, server.root, 1)
		return stop
	}}, nil)
	if err != stop {
		t.Fatalf("got %v, want While's error", err)
	}
	waitInflight(t, server.root, 0) // the handler saw the cancel and ended
	testwait.For(t, "the slot back", func() bool { return client.root.slots.inUse() == 0 })
}

// While failing after the outcome has arrived: the outcome is dropped
// (Call returns While's error) and its call freed.
func TestCallWhileErrorAfterOutcome(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	defer cl.Close()
	stop := errors.New("late")
	var replied atomic.Bool
	err := cl.Call(context.Background(), mEcho, []byte("x"), &CallOptions{While: func() error {
		testwait.For(t, "the response", func() bool { return livePending(client.root) == 0 })
		return stop
	}}, func(Reply) error { replied.Store(true); return nil })
	if err != stop || replied.Load() {
		t.Fatalf("got %v (reply seen %v), want While's error", err, replied.Load())
	}
	if n := client.root.slots.inUse(); n != 0 {
		t.Fatalf("%d slots taken", n)
	}
}

// livePending counts c's calls still waiting for their response.
func livePending(c *conn) int {
	n := 0
	slots := *c.pending.tab.Load()
	for i := range slots {
		if oc := slots[i].Load(); oc != nil && c.pending.owns(oc.state.Load()) {
			n++
		}
	}
	return n
}

// While does not run for a request that never went out.
func TestCallWhileNotRunUnsent(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: echoRouter()})
	cl := client.Caller()
	defer cl.Close()
	client.Close()
	ran := false
	err := cl.Call(context.Background(), mEcho, nil, &CallOptions{While: func() error { ran = true; return nil }}, nil)
	if err == nil || ran {
		t.Fatalf("call on a closed session: %v, While ran %v", err, ran)
	}
}
