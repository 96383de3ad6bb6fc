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

// spec:2 the handshake exchanges settings and metadata, each side takes
// its parity, and the acceptor's OnSession sees the session.
func TestHandshakeExchangesSettings(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		co := Options{MaxConcurrentRequests: 7, Metadata: Metadata{}.Add("client", StringValue("c1"), 0)}
		so := Options{MaxConcurrentRequests: 9, Metadata: Metadata{}.Add("server", StringValue("s1"), 0)}
		client, server := tr.pair(t, co, so)
		if v, _ := client.PeerMetadata().Get("server"); v.Str() != "s1" {
			t.Fatalf("client saw %v", client.PeerMetadata())
		}
		if v, _ := server.PeerMetadata().Get("client"); v.Str() != "c1" {
			t.Fatalf("server saw %v", server.PeerMetadata())
		}
		if client.peer.MaxConcurrentRequests != 9 || server.peer.MaxConcurrentRequests != 7 {
			t.Fatalf("limits not exchanged: %d %d", client.peer.MaxConcurrentRequests, server.peer.MaxConcurrentRequests)
		}
		if client.parity != wire.ParityOdd || server.parity != wire.ParityEven || !client.Initiator() || server.Initiator() {
			t.Fatal("parities or roles wrong")
		}
	})
}

// spec:2 an acceptor refuses a first frame that is not a good Hello, with
// a Reject the initiator can read, then closes.
func TestAcceptorRejectsBadHello(t *testing.T) {
	hello := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd})
	badMagic := append([]byte{}, hello...)
	copy(badMagic[1:], "HTTP")
	cases := []struct {
		name string
		body []byte
		code wire.Code
	}{
		{"bad magic", badMagic, wire.CodeVersion},
		{"no common version", wire.AppendMessage(nil, &wire.Message{Kind: wire.KindHello, MinVersion: 2, Version: 3, Parity: wire.ParityOdd}), wire.CodeVersion},
		{"request first", wire.AppendMessage(nil, &wire.Message{Kind: wire.KindRequest, ID: 1}), wire.CodeNone},
		{"garbage", []byte{0xde, 0xad, 0xbe, 0xef}, wire.CodeMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{})
			p.sendRaw(t, c.body)
			m := p.next(t)
			if m.Kind != wire.KindReject || m.Code != c.code || len(m.Payload) == 0 {
				t.Fatalf("got %v code %v %q", m.Kind, m.Code, m.Payload)
			}
			p.expectEnd(t)
			waitDone(t, s)
			if !errors.Is(s.Err(), ErrHandshake) {
				t.Fatalf("session error %v", s.Err())
			}
		})
	}
}

// spec:2 an initiator that gets Reject fails Dial with the peer's reason.
func TestInitiatorSeesReject(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	errc := make(chan error, 1)
	go func() { errc <- s.start(context.Background()) }()
	if m := p.next(t); m.Kind != wire.KindHello || m.Parity != wire.ParityOdd || m.Version != 1 {
		t.Fatalf("first message %+v", m)
	}
	p.send(t, wire.Message{Kind: wire.KindReject, Code: wire.CodeVersion, Payload: []byte("we speak 9 only")})
	err := <-errc
	var he *HandshakeError
	if !errors.Is(err, ErrHandshake) || !errors.As(err, &he) || !he.Rejected || he.Code != ReasonCode(wire.CodeVersion) || he.Reason != "we speak 9 only" {
		t.Fatalf("got %v", err)
	}
}

