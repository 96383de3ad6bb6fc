package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/internal/testcert"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// recorder is a Handler that keeps a copy of every frame and the close.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	more   chan struct{} // kicked after every batch
	closes int
	err    error
	closed chan struct{}
	echo   chan echoFrame // non-nil: write every frame back, in order
	echoed chan struct{}  // closed when the echo goroutine ended
}

type echoFrame struct {
	c *Conn
	f Frame
}

// newEchoer returns a recorder that also writes every frame back, in
// order, from its own goroutine: on gnet the handler runs on the event loop,
// which must not block on a write.
func newEchoer() *recorder {
	r := newRecorder()
	r.echo = make(chan echoFrame, 1<<16)
	r.echoed = make(chan struct{})
	go func() {
		defer close(r.echoed)
		for e := range r.echo {
			_ = e.c.WriteFrame(context.Background(), e.f.Body)
			e.f.Release()
		}
	}()
	return r
}

func newRecorder() *recorder {
	return &recorder{more: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (r *recorder) HandleFrames(c *Conn, frames []Frame) {
	r.mu.Lock()
	for _, f := range frames {
		r.frames = append(r.frames, append([]byte{}, f.Body...))
	}
	r.mu.Unlock()
	if r.echo != nil {
		for _, f := range frames {
			r.echo <- echoFrame{c, f}
		}
	} else {
		for _, f := range frames {
			f.Release()
		}
	}
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) HandleClose(c *Conn, err error) {
	r.mu.Lock()
	r.closes++
	r.err = err
	r.mu.Unlock()
	if r.echo != nil {
		close(r.echo)
		<-r.echoed
	}
	close(r.closed)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// waitFrames waits until n frames arrived.
func (r *recorder) waitFrames(t testing.TB, n int) [][]byte {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for r.count() < n {
		select {
		case <-r.more:
		case <-r.closed:
			if r.count() < n {
				t.Fatalf("closed (%v) after %d of %d frames", r.closeErr(), r.count(), n)
			}
		case <-deadline:
			t.Fatalf("timed out after %d of %d frames", r.count(), n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.frames
}

func (r *recorder) waitClose(t testing.TB) error {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("HandleClose not called")
	}
	return r.closeErr()
}

func (r *recorder) closeErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// transportCase connects a client to a server over one transport.
type transportCase struct {
	name string
	// connect returns the client Conn and the server's Conn.
	connect func(t testing.TB, opts Options, hc, hs Handler) (client, server *Conn)
}

func listenCase(name string, mk func(opts Options) (Transport, func()), network string) transportCase {
	return transportCase{name: name, connect: func(t testing.TB, opts Options, hc, hs Handler) (*Conn, *Conn) {
		tr, stop := mk(opts)
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "s")
		}
		accepted := make(chan *Conn, 1)
		ln, err := tr.Listen(network, addr, func(c *Conn) Handler {
			accepted <- c
			return hs
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client, err := tr.Dial(ctx, network, ln.Addr().String(), hc)
		if err != nil {
			t.Fatal(err)
		}
		server := <-accepted
		t.Cleanup(func() {
			client.Close()
			ln.Close()
			stop()
		})
		return client, server
	}}
}

func transports() []transportCase {
	std := func(opts Options) (Transport, func()) { return Std{Options: opts}, func() {} }
	gn := func(opts Options) (Transport, func()) {
		g := NewGnet(GnetOptions{Options: opts, EventLoops: 2})
		return g, func() { g.Close() }
	}
	return []transportCase{
		{name: "pipe", connect: func(t testing.TB, opts Options, hc, hs Handler) (*Conn, *Conn) {
			a, b := Pipe(hc, hs, opts)
			t.Cleanup(func() { a.Close(); b.Close() })
			return a, b
		}},
		listenCase("std-tcp", std, "tcp"),
		listenCase("std-unix", std, "unix"),
		listenCase("tls-tcp", tlsTransport, "tcp"),
		listenCase("gnet-tcp", gn, "tcp"),
		listenCase("gnet-unix", gn, "unix"),
	}
}

// testCA signs the TLS transport's certificates in tests.
var testCA = testcert.NewCA("netpoll test CA")

// tlsTransport is TLS with one Config for both ends: the server's
// certificate, and the CA and name to verify it.
func tlsTransport(opts Options) (Transport, func()) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testCA.Server("server")}, RootCAs: testCA.Pool, ServerName: "localhost"}
	return TLS{Config: cfg, Options: opts}, func() {}
}

// forEachTransport runs f as a subtest per transport.
func forEachTransport(t *testing.T, f func(t *testing.T, tc transportCase)) {
	for _, tc := range transports() {
		t.Run(tc.name, func(t *testing.T) { f(t, tc) })
	}
}

func isClosedErr(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, net.ErrClosed)
}

func runtimeYield() { time.Sleep(100 * time.Microsecond) }

// eachStdAndGnet runs f as a subtest on the std transport and on gnet
// (one event loop), both with opts.
func eachStdAndGnet(t *testing.T, opts Options, f func(t *testing.T, tr Transport)) {
	g := NewGnet(GnetOptions{EventLoops: 1, Options: opts})
	defer g.Close()
	for _, tc := range []struct {
		name string
		tr   Transport
	}{{"std", Std{Options: opts}}, {"gnet", g}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.tr) })
	}
}

// listenFor listens on a loopback port of tr until the test ends, and
// gives every connection the handler accept returns.
func listenFor(t *testing.T, tr Transport, accept AcceptFunc) Listener {
	t.Helper()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", accept)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// rawListener listens on a loopback port with the standard library until
// the test ends; the first connection it accepts comes on the channel.
func rawListener(t *testing.T) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := ln.Accept()
		accepted <- nc
	}()
	return ln, accepted
}
