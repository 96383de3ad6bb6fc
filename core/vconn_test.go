package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

// acceptWith accepts every virtual connection with router r, recording the
// metadata it was opened with.
func acceptWith(r *Router, seen chan<- Metadata) AcceptConnFunc {
	return func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		if seen != nil {
			seen <- req.Metadata
		}
		if v, ok := req.Metadata.Get("deny"); ok {
			return ConnOptions{}, errors.New("denied: " + v.Str())
		}
		return ConnOptions{Router: r, Metadata: Metadata{}.Add("accepted-by", StringValue("server"), 0)}, nil
	}
}

// spec:8 either peer opens a virtual connection; the acceptor sees its
// metadata and accepts with its own handlers; calls flow on it.
func TestOpenVirtualConn(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		seen := make(chan Metadata, 1)
		client, server := tr.pair(t, Options{AcceptConn: acceptWith(echoRouter(), nil)}, Options{AcceptConn: acceptWith(echoRouter(), seen)})
		c, err := client.OpenConn(context.Background(), ConnOptions{Metadata: Metadata{}.Add("tenant", StringValue("t1"), 0)})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := (<-seen).Get("tenant"); v.Str() != "t1" {
			t.Fatal("acceptor did not see the metadata")
		}
		if v, _ := c.PeerMetadata().Get("accepted-by"); v.Str() != "server" {
			t.Fatalf("opener saw %v", c.PeerMetadata())
		}
		if c.ID()%2 != 1 {
			t.Fatalf("initiator opened id %d, want odd", c.ID())
		}
		cl := c.Caller()
		defer cl.Close()
		if got, err := call(context.Background(), cl, mEcho, []byte("virtual")); err != nil || string(got) != "virtual" {
			t.Fatalf("%q %v", got, err)
		}
		// The other way: the acceptor side opens one too, with an even id.
		c2, err := server.OpenConn(context.Background(), ConnOptions{})
		if err != nil || c2.ID()%2 != 0 {
			t.Fatalf("server open: %v id %d", err, c2.ID())
		}
		c2.Close()
	})
}

// spec:8 refusals: by the acceptor, without an acceptor, at the local
// limit; the session carries on.
func TestVirtualConnRefused(t *testing.T) {
	client, server := transports()[0].pair(t, Options{}, Options{AcceptConn: acceptWith(nil, nil), MaxVirtualConns: 1})
	_, err := client.OpenConn(context.Background(), ConnOptions{Metadata: Metadata{}.Add("deny", StringValue("no"), 0)})
	var rej *ConnRejectedError
	if !errors.As(err, &rej) || rej.Code != ReasonCode(wire.CodeRefused) || rej.Reason != "denied: no" || !strings.HasSuffix(err.Error(), ": denied: no") {
		t.Fatalf("acceptor refusal: %v", err)
	}
	c, err := client.OpenConn(context.Background(), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenConn(context.Background(), ConnOptions{}); !errors.As(err, &rej) || rej.Code != ReasonCode(wire.CodeRefused) {
		t.Fatalf("over the peer's limit: %v", err)
	}
	c.Close()
	testwait.For(t, "the server to forget the closed connection", func() bool { return server.vconns.Size() == 0 })
	if _, err := server.OpenConn(context.Background(), ConnOptions{}); !errors.As(err, &rej) {
		t.Fatalf("peer without an acceptor: %v", err)
	}
	if client.Err() != nil || server.Err() != nil {
		t.Fatal(client.Err(), server.Err())
	}
}

// spec:7,8 wrong parity, an id in use, closing the root, and anything sent
// before acceptance are protocol violations.
func TestVirtualConnViolations(t *testing.T) {
	slow := func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		<-ctx.Done()
		return ConnOptions{}, ctx.Err()
	}
	cases := []struct {
		name string
		msgs []wire.Message
		code wire.Code
	}{
		{"wrong parity", []wire.Message{{Kind: wire.KindOpenConn, Conn: 2, Parity: wire.ParityOdd}}, wire.CodeWrongParity},
		{"id in use", []wire.Message{{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd}, {Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd}}, wire.CodeIDInUse},
		{"close of root", []wire.Message{{Kind: wire.KindCloseConn, Conn: 0}}, wire.CodeRootClose},
		{"request before accept", []wire.Message{{Kind: wire.KindOpenConn, Conn: 3, Parity: wire.ParityOdd}, {Kind: wire.KindRequest, Conn: 3, ID: 1}}, wire.CodeUnexpected},
		{"accept we never asked for", []wire.Message{{Kind: wire.KindAcceptConn, Conn: 4, Parity: wire.ParityOdd}}, wire.CodeUnknownConn},
		{"close of a connection never opened", []wire.Message{{Kind: wire.KindCloseConn, Conn: 5}}, wire.CodeUnknownConn},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{AcceptConn: slow})
			p.hello(t, wire.Settings{})
			for _, m := range c.msgs {
				p.send(t, m)
			}
			m := p.next(t)
			if m.Kind != wire.KindProtocolError || m.Code != c.code {
				t.Fatalf("got %v %v, want ProtocolError %v", m.Kind, m.Code, c.code)
			}
			waitDone(t, s)
		})
	}
}

