package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
)

// spec:8,9 OpenConn that gives up before the peer answers leaves nothing
// behind: when the acceptance comes later, the connection is closed at
// once (CloseConn), forgotten on the acknowledgement, and does not count
// against MaxVirtualConns.
func TestOpenConnGivenUpThenAccepted(t *testing.T) {
	s, p := newRawPeer(t, false, Options{MaxVirtualConns: 1})
	p.hello(t, wire.Settings{})
	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan error, 1)
	go func() { _, err := s.OpenConn(ctx, ConnOptions{}); opened <- err }()
	open := p.nextKind(t, wire.KindOpenConn)
	cancel()
	if err := <-opened; !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenConn: %v, want ErrCancelled over context.Canceled", err)
	}
	p.send(t, wire.Message{Kind: wire.KindAcceptConn, Conn: open.Conn, Parity: open.Parity.Opposite()})
	if m := p.nextKind(t, wire.KindCloseConn); m.Conn != open.Conn {
		t.Fatalf("CloseConn for %d, want %d", m.Conn, open.Conn)
	}
	p.send(t, wire.Message{Kind: wire.KindCloseConn, Conn: open.Conn}) // the acknowledgement
	testwait.For(t, "the connection to be forgotten", func() bool { return s.vconns.Size() == 0 })
	// The slot is free again: the next OpenConn goes out.
	go func() { _, err := s.OpenConn(context.Background(), ConnOptions{}); opened <- err }()
	next := p.nextKind(t, wire.KindOpenConn)
	p.send(t, wire.Message{Kind: wire.KindAcceptConn, Conn: next.Conn, Parity: next.Parity.Opposite()})
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
}

// spec:9 a CloseConn that arrives while we are opening ends OpenConn's
// wait at once with a connection-closed error, and is acknowledged.
func TestCloseConnWhileOpening(t *testing.T) {
	s, p := newRawPeer(t, false, Options{})
	p.hello(t, wire.Settings{})
	opened := make(chan error, 1)
	go func() { _, err := s.OpenConn(context.Background(), ConnOptions{}); opened <- err }()
	open := p.nextKind(t, wire.KindOpenConn)
	p.send(t, wire.Message{Kind: wire.KindCloseConn, Conn: open.Conn})
	select {
	case err := <-opened:
		if !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("OpenConn: %v", err)
		}
	case <-time.After(testwait.Timeout):
		t.Fatal("OpenConn still waits after the peer closed the connection")
	}
	if m := p.nextKind(t, wire.KindCloseConn); m.Conn != open.Conn {
		t.Fatalf("acknowledged %d, want %d", m.Conn, open.Conn)
	}
	testwait.For(t, "the connection to be forgotten", func() bool { return s.vconns.Size() == 0 })
}

