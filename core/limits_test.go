package core

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
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
		testwait.For(t, "the peer's limit to fill", func() bool { return running.Load() >= limit })
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

// spec:18,29 a peer that sends requests but stops reading cannot make us
// hold unbounded responses: a response waiting for room in the outbound
// buffer still counts against the limit we advertised, so past it the
// peer is in violation and the session ends, instead of goroutines and
// buffers piling up.
func TestPeerThatStopsReadingIsBounded(t *testing.T) {
	r := NewRouter()
	r.HandleInline(mEcho, echo)
	var sessions = make(chan *Session, 1)
	srv, err := Serve(netpoll.Std{Options: netpoll.Options{MaxOutbound: 64 << 10, CloseTimeout: 300 * time.Millisecond}}, "tcp", "127.0.0.1:0",
		Options{Router: r, MaxConcurrentRequests: 16, OnSession: func(s *Session) { sessions <- s }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame := func(m wire.Message) []byte { return netpoll.AppendFrame(nil, wire.AppendMessage(nil, &m)) }
	if _, err := nc.Write(frame(wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd})); err != nil {
		t.Fatal(err)
	}
	s := <-sessions
	payload := make([]byte, 32<<10)
	// Never read: responses back up in the socket and the outbound buffer.
	for id := uint64(1); id < 2*100000; id += 2 {
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(frame(wire.Message{Kind: wire.KindRequest, ID: id, Method: mEcho.ID, Payload: payload})); err != nil {
			break // the server closed the link, or stopped reading
		}
		if s.Err() != nil {
			break
		}
	}
	waitDone(t, s)
	var pe *ProtocolError
	if !errors.As(s.Err(), &pe) || pe.Code != ReasonCode(wire.CodeTooManyRequests) {
		t.Fatalf("session ended with %v, want a too-many-requests violation", s.Err())
	}
}
