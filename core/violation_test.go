package core

import (
	"context"
	"errors"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// spec:5 every protocol violation by the peer gets a ProtocolError with a
// code and a description, then the whole session is torn down and pending
// calls fail with a protocol error.
func TestViolationsTearDown(t *testing.T) {
	req := func(id uint64) wire.Message {
		return wire.Message{Kind: wire.KindRequest, ID: id, Method: mBlock.ID}
	}
	cases := []struct {
		name string
		send []wire.Message
		raw  []byte
		code wire.Code
	}{
		{name: "malformed body", raw: []byte{byte(wire.KindRequest), 0}, code: wire.CodeMalformed},
		{name: "unknown kind", raw: []byte{0x7f}, code: wire.CodeMalformed},
		{name: "wrong-parity request id", send: []wire.Message{req(2)}, code: wire.CodeWrongParity},
		{name: "reused in-flight id", send: []wire.Message{req(1), req(1)}, code: wire.CodeIDInUse},
		{name: "wrong-parity cancel", send: []wire.Message{{Kind: wire.KindCancel, ID: 4}}, code: wire.CodeWrongParity},
		{name: "unknown connection", send: []wire.Message{{Kind: wire.KindRequest, Conn: 9, ID: 1}}, code: wire.CodeUnknownConn},
		{name: "close of root", send: []wire.Message{{Kind: wire.KindCloseConn, Conn: 0}}, code: wire.CodeRootClose},
		{name: "unknown channel", send: []wire.Message{{Kind: wire.KindChannelItem, ID: 5}}, code: wire.CodeUnknownChannel},
		{name: "second hello", send: []wire.Message{{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd}}, code: wire.CodeUnexpected},
		{name: "response binding channels", send: []wire.Message{{Kind: wire.KindResponse, ID: 2,
			Channels: wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Window: 1}))}}, code: wire.CodeUnexpected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			block := make(chan struct{})
			defer close(block)
			r := NewRouter()
			r.Handle(mBlock, func(ctx context.Context, req *Request) error {
				select {
				case <-ctx.Done():
				case <-block:
				}
				return nil
			})
			s, p := newRawPeer(t, false, Options{Router: r})
			p.hello(t, wire.Settings{})
			// A pending call of the session's own, to see it fail.
			cl := s.Caller()
			defer cl.Close()
			errc := make(chan error, 1)
			go func() { _, err := call(context.Background(), cl, mEcho, nil); errc <- err }()
			if m := p.next(t); m.Kind != wire.KindRequest {
				t.Fatalf("expected the session's request, got %v", m.Kind)
			}
			for _, m := range c.send {
				p.send(t, m)
			}
			if c.raw != nil {
				p.sendRaw(t, c.raw)
			}
			m := p.next(t)
			if m.Kind != wire.KindProtocolError || m.Code != c.code || len(m.Payload) == 0 {
				t.Fatalf("got %v code %v %q, want ProtocolError %v", m.Kind, m.Code, m.Payload, c.code)
			}
			p.expectEnd(t)
			err := <-errc
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("pending call got %v", err)
			}
			waitDone(t, s)
			var pe *ProtocolError
			if !errors.As(s.Err(), &pe) || pe.Code != ReasonCode(c.code) || pe.Remote {
				t.Fatalf("session error %v", s.Err())
			}
		})
	}
}

// spec:5 a ProtocolError from the peer tears the session down too.
func TestRemoteProtocolError(t *testing.T) {
	s, p := newRawPeer(t, false, Options{})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindProtocolError, Code: wire.CodeCreditExceeded, Payload: []byte("you sent too much")})
	waitDone(t, s)
	var pe *ProtocolError
	if !errors.As(s.Err(), &pe) || !pe.Remote || pe.Code != ReasonCode(wire.CodeCreditExceeded) || !errors.Is(s.Err(), ErrProtocol) {
		t.Fatalf("got %v", s.Err())
	}
}

// spec:21 a response for an id with no pending call is ignored: no error,
// the session carries on.
func TestUnknownResponseIgnored(t *testing.T) {
	s, p := newRawPeer(t, false, Options{Router: echoRouter()})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindResponse, ID: 2, Payload: []byte("late")})
	p.send(t, wire.Message{Kind: wire.KindResponse, ID: 1001, Payload: []byte("odd id, not ours either")})
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: []byte("still here")})
	m := p.next(t)
	if m.Kind != wire.KindResponse || m.ID != 1 || string(m.Payload) != "still here" {
		t.Fatalf("got %v %d %q", m.Kind, m.ID, m.Payload)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// spec:8 a session without an acceptor rejects every virtual connection;
// the root keeps working.
func TestOpenConnRejectedWithoutAcceptor(t *testing.T) {
	s, p := newRawPeer(t, false, Options{})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd})
	if m := p.next(t); m.Kind != wire.KindRejectConn || m.Conn != 1 || m.Code != wire.CodeRefused {
		t.Fatalf("got %v conn %d code %v", m.Kind, m.Conn, m.Code)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}
