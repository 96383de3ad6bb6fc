package core

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// manyEntries encodes n empty entries (4 bytes each).
func manyEntries(n int) wire.Metadata {
	var raw []byte
	for range n {
		raw = wire.AppendEntry(raw, wire.Entry{Type: wire.ValueBytes})
	}
	return wire.MakeMetadata(raw)
}

// bigEntry encodes one entry with a value of n bytes.
func bigEntry(n int) wire.Metadata {
	return wire.MakeMetadata(wire.AppendEntry(nil, wire.Entry{Key: []byte("k"), Type: wire.ValueBytes, Value: make([]byte, n)}))
}

// spec:34 a Hello whose metadata is over our limits is refused before
// anything is built from it: a Reject that says why, no HelloAck, and no
// peer metadata kept.
func TestHelloMetadataOverLimitRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		md   wire.Metadata
		want string
	}{
		{"entries", manyEntries(1000), "entries"},
		{"bytes", bigEntry(70 << 10), "bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{})
			p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Metadata: c.md})
			m := p.next(t)
			if m.Kind != wire.KindReject || m.Code != wire.CodeSettings || !strings.Contains(string(m.Payload), c.want) {
				t.Fatalf("got %v %v %q", m.Kind, m.Code, m.Payload)
			}
			waitDone(t, s)
			if s.PeerMetadata() != nil {
				t.Fatal("metadata was built from a refused Hello")
			}
		})
	}
}

// spec:34 the limits are advertised, and a request over them breaks the
// protocol: ProtocolError metadata too large.
func TestRequestMetadataOverLimitIsViolation(t *testing.T) {
	for _, c := range []struct {
		name string
		md   wire.Metadata
	}{
		{"entries", manyEntries(5)},
		{"bytes", bigEntry(200)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{Router: echoRouter(), MaxMetadataEntries: 4, MaxMetadataBytes: 100})
			ack := p.hello(t, wire.Settings{})
			if ack.Settings.MaxMetadataEntries != 4 || ack.Settings.MaxMetadataBytes != 100 {
				t.Fatalf("advertised %+v", ack.Settings)
			}
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Metadata: manyEntries(4)})
			if m := p.next(t); m.Kind != wire.KindResponse || m.Status != wire.StatusOK {
				t.Fatalf("at the limit: %v %v", m.Kind, m.Status)
			}
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 3, Method: mEcho.ID, Metadata: c.md})
			if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeMetadataTooLarge {
				t.Fatalf("over the limit: %v %v %q", m.Kind, m.Code, m.Payload)
			}
			waitDone(t, s)
			if !errors.Is(s.Err(), ErrProtocol) {
				t.Fatalf("session ended with %v", s.Err())
			}
		})
	}
}

// spec:16,34 this peer keeps within the limits the peer advertised: a call
// with too much metadata fails locally (not retryable, errors.Is
// ErrMetadataTooLarge), a response with too much becomes an Internal error
// saying so, and the session goes on.
func TestOwnMetadataKeptWithinPeerLimits(t *testing.T) {
	mMeta := NewMethod("test", "meta")
	r := echoRouter()
	r.Handle(mMeta, func(ctx context.Context, req *Request) error {
		return req.Reply(nil, Metadata{}.Add("big", BytesValue(make([]byte, 200)), 0))
	})
	client, server, err := Pipe(context.Background(), Options{MaxMetadataBytes: 100}, Options{Router: r, MaxMetadataEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	defer client.Close()
	cl := client.Caller()
	defer cl.Close()
	three := Metadata{}.Add("a", U64Value(1), 0).Add("b", U64Value(2), 0).Add("c", U64Value(3), 0)
	_, err = call(context.Background(), cl, mEcho, []byte("x"), &CallOptions{Metadata: three})
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, ErrMetadataTooLarge) || IsRetryable(err) {
		t.Fatalf("call over the peer's limit: %v", err)
	}
	_, err = call(context.Background(), cl, mMeta, nil)
	if !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("response over our limit: %v", err)
	}
	if got, err := call(context.Background(), cl, mEcho, []byte("ok"), &CallOptions{Metadata: three[:2]}); err != nil || string(got) != "ok" {
		t.Fatalf("within the limits: %q %v", got, err)
	}
	if client.Err() != nil || server.Err() != nil {
		t.Fatalf("session ended: %v / %v", client.Err(), server.Err())
	}
}

