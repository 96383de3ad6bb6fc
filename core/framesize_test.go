package core

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// nextRaw waits for the next frame the session sent, with its body.
func (p *rawPeer) nextRaw(t *testing.T) rawMsg {
	t.Helper()
	return testwait.Recv(t, "a message from the session", p.msgs)
}

// The protocol's frame size bounds are the link's.
func TestFrameSizeBoundsAgree(t *testing.T) {
	if wire.MinMaxFrameSize != netpoll.MinMaxFrameSize || wire.DefaultMaxFrameSize != netpoll.DefaultMaxFrameSize {
		t.Fatal("core/wire and netpoll disagree on the frame size bounds")
	}
}

// spec:35 a Hello advertising a maximum frame size under the floor is
// refused with a Reject that says why; an explicit zero is refused too,
// never taken as the default.
func TestHelloUnderFrameSizeFloorRejected(t *testing.T) {
	s, p := newRawPeer(t, false, Options{})
	p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: wire.Settings{MaxFrameSize: 8}})
	m := p.next(t)
	if m.Kind != wire.KindReject || m.Code != wire.CodeSettings || !strings.Contains(string(m.Payload), "floor") {
		t.Fatalf("got %v %v %q, want a Reject for the frame size", m.Kind, m.Code, m.Payload)
	}
	waitDone(t, s)
	var he *HandshakeError
	if !errors.As(s.Err(), &he) || he.Code != ReasonCode(wire.CodeSettings) {
		t.Fatalf("session ended with %v", s.Err())
	}

	s, p = newRawPeer(t, false, Options{})
	hello := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: wire.Settings{MaxFrameSize: 1}})
	// Settings are (id, value) pairs in a length-prefixed field: turn the
	// value 1 into an explicit 0.
	i := bytes.Index(hello, []byte{2, 2, 1})
	if i < 0 {
		t.Fatal("no max frame size setting in the Hello")
	}
	hello[i+2] = 0
	p.sendRaw(t, hello)
	if m := p.next(t); m.Kind != wire.KindReject || m.Code != wire.CodeMalformed || !strings.Contains(string(m.Payload), "zero") {
		t.Fatalf("got %v %v %q, want a Reject for the zero setting", m.Kind, m.Code, m.Payload)
	}
	waitDone(t, s)
}

// spec:35 an initiator refuses a HelloAck advertising a maximum under the
// floor: Dial fails with a HandshakeError saying so.
func TestHelloAckUnderFrameSizeFloorRefused(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	errc := make(chan error, 1)
	go func() { errc <- s.start(context.Background()) }()
	if m := p.next(t); m.Kind != wire.KindHello {
		t.Fatalf("got %v, want Hello", m.Kind)
	}
	p.send(t, wire.Message{Kind: wire.KindHelloAck, Version: 1, Parity: wire.ParityEven, Settings: wire.Settings{MaxFrameSize: 100}})
	var he *HandshakeError
	if err := <-errc; !errors.As(err, &he) || he.Code != ReasonCode(wire.CodeSettings) {
		t.Fatalf("start: %v", err)
	}
}

// spec:35 responses never exceed the caller's maximum frame size: a result
// too large becomes an Internal error saying so, an error's text is cut to
// fit, and the session keeps serving.
func TestResponsesFitCallersMaxFrame(t *testing.T) {
	mFail := NewMethod("test", "fail")
	long := strings.Repeat("é", 3*wire.MinMaxFrameSize) // two bytes a rune: cut on a boundary
	r := NewRouter()
	r.Handle(mEcho, echo)
	r.Handle(mFail, func(ctx context.Context, req *Request) error { return errors.New(long) })
	_, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})

	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: make([]byte, wire.MinMaxFrameSize)})
	got := p.nextRaw(t)
	if len(got.body) > wire.MinMaxFrameSize || got.m.Status != wire.StatusInternal || !strings.Contains(string(got.m.Payload), "maximum frame size") {
		t.Fatalf("oversized result: %d bytes, %v %q", len(got.body), got.m.Status, got.m.Payload)
	}

	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 3, Method: mFail.ID})
	got = p.nextRaw(t)
	text := string(got.m.Payload)
	if len(got.body) > wire.MinMaxFrameSize || got.m.Status != wire.StatusInternal || len(text) < wire.MinMaxFrameSize/2 || !strings.Contains(long, text) {
		t.Fatalf("long error: %d bytes, %v, %d bytes of text", len(got.body), got.m.Status, len(text))
	}

	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 5, Method: mEcho.ID, Payload: []byte("still here")})
	if m := p.next(t); m.Status != wire.StatusOK || string(m.Payload) != "still here" {
		t.Fatalf("after the oversized ones: %v %q", m.Status, m.Payload)
	}
}

// spec:35 a control message's reason text is cut to fit the peer's
// maximum: a RejectConn carrying a huge error from the acceptor.
func TestRejectConnTextFitsPeerMaxFrame(t *testing.T) {
	long := strings.Repeat("x", 3*wire.MinMaxFrameSize)
	accept := func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		return ConnOptions{}, errors.New(long)
	}
	_, p := newRawPeer(t, false, Options{AcceptConn: accept})
	p.hello(t, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})
	p.send(t, wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd})
	got := p.nextRaw(t)
	if got.m.Kind != wire.KindRejectConn || len(got.body) > wire.MinMaxFrameSize || len(got.m.Payload) < wire.MinMaxFrameSize/2 {
		t.Fatalf("got %v of %d bytes with %d bytes of text", got.m.Kind, len(got.body), len(got.m.Payload))
	}
}

// spec:35 a call whose request is too large for the peer is not sent, so
// neither are its channels: a Send on its Tx fails, and no item for a
// channel the peer never heard of reaches it (it would be a protocol
// error between conforming peers).
func TestUnsentCallsTxSendsNothing(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})
	cl := s.Caller()
	defer cl.Close()
	tx := cl.Conn().NewTx(4)
	err := cl.Call(context.Background(), mEcho, make([]byte, wire.MinMaxFrameSize), &CallOptions{Channels: []Channel{tx}}, nil)
	if !errors.Is(err, ErrSendFailed) {
		t.Fatalf("oversized call: %v", err)
	}
	if err := tx.Send(context.Background(), []byte("x")); err == nil {
		t.Fatal("Send on the Tx of a call that was never sent succeeded")
	}
	errc := make(chan error, 1)
	go func() { errc <- cl.Call(context.Background(), mEcho, []byte("next"), nil, nil) }()
	m := p.next(t)
	if m.Kind != wire.KindRequest || string(m.Payload) != "next" {
		t.Fatalf("the peer got %v (%q) before the next request", m.Kind, m.Payload)
	}
	p.send(t, wire.Message{Kind: wire.KindResponse, ID: m.ID, Status: wire.StatusOK})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