// spec:9 CloseConn ends a virtual connection at once: pending calls fail,
// handlers are cancelled, channels end, later messages on the id are a
// violation; the root and other connections are untouched.
func TestCloseVirtualConn(t *testing.T) {
	started := make(chan struct{}, 1)
	cancelled := make(chan error, 1)
	r := echoRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- req.Cause()
		return nil
	})
	client, _ := transports()[1].pair(t, Options{Router: echoRouter()}, Options{Router: echoRouter(), AcceptConn: acceptWith(r, nil)})
	a, err := client.OpenConn(context.Background(), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.OpenConn(context.Background(), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, cb, root := a.Caller(), b.Caller(), client.Caller()
	defer ca.Close()
	defer cb.Close()
	defer root.Close()
	rx := a.NewRx(4)
	errc := make(chan error, 1)
	go func() {
		_, err := call(context.Background(), ca, mBlock, nil, &CallOptions{Channels: []Channel{rx}})
		errc <- err
	}()
	<-started
	a.Close()
	if err := <-errc; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("pending call: %v", err)
	}
	if err := <-cancelled; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("handler cause: %v", err)
	}
	if _, err := rx.Recv(context.Background()); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("channel: %v", err)
	}
	if _, err := call(context.Background(), ca, mEcho, nil); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("call on the closed connection: %v", err)
	}
	for _, cl := range []*Caller{cb, root} {
		if got, err := call(context.Background(), cl, mEcho, []byte("ok")); err != nil || string(got) != "ok" {
			t.Fatalf("other connection: %q %v", got, err)
		}
	}
	// a is forgotten once the peer acknowledged
	testwait.For(t, "the closed connection to be forgotten", func() bool { return client.vconns.Size() == 1 })
}

// spec:9 after CloseConn, a message on that id is a violation.
func TestMessageAfterCloseConnIsViolation(t *testing.T) {
	s, p := newRawPeer(t, false, Options{AcceptConn: acceptWith(echoRouter(), nil)})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd})
	if m := p.next(t); m.Kind != wire.KindAcceptConn || m.Parity != wire.ParityEven {
		t.Fatalf("got %v %v", m.Kind, m.Parity)
	}
	p.send(t, wire.Message{Kind: wire.KindCloseConn, Conn: 1})
	if m := p.next(t); m.Kind != wire.KindCloseConn || m.Conn != 1 {
		t.Fatalf("no acknowledgement: %v", m.Kind)
	}
	p.send(t, wire.Message{Kind: wire.KindRequest, Conn: 1, ID: 1, Method: mEcho.ID})
	if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeUnknownConn {
		t.Fatalf("got %v %v", m.Kind, m.Code)
	}
	waitDone(t, s)
}