// spec:34 a call binding more channels than the peer holds per call
// fails locally, and its channels end instead of waiting.
func TestChannelsKeptWithinPeerLimits(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{MaxChannelsPerCall: 1})
	cl := s.Caller()
	defer cl.Close()
	a, b := NewRx[int](cl.Conn(), 4), NewRx[int](cl.Conn(), 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the raw peer never answers
	defer cancel()
	_, err := call(ctx, cl, mEcho, nil, &CallOptions{Channels: []Channel{a, b}})
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, ErrTooManyChannels) || IsRetryable(err) {
		t.Fatalf("two channels, the peer takes one: %v", err)
	}
	if _, err := a.Recv(context.Background()); err == nil {
		t.Fatal("a channel of the refused call still waits")
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// spec:34 an acceptor whose HelloAck metadata is over the initiator's
// limits refuses, rather than make the initiator see a violation.
func TestHelloAckMetadataOverInitiatorLimit(t *testing.T) {
	_, p := newRawPeer(t, false, Options{Metadata: Metadata{}.Add("a", U64Value(1), 0).Add("b", U64Value(2), 0)})
	p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: wire.Settings{MaxMetadataEntries: 1}})
	if m := p.next(t); m.Kind != wire.KindReject || m.Code != wire.CodeSettings || !strings.Contains(string(m.Payload), "metadata") {
		t.Fatalf("got %v %v %q", m.Kind, m.Code, m.Payload)
	}
}

// wireSize is what appendWire writes, for every value type and for
// lengths on both sides of each varint step.
func TestMetadataWireSize(t *testing.T) {
	var md Metadata
	for _, n := range []int{0, 1, 127, 128, 16383, 16384} {
		key := strings.Repeat("k", n%300)
		md = md.Add(key, StringValue(strings.Repeat("s", n)), MetaFlags(n)).
			Add(key, BytesValue(make([]byte, n)), 0).
			Add(key, U64Value(uint64(n)<<20), MetaFlags(n)<<9)
		if got, want := md.wireSize(), len(md.appendWire(nil)); got != want {
			t.Fatalf("%d entries: wireSize %d, encoded %d", len(md), got, want)
		}
	}
}

// spec:34 while the connection holds more channels than the peer holds per
// connection, a call binding channels fails locally; at the peer's limit it
// goes out.
func TestChannelsKeptWithinPeerConnectionLimit(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{MaxChannels: 2})
	cl := s.Caller()
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background()) // the raw peer never answers
	defer cancel()
	a, b := NewRx[int](cl.Conn(), 4), NewRx[int](cl.Conn(), 4)
	defer b.Close()
	sent := make(chan error, 1)
	go func() { _, err := call(ctx, cl, mEcho, nil, &CallOptions{Channels: []Channel{a}}); sent <- err }()
	if m := p.nextKind(t, wire.KindRequest); m.Channels.Len() != 1 {
		t.Fatalf("the call at the limit went out binding %d channels", m.Channels.Len())
	}
	c := NewRx[int](cl.Conn(), 4) // three live: over the peer's two
	_, err := call(ctx, cl, mEcho, nil, &CallOptions{Channels: []Channel{c}})
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, ErrTooManyChannels) || IsRetryable(err) {
		t.Fatalf("a call over the peer's connection limit: %v", err)
	}
	cancel()
	if err := <-sent; !errors.Is(err, ErrCancelled) {
		t.Fatalf("the call that went out: %v, want Cancelled", err)
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}
