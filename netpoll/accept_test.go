package netpoll

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
)

// flakyListener fails Accept with a temporary error n times, then hands
// out the conns it is given.
type flakyListener struct {
	mu     sync.Mutex
	fails  int
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Temporary() bool { return true }
func (tempErr) Timeout() bool   { return false }

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, tempErr{}
	}
	l.mu.Unlock()
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *flakyListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *flakyListener) Addr() net.Addr { return pipeAddr{} }

// Accept serves any net.Listener, and a temporary Accept error (out of
// descriptors) does not end it: it backs off and accepts again.
func TestAcceptSurvivesTemporaryErrors(t *testing.T) {
	ln := &flakyListener{fails: 3, conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := newEchoer()
	l := Accept(ln, Options{}, func(*Conn) Handler { return srv })
	defer l.Close()
	a, b := net.Pipe()
	ln.conns <- b
	cli := newRecorder()
	c := NewConn(a, cli, Options{})
	defer c.Close()
	if err := c.WriteFrame(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got := cli.waitFrames(t, 1); string(got[0]) != "hello" {
		t.Fatalf("echo %q", got[0])
	}
}

// A TLS transport without a Config says so instead of dialling in clear.
func TestTLSWithoutConfig(t *testing.T) {
	if _, err := (TLS{}).Dial(context.Background(), "tcp", "127.0.0.1:1", newRecorder()); !errors.Is(err, errNoTLSConfig) {
		t.Fatalf("Dial: %v", err)
	}
	if _, err := (TLS{}).Listen("tcp", "127.0.0.1:0", nil); !errors.Is(err, errNoTLSConfig) {
		t.Fatalf("Listen: %v", err)
	}
}