// spec:9 once a virtual connection is closed, nothing more is sent on it:
// a handler that replies after the peer's CloseConn (here, one that
// ignores its cancelled context) sends no Response after our
// acknowledgement, which the peer would have to take as a violation.
func TestNoResponseAfterCloseConn(t *testing.T) {
	mLate := NewMethod("test", "late")
	release, started := make(chan struct{}), make(chan struct{})
	replied := make(chan error, 1)
	r := NewRouter()
	r.Handle(mLate, func(ctx context.Context, req *Request) error {
		close(started)
		<-release // ignores its cancelled ctx on purpose
		err := req.Reply([]byte("too late"), nil)
		replied <- err
		return err
	})
	s, p := newRawPeer(t, false, Options{AcceptConn: acceptWith(r, nil)})
	p.hello(t, wire.Settings{})
	p.send(t, wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd})
	if m := p.next(t); m.Kind != wire.KindAcceptConn {
		t.Fatalf("got %v, want AcceptConn", m.Kind)
	}
	p.send(t, wire.Message{Kind: wire.KindRequest, Conn: 1, ID: 1, Method: mLate.ID})
	<-started
	p.send(t, wire.Message{Kind: wire.KindCloseConn, Conn: 1})
	if m := p.next(t); m.Kind != wire.KindCloseConn || m.Conn != 1 {
		t.Fatalf("got %v on %d, want the CloseConn acknowledgement", m.Kind, m.Conn)
	}
	close(release)
	if err := <-replied; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("Reply on a closed connection: %v, want ErrConnectionClosed", err)
	}
	p.send(t, wire.Message{Kind: wire.KindPing, ID: 9})
	for {
		m := p.next(t)
		if m.Kind == wire.KindPong {
			break
		}
		t.Fatalf("got %v on connection %d after its close", m.Kind, m.Conn)
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// spec:8,34 OpenConn refuses locally, before anything is sent: on a
// session at its own MaxVirtualConns (ErrTooManyConns), with metadata over
// the peer's limits (ErrSendFailed, ErrMetadataTooLarge), and on a closed
// session (ErrConnectionClosed). The root connection does not close alone.
func TestOpenConnRefusedLocally(t *testing.T) {
	client, server := transports()[0].pair(t, Options{MaxVirtualConns: 1}, Options{AcceptConn: acceptWith(nil, nil), MaxMetadataEntries: 1})
	ctx := context.Background()
	c, err := client.OpenConn(ctx, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.OpenConn(ctx, ConnOptions{}); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("a second connection at MaxVirtualConns 1: %v", err)
	}
	c.Close()
	testwait.For(t, "both sides to forget the closed connection", func() bool { return client.vconns.Size() == 0 && server.vconns.Size() == 0 })
	two := Metadata{}.Add("a", U64Value(1), 0).Add("b", U64Value(2), 0)
	if _, err := client.OpenConn(ctx, ConnOptions{Metadata: two}); !errors.Is(err, ErrSendFailed) || !errors.Is(err, ErrMetadataTooLarge) {
		t.Fatalf("two metadata entries, the peer takes one: %v", err)
	}
	if server.vconns.Size() != 0 {
		t.Fatal("a refused OpenConn reached the peer")
	}
	if err := client.Caller().Conn().Close(); err == nil {
		t.Fatal("the root connection closed alone")
	}
	if client.Err() != nil {
		t.Fatalf("session ended: %v", client.Err())
	}
	client.Close()
	if _, err := client.OpenConn(ctx, ConnOptions{}); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("OpenConn on a closed session: %v", err)
	}
}

// spec:7,8 an AcceptConn for a connection already open, or one that takes
// the opener's parity, is a violation.
func TestAcceptConnViolations(t *testing.T) {
	for _, c := range []struct {
		name   string
		parity wire.Parity // of the first AcceptConn
		second bool        // a second AcceptConn
		code   wire.Code
	}{
		{"accepted twice", wire.ParityOdd, true, wire.CodeUnexpected},
		{"accepted with the opener's parity", wire.ParityEven, false, wire.CodeParity},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := newRawPeer(t, false, Options{})
			p.hello(t, wire.Settings{})
			opened := make(chan error, 1)
			go func() { _, err := s.OpenConn(context.Background(), ConnOptions{}); opened <- err }()
			m := p.nextKind(t, wire.KindOpenConn)
			p.send(t, wire.Message{Kind: wire.KindAcceptConn, Conn: m.Conn, Parity: c.parity})
			if c.second {
				if err := <-opened; err != nil {
					t.Fatal(err)
				}
				p.send(t, wire.Message{Kind: wire.KindAcceptConn, Conn: m.Conn, Parity: c.parity})
			}
			if m := p.nextKind(t, wire.KindProtocolError); m.Code != c.code {
				t.Fatalf("ProtocolError %v %q, want %v", m.Code, m.Payload, c.code)
			}
			waitDone(t, s)
			if !c.second {
				if err := <-opened; err == nil {
					t.Fatal("OpenConn succeeded on a violating AcceptConn")
				}
			}
		})
	}
}
