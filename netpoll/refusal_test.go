package netpoll

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/rove-rpc/rove/internal/testwait"
)

// Dial and Listen that cannot succeed fail with the reason and leave
// nothing behind (no descriptor; goleak checks the goroutines): a refused
// connect, an address in use, and, on gnet, a transport already closed.
func TestDialAndListenRefusals(t *testing.T) {
	before := testwait.OpenFDs(t)
	eachStdAndGnet(t, Options{}, func(t *testing.T, tr Transport) {
		// A port that was just free: nothing listens on it.
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		free := probe.Addr().String()
		probe.Close()
		if c, err := tr.Dial(context.Background(), "tcp", free, newRecorder()); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial with nothing listening: %v, %v", c, err)
		}
		ln := listenFor(t, tr, func(*Conn) Handler { return newRecorder() })
		if l, err := tr.Listen("tcp", ln.Addr().String(), func(*Conn) Handler { return newRecorder() }); !errors.Is(err, syscall.EADDRINUSE) {
			if l != nil {
				l.Close()
			}
			t.Fatalf("listen on an address in use: %v", err)
		}
	})
	g := NewGnet(GnetOptions{EventLoops: 1})
	g.Close()
	if _, err := g.Dial(context.Background(), "tcp", "127.0.0.1:1", newRecorder()); !errors.Is(err, ErrTransportClosed) {
		t.Fatalf("dial on a closed transport: %v", err)
	}
	if _, err := g.Listen("tcp", "127.0.0.1:0", func(*Conn) Handler { return newRecorder() }); !errors.Is(err, ErrTransportClosed) {
		t.Fatalf("listen on a closed transport: %v", err)
	}
	// Every listener and transport above is closed by now (the subtests'
	// cleanups ran): the descriptors are all given back.
	testwait.For(t, "the descriptors back", func() bool { return testwait.OpenFDs(t) <= before })
}
