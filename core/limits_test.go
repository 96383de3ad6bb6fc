package core

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/wire"
)

// spec:18 a caller never exceeds the limit the peer advertised: extra
// calls wait for a slot, or fail fast when asked.
func TestCallerRespectsPeerLimit(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		const limit = 3
		var running, peak atomic.Int32
		release := make(chan struct{})
		r := NewRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			running.Add(-1)
			return req.Reply(nil, nil)
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r, MaxConcurrentRequests: limit})
		cl := client.Caller()
		defer cl.Close()
		errc := make(chan error, 10)
		for range 10 {
			go func() { _, err := call(context.Background(), cl, mBlock, nil); errc <- err }()
		}
		for running.Load() < limit {
			time.Sleep(time.Millisecond)
		}
		// The peer is full: a fail-fast call fails at once, retryably.
		err := cl.Call(context.Background(), mBlock, nil, &CallOptions{FailFast: true}, nil)
		if !errors.Is(err, ErrTooManyRequests) || !IsRetryable(err) {
			t.Fatalf("fail-fast call: %v", err)
		}
		// A waiting call honours its context.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := call(ctx, cl, mBlock, nil); !errors.Is(err, ErrCancelled) {
			t.Fatalf("waiting call: %v", err)
		}
		close(release)
		for range 10 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if peak.Load() > limit {
			t.Fatalf("%d requests ran at once, limit %d", peak.Load(), limit)
		}
	})
}

// spec:18 a peer that sends more requests than we advertised commits a
// protocol violation.
func TestPeerExceedingOurLimit(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		select {
		case <-block:
		case <-ctx.Done():
		}
		return nil
	})
	s, p := newRawPeer(t, false, Options{Router: r, MaxConcurrentRequests: 2})
	ack := p.hello(t, wire.Settings{})
	if ack.Settings.MaxConcurrentRequests != 2 {
		t.Fatalf("advertised %d", ack.Settings.MaxConcurrentRequests)
	}
	for id := uint64(1); id <= 5; id += 2 {
		p.send(t, wire.Message{Kind: wire.KindRequest, ID: id, Method: mBlock.ID})
	}
	if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeTooManyRequests {
		t.Fatalf("got %v %v", m.Kind, m.Code)
	}
	waitDone(t, s)
}