// Thousands of open/close cycles leave no map entry and no goroutine.
func TestVirtualConnChurn(t *testing.T) {
	client, server := transports()[0].pair(t, Options{}, Options{AcceptConn: acceptWith(echoRouter(), nil)})
	before := runtime.NumGoroutine()
	for i := range 2000 {
		c, err := client.OpenConn(context.Background(), ConnOptions{})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if i%100 == 0 {
			cl := c.Caller()
			if _, err := call(context.Background(), cl, mEcho, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	testwait.For(t, "every connection and its goroutines to go", func() bool {
		return client.vconns.Size()+server.vconns.Size() == 0 && runtime.NumGoroutine() <= before+2
	})
}

// A relay passes calls and channels through unchanged and closes both
// halves together.
func TestRelay(t *testing.T) {
	ctx := context.Background()
	idSeen := make(chan uint64, 1)
	r := testbedRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		idSeen <- req.ID()
		return req.Reply(req.Payload(), nil)
	})
	toServer, server, err := Pipe(ctx, Options{}, Options{AcceptConn: acceptWith(r, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	defer toServer.Close()
	client, middle, err := Pipe(ctx, Options{}, Options{AcceptConn: func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		far, err := toServer.OpenConn(ctx, ConnOptions{Parity: req.Parity, Relay: req.Conn})
		if err != nil {
			return ConnOptions{}, err
		}
		return ConnOptions{Relay: far}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer middle.Close()
	defer client.Close()

	c, err := client.OpenConn(ctx, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Caller()
	defer cl.Close()
	if got, err := call(ctx, cl, mEcho, []byte("through")); err != nil || string(got) != "through" {
		t.Fatalf("%q %v", got, err)
	}
	if id := <-idSeen; id != 1 {
		t.Fatalf("server saw request id %d, the client sent 1", id)
	}
	rx := NewRx[int](c, 8)
	errc := make(chan error, 1)
	go func() { errc <- expectSequence(rx, 300) }()
	if _, err := call(ctx, cl, mGenerate, []byte("300"), &CallOptions{Channels: []Channel{rx}}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	c.Close()
	testwait.For(t, "both halves of the relay to close", func() bool {
		return server.vconns.Size()+middle.vconns.Size()+toServer.vconns.Size() == 0
	})
}

// spec:9 no message of a virtual connection follows its CloseConn: one a
// goroutine sends after the teardown (a Tx closed by its handler's end,
// a Cancel, a grant) is dropped, where the peer, which has forgotten the
// id, would take it as a violation and end the session.
func TestNoMessageAfterCloseConn(t *testing.T) {
	client, server := transports()[0].pair(t, Options{Router: echoRouter()}, Options{Router: echoRouter(), AcceptConn: acceptWith(echoRouter(), nil)})
	a, err := client.OpenConn(context.Background(), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := a.conn
	a.Close() // teardown, then CloseConn
	c.sendSoon(&wire.Message{Kind: wire.KindChannelClose, Conn: c.id, ID: 99})
	c.sendSoon(&wire.Message{Kind: wire.KindCancel, Conn: c.id, ID: 1})
	if err := c.send(context.Background(), &wire.Message{Kind: wire.KindGrantCredit, Conn: c.id, ID: 99, Credit: 1}); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("a grant on a closed connection: %v", err)
	}
	// The root still works, both ways: nothing reached the server as a
	// violation.
	cl := client.Caller()
	defer cl.Close()
	if got, err := call(context.Background(), cl, mEcho, []byte("alive")); err != nil || string(got) != "alive" {
		t.Fatalf("after the closed connection's late messages: %q %v", got, err)
	}
	if err := server.Err(); err != nil {
		t.Fatalf("server session ended: %v", err)
	}
}

// spec:18 a virtual connection's own MaxConcurrentRequests (ConnOptions)
// is what its side advertises for it: the peer keeps within it on that
// connection, while the root goes on under the session's limit.
func TestVirtualConnOwnLimit(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done(): // the test failed: the session's close ends it
			return ctx.Err()
		}
		return req.Reply(nil, nil)
	})
	accept := func(ctx context.Context, req ConnRequest) (ConnOptions, error) {
		return ConnOptions{Router: r, MaxConcurrentRequests: 1}, nil
	}
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r, AcceptConn: accept})
	vc, err := client.OpenConn(context.Background(), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	vcl, root := vc.Caller(), client.Caller()
	defer vcl.Close()
	defer root.Close()
	errc := make(chan error, 4)
	callOn := func(cl *Caller) { go func() { _, err := call(context.Background(), cl, mBlock, nil); errc <- err }() }
	callOn(vcl)
	testwait.Recv(t, "the first call on the connection", started)
	callOn(vcl) // over the connection's limit of 1: waits
	testwait.Blocked(t, "core.(*callSlots).acquire", 1)
	callOn(root) // the root's limit is the session's: runs at once
	callOn(root)
	for range 2 {
		testwait.Recv(t, "the root's calls", started)
	}
	select {
	case <-started:
		t.Fatal("a second call ran on the connection over its limit of 1")
	default:
	}
	close(release)
	for range 4 {
		if err := testwait.Recv(t, "the calls' ends", errc); err != nil {
			t.Fatal(err)
		}
	}
}
