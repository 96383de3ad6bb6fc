package core

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// spec:5 a peer that breaks the framing (a length over our maximum, a
// header longer than 5 bytes) ends the session with a protocol violation,
// not a closed connection: the session's error is a ProtocolError naming
// the reason (errors.Is matches netpoll's cause), the call in flight fails
// with ErrProtocol and is not retryable, and nothing is sent to the peer
// (the framing is lost). During the handshake Dial fails with a
// HandshakeError of the same code.
func TestFramingErrorIsProtocolError(t *testing.T) {
	cases := []struct {
		name  string
		raw   []byte
		code  ReasonCode
		cause error
	}{
		{"length over the maximum", binaryUvarint(netpoll.DefaultMaxFrameSize + 1), ReasonFrameTooLarge, netpoll.ErrFrameTooLarge},
		{"header longer than 5 bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ReasonMalformed, netpoll.ErrMalformedHeader},
	}
	gn := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	defer gn.Close()
	for _, tr := range []struct {
		name string
		tr   netpoll.Transport
	}{{"std", netpoll.Std{}}, {"gnet", gn}} {
		for _, c := range cases {
			t.Run(tr.name+"/"+c.name, func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				type dialed struct {
					s   *Session
					err error
				}
				dial := func() (*rawClient, <-chan dialed) {
					dc := make(chan dialed, 1)
					go func() {
						s, err := Dial(context.Background(), tr.tr, "tcp", ln.Addr().String(), Options{})
						dc <- dialed{s, err}
					}()
					nc, err := ln.Accept()
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { nc.Close() })
					p := &rawClient{t: t, nc: nc}
					if m, ok := p.next(); !ok || m.Kind != wire.KindHello {
						t.Fatalf("got %v (ok %v), want Hello", m.Kind, ok)
					}
					return p, dc
				}

				// Mid-session, with a call in flight.
				p, dc := dial()
				p.send(wire.Message{Kind: wire.KindHelloAck, Version: 1, Parity: wire.ParityEven})
				d := <-dc
				if d.err != nil {
					t.Fatal(d.err)
				}
				defer d.s.Close()
				cl := d.s.Caller()
				defer cl.Close()
				callc := make(chan error, 1)
				go func() { _, err := call(context.Background(), cl, mEcho, []byte("x")); callc <- err }()
				for {
					m, ok := p.next()
					if !ok {
						t.Fatal("the link closed before the request came")
					}
					if m.Kind == wire.KindRequest {
						break
					}
				}
				p.write(c.raw)
				if err := <-callc; !errors.Is(err, ErrProtocol) || IsRetryable(err) {
					t.Fatalf("the call in flight: %v (retryable %v), want ErrProtocol, not retryable", err, IsRetryable(err))
				}
				waitDone(t, d.s)
				var pe *ProtocolError
				if err := d.s.Err(); !errors.As(err, &pe) || pe.Code != c.code || pe.Remote || !errors.Is(err, c.cause) {
					t.Fatalf("session error %v, want a local ProtocolError (%v) wrapping %v", err, c.code, c.cause)
				}
				p.expectClose()

				// During the handshake.
				p, dc = dial()
				p.write(c.raw)
				var he *HandshakeError
				if d := <-dc; d.err == nil || !errors.As(d.err, &he) || he.Code != c.code || !errors.Is(d.err, c.cause) {
					t.Fatalf("Dial: %v, want a HandshakeError (%v) wrapping %v", d.err, c.code, c.cause)
				}
				p.expectClose()
			})
		}
	}
}
