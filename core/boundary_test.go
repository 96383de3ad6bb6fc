package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Limits hold at their exact value: what is at the limit passes, one more
// does not. (Mutation testing found these boundaries untested.)

// spec:35 a request whose frame is exactly the peer's maximum goes out;
// one byte more fails locally.
func TestRequestAtPeerMaxFrame(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})
	cl := s.Caller()
	defer cl.Close()
	size := func(n int) int {
		return len(wire.AppendMessage(nil, &wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: make([]byte, n)}))
	}
	n := wire.MinMaxFrameSize - size(0)
	for size(n) > wire.MinMaxFrameSize {
		n--
	}
	if size(n) != wire.MinMaxFrameSize {
		t.Fatalf("no payload makes a frame of exactly %d bytes", wire.MinMaxFrameSize)
	}
	if _, err := call(context.Background(), cl, mEcho, make([]byte, n+1)); !errors.Is(err, netpoll.ErrFrameTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := call(context.Background(), cl, mEcho, make([]byte, n)); done <- err }()
	m := p.next(t)
	if m.Kind != wire.KindRequest || len(m.Payload) != n {
		t.Fatalf("got %v with %d bytes, want the request at the maximum", m.Kind, len(m.Payload))
	}
	p.send(t, wire.Message{Kind: wire.KindResponse, ID: m.ID, Status: wire.StatusOK})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// spec:29 a request binding exactly as many channels as the receiver
// holds, per call or per connection, is accepted.
func TestChannelsAtTheLimit(t *testing.T) {
	unknown := NewMethod("test", "unknown")
	for _, c := range []struct {
		name  string
		opts  Options
		count int
	}{
		{"per call", Options{}, MaxChannelsPerCall},
		{"per connection", Options{MaxChannels: 3}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, c.opts)
			p.hello(t, wire.Settings{})
			var raw []byte
			for i := range c.count {
				raw = wire.AppendChannel(raw, wire.ChannelBinding{ID: uint64(2*i + 1), Dir: wire.CallerSends, Window: 1})
			}
			p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: unknown.ID, Channels: wire.MakeChannelList(raw)})
			// Its channels are reset first (rule 30), then it is answered.
			if m := p.nextKind(t, wire.KindResponse); m.Status != wire.StatusUnknownMethod {
				t.Fatalf("got %v %v %q, want the call refused as UnknownMethod, not a violation", m.Kind, m.Code, m.Payload)
			}
			if s.Err() != nil {
				t.Fatalf("session ended: %v", s.Err())
			}
		})
	}
}

// A receive queue is compacted as the consumer catches up: a long stream
// through a small window keeps it at the window's size (as the window
// grows, at most 16 times 4 items; append may round its capacity up).
func TestReceiveQueueStaysSmall(t *testing.T) {
	client, _ := transports()[0].pair(t, Options{}, Options{Router: testbedRouter()})
	cl := client.Caller()
	defer cl.Close()
	rx := NewRx[int](cl.Conn(), 4)
	defer rx.Close()
	const items = 5000
	callErr := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), cl, mGenerate, []byte("5000"), &CallOptions{Channels: []Channel{rx}})
		callErr <- err
	}()
	st := rx.raw.st
	most := 0
	for i := range items {
		if v, err := rx.Recv(context.Background()); err != nil || v != i {
			t.Fatalf("item %d: %v %v", i, v, err)
		}
		st.mu.Lock()
		most = max(most, cap(st.queue))
		st.mu.Unlock()
	}
	if err := <-callErr; err != nil {
		t.Fatal(err)
	}
	if most > 2*4*windowGrowth {
		t.Fatalf("%d items through a window of 4: the queue grew to room for %d", items, most)
	}
}

// A typed payload with trailing bytes after the value does not decode.
func TestSonicRejectsTrailingBytes(t *testing.T) {
	var v struct{ A int }
	if err := (SonicCodec{}).Unmarshal([]byte(`{"A":1} {"A":2}`), &v); err == nil {
		t.Fatal("trailing value accepted")
	}
	if err := (SonicCodec{}).Unmarshal([]byte(`{"A":1}`), &v); err != nil || v.A != 1 {
		t.Fatalf("plain value: %v %+v", err, v)
	}
}

// An error's text has no stray separator, whatever it is made of.
func TestCallErrorText(t *testing.T) {
	for _, c := range []struct {
		err  *CallError
		want string
	}{
		{&CallError{Kind: ErrCancelled}, ErrCancelled.Error()},
		{&CallError{Kind: ErrConnectionClosed, Message: "link closed"}, ErrConnectionClosed.Error() + ": link closed"},
	} {
		if got := c.err.Error(); got != c.want || strings.HasPrefix(got, ":") {
			t.Fatalf("%q, want %q", got, c.want)
		}
	}
}
