package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testcert"
	"github.com/rove-rpc/rove/netpoll"
)

// tlsServer serves the echo router over TLS with cfg and returns the
// address; sessions it accepted go to the returned channel.
func tlsServer(t *testing.T, cfg *tls.Config, opts Options) (string, <-chan *Session) {
	t.Helper()
	accepted := make(chan *Session, 4)
	opts.Router = echoRouter()
	opts.OnSession = func(s *Session) { accepted <- s }
	srv, err := Serve(netpoll.TLS{Config: cfg}, "tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String(), accepted
}

func dialTLS(addr string, cfg *tls.Config, opts Options) (*Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Dial(ctx, netpoll.TLS{Config: cfg}, "tcp", addr, opts)
}

func echoOnce(t *testing.T, s *Session) {
	t.Helper()
	cl := s.Caller()
	defer cl.Close()
	got, err := call(context.Background(), cl, mEcho, []byte("over tls"))
	if err != nil || string(got) != "over tls" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// A session over TLS: calls work, both ends see the TLS state, and a
// client that trusts another CA is refused by its own verification.
func TestTLSSession(t *testing.T) {
	ca := testcert.NewCA("rove test CA")
	addr, accepted := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.Server("server")}}, Options{})

	s, err := dialTLS(addr, &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echoOnce(t, s)
	st := s.TLS()
	if st == nil || st.Version != tls.VersionTLS13 || st.PeerCertificates[0].Subject.CommonName != "server" {
		t.Fatalf("client TLS state %+v", st)
	}
	if srv := <-accepted; srv.TLS() == nil {
		t.Fatal("the server's session has no TLS state")
	}

	other := testcert.NewCA("someone else")
	_, err = dialTLS(addr, &tls.Config{RootCAs: other.Pool, ServerName: "localhost"}, Options{})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("a client trusting another CA got %v, want an unknown-authority error", err)
	}
}

// mTLS: the server requires a client certificate from its CA; a client
// without one, or with one from another CA, is refused; the server's
// session sees the client's verified identity.
func TestMutualTLS(t *testing.T) {
	ca := testcert.NewCA("rove test CA")
	addr, accepted := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{ca.Server("server")},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool,
	}, Options{})
	client := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: ca.Pool, ServerName: "localhost", Certificates: certs}
	}

	s, err := dialTLS(addr, client(ca.Client("client-a")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echoOnce(t, s)
	if st := (<-accepted).TLS(); st == nil || len(st.VerifiedChains) == 0 || st.PeerCertificates[0].Subject.CommonName != "client-a" {
		t.Fatalf("server sees %+v", st)
	}

	// TLS 1.3 reports a refused client certificate after the client's
	// side of the TLS handshake has finished: the refusal arrives on the
	// first read, so the session's handshake fails with the TLS alert.
	// (A client holds back a certificate the server's CA list does not
	// name, so both are "certificate required".)
	for name, cfg := range map[string]*tls.Config{
		"no certificate": client(),
		"another CA's":   client(testcert.NewCA("someone else").Client("client-a")),
	} {
		s, err := dialTLS(addr, cfg, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("%s: session established", name)
		}
		// Refused by TLS, not by the peer's Rove acceptor: no ErrRejected.
		if !errors.Is(err, ErrHandshake) || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "certificate required") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	select {
	case s := <-accepted:
		t.Fatalf("a session was accepted from %v", s.RemoteAddr())
	default:
	}
}

// DialConn and ServeListener run a session over connections the caller
// made: here an in-memory listener and net.Pipe, no socket at all.
func TestSessionOverNetConn(t *testing.T) {
	ln := newPipeListener()
	srv, err := ServeListener(ln, Options{Router: echoRouter()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := ln.dial()
	if err != nil {
		t.Fatal(err)
	}
	s, err := DialConn(ctx, nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, s)
	if s.RemoteAddr().Network() != "pipe" || s.TLS() != nil {
		t.Fatalf("remote %v, TLS %v", s.RemoteAddr(), s.TLS())
	}
	s.Close()
	srv.Close()
	if _, err := ln.dial(); err == nil {
		t.Fatal("Server.Close left the listener open")
	}
}

// pipeListener is an in-memory net.Listener: dial makes a net.Pipe and
// hands one end to Accept.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial() (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