// spec:2,5 an initiator given a garbage answer to its Hello fails Dial
// with a HandshakeError that says what was wrong (not a Reject, which only
// the peer sends), and ends the session.
func TestInitiatorRefusesBadHelloAck(t *testing.T) {
	for _, c := range []struct {
		name  string
		reply wire.Message
		raw   []byte // sent instead of reply when set
		code  ReasonCode
	}{
		{"a request", wire.Message{Kind: wire.KindRequest, ID: 2}, nil, ReasonUnexpected},
		{"a version not offered", wire.Message{Kind: wire.KindHelloAck, Version: wire.MaxVersion + 1, Parity: wire.ParityEven}, nil, ReasonVersion},
		{"our own parity", wire.Message{Kind: wire.KindHelloAck, Version: 1, Parity: wire.ParityOdd}, nil, ReasonParity},
		{"undecodable", wire.Message{}, []byte{0xff, 0xff, 0xff}, ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, true, Options{})
			errc := make(chan error, 1)
			go func() { errc <- s.start(context.Background()) }()
			if m := p.next(t); m.Kind != wire.KindHello {
				t.Fatalf("first message %v", m.Kind)
			}
			if c.raw != nil {
				p.sendRaw(t, c.raw)
			} else {
				p.send(t, c.reply)
			}
			err := <-errc
			var he *HandshakeError
			if !errors.Is(err, ErrHandshake) || !errors.As(err, &he) || he.Rejected || he.Code != c.code {
				t.Fatalf("got %v, want a HandshakeError of code %v", err, c.code)
			}
			p.expectEndWithout(t, wire.KindReject) // only an acceptor rejects
			waitDone(t, s)
		})
	}
}

// spec:2 Dial's context ending during the handshake ends it at once.
func TestHandshakeCancelled(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.start(ctx) }()
	if m := p.next(t); m.Kind != wire.KindHello {
		t.Fatalf("first message %v", m.Kind)
	}
	cancel() // the peer never answers
	if err := <-errc; !errors.Is(err, ErrHandshake) {
		t.Fatalf("got %v", err)
	}
	waitDone(t, s)
}

// spec:2 a peer that says nothing is dropped after the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	s, p := newRawPeer(t, false, Options{HandshakeTimeout: 50 * time.Millisecond})
	p.expectEnd(t)
	waitDone(t, s)
	if !errors.Is(s.Err(), ErrHandshake) {
		t.Fatalf("got %v", s.Err())
	}
}

// spec:4 Ping is answered by Pong with the same nonce.
func TestPingPong(t *testing.T) {
	_, p := newRawPeer(t, false, Options{})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindPing, ID: 0xfeed})
	if m := p.next(t); m.Kind != wire.KindPong || m.ID != 0xfeed {
		t.Fatalf("got %v %x", m.Kind, m.ID)
	}
}

// spec:4 a peer that froze (it neither reads nor closes) is dropped at
// once when keepalive declares it dead: Done does not wait for a graceful
// close the peer will never complete. The link's CloseTimeout is an hour,
// so only an abort ends the session within waitDone's 10 s.
func TestKeepaliveFrozenPeerEndsSession(t *testing.T) {
	s, p := newRawPeer(t, false, Options{KeepaliveInterval: 20 * time.Millisecond, KeepaliveTimeout: 100 * time.Millisecond,
		Link: netpoll.Options{CloseTimeout: time.Hour}})
	p.hello(t, wire.Settings{})
	resume := p.pause()
	defer resume()
	testwait.For(t, "keepalive to give up", func() bool { return s.Err() != nil })
	if !errors.Is(s.Err(), ErrKeepalive) {
		t.Fatalf("session error %v", s.Err())
	}
	waitDone(t, s)
}

// spec:4 a peer that stops answering is declared dead: the session ends
// and pending calls fail with a connection-closed error.
func TestKeepaliveTimeout(t *testing.T) {
	s, p := newRawPeer(t, false, Options{KeepaliveInterval: 20 * time.Millisecond, KeepaliveTimeout: 100 * time.Millisecond})
	p.silent.Store(true)
	p.hello(t, wire.Settings{})
	cl := s.Caller()
	defer cl.Close()
	errc := make(chan error, 1)
	go func() { _, err := call(context.Background(), cl, mEcho, nil); errc <- err }()
	pings := 0
	for m := p.next(t); m.Kind != wire.KindRequest; m = p.next(t) {
		if m.Kind == wire.KindPing {
			pings++
		}
	}
	// Never answer: neither the pings nor the request.
	select {
	case err := <-errc:
		if !errors.Is(err, ErrConnectionClosed) || !IsRetryable(err) || !errors.Is(err, ErrKeepalive) {
			t.Fatalf("pending call got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending call not failed")
	}
	waitDone(t, s)
	if !errors.Is(s.Err(), ErrKeepalive) {
		t.Fatalf("session error %v", s.Err())
	}
}
