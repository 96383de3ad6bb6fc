package core

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testcert"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// requireToken is an AcceptSession hook that admits sessions whose
// metadata carries token "secret".
func requireToken(_ context.Context, req SessionRequest) error {
	if v, ok := req.Metadata.Get("token"); !ok || v.Str() != "secret" {
		return Reject("bad token")
	}
	return nil
}

// The accept hook refuses by metadata before HelloAck: the client's Dial
// fails with ErrRejected (not retryable, with the hook's reason), and
// the server never sees the session; the right token is admitted.
func TestAcceptSessionByMetadata(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		t.Run("refused", func(t *testing.T) {
			co := Options{Metadata: Metadata{}.Add("token", StringValue("guess"), 0)}
			c, s, err := pairErr(t, tr, co, Options{AcceptSession: requireToken})
			if err == nil {
				c.Close()
				t.Fatal("session established without the token")
			}
			var he *HandshakeError
			if !errors.Is(err, ErrRejected) || IsRetryable(err) || !errors.As(err, &he) || he.Code != ReasonCode(wire.CodeRefused) || he.Reason != "bad token" {
				t.Fatalf("Dial: %v", err)
			}
			if s != nil {
				t.Fatal("OnSession saw a refused session")
			}
		})
		t.Run("admitted", func(t *testing.T) {
			co := Options{Metadata: Metadata{}.Add("token", StringValue("secret"), 0)}
			c, _, err := pairErr(t, tr, co, Options{AcceptSession: requireToken, Router: echoRouter()})
			if err != nil {
				t.Fatal(err)
			}
			echoOnce(t, c)
		})
	})
}

// pairErr dials a server with so's options over tr's kind of link and
// returns the Dial error instead of failing; s is the accepted session,
// if OnSession saw one by the time Dial returned.
func pairErr(t *testing.T, tr transport, co, so Options) (c, s *Session, err error) {
	t.Helper()
	accepted := make(chan *Session, 1)
	so.OnSession = func(s *Session) { accepted <- s }
	var srv *Server
	switch tr.name {
	case "pipe":
		ln := newPipeListener()
		srv, _ = ServeListener(ln, so)
		nc, derr := ln.dial()
		if derr != nil {
			t.Fatal(derr)
		}
		c, err = DialConn(context.Background(), nc, co)
	default:
		g := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
		t.Cleanup(func() { g.Close() })
		if srv, err = Serve(g, "tcp", "127.0.0.1:0", so); err != nil {
			t.Fatal(err)
		}
		c, err = Dial(context.Background(), g, "tcp", srv.Addr().String(), co)
	}
	t.Cleanup(func() {
		if c != nil {
			c.Close()
		}
		srv.Close()
	})
	select {
	case s = <-accepted:
	default:
	}
	return c, s, err
}

// The hook refuses by TLS identity under mutual TLS: both clients hold
// a certificate from the server's CA, only client-a is let in.
func TestAcceptSessionByTLSIdentity(t *testing.T) {
	ca := testcert.NewCA("rove test CA")
	onlyA := func(_ context.Context, req SessionRequest) error {
		if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 {
			return Reject("mutual TLS required")
		}
		if cn := req.TLS.VerifiedChains[0][0].Subject.CommonName; cn != "client-a" {
			return Reject(cn + " may not connect")
		}
		return nil
	}
	addr, _ := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Server("server")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool,
	}, Options{AcceptSession: onlyA})
	dial := func(name string) (*Session, error) {
		return dialTLS(addr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: []tls.Certificate{ca.Client(name)}}, Options{})
	}
	s, err := dial("client-a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echoOnce(t, s)
	if _, err := dial("client-b"); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "client-b may not connect") {
		t.Fatalf("client-b: %v", err)
	}
}

// A hook may block: it runs off the reading goroutine. Meanwhile an
// initiator that sends anything before HelloAck is refused, and a hook
// error that is not a Reject tells the peer nothing of its text.
func TestAcceptSessionWhileVetting(t *testing.T) {
	t.Run("message before HelloAck", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		s, p := newRawPeer(t, false, Options{AcceptSession: func(ctx context.Context, _ SessionRequest) error {
			close(entered)
			<-release
			return nil
		}})
		defer close(release)
		p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd})
		<-entered
		p.send(t, wire.Message{Kind: wire.KindPing, ID: 1})
		if m := p.next(t); m.Kind != wire.KindReject || m.Code != wire.CodeUnexpected {
			t.Fatalf("got %v %v, want Reject (unexpected)", m.Kind, m.Code)
		}
		testwait.For(t, "the session to end", func() bool { return s.Err() != nil })
		if !errors.Is(s.Err(), ErrHandshake) {
			t.Fatalf("session error %v", s.Err())
		}
	})
	t.Run("private error", func(t *testing.T) {
		_, p := newRawPeer(t, false, Options{AcceptSession: func(context.Context, SessionRequest) error {
			return errors.New("db password rejected for user admin")
		}})
		p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd})
		m := p.next(t)
		if m.Kind != wire.KindReject || m.Code != wire.CodeRefused || string(m.Payload) != "session refused" {
			t.Fatalf("got %v %v %q", m.Kind, m.Code, m.Payload)
		}
	})
	t.Run("panic", func(t *testing.T) {
		_, p := newRawPeer(t, false, Options{AcceptSession: func(context.Context, SessionRequest) error { panic("boom") }})
		p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd})
		if m := p.next(t); m.Kind != wire.KindReject || m.Code != wire.CodeRefused {
			t.Fatalf("got %v %v", m.Kind, m.Code)
		}
	})
}
