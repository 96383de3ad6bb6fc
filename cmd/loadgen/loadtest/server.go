package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/testcert"
	"github.com/rove-rpc/rove/netpoll"
)

// mEcho is the method loadgen calls: the server echoes the payload.
var mEcho = core.NewMethod("loadgen", "Echo")

// mStream streams items back: the request payload is the item count and
// size (two little-endian uint32s); the call binds one channel the server
// sends on.
var mStream = core.NewMethod("loadgen", "Stream")

func echoRouter(inline bool) *core.Router {
	r := core.NewRouter()
	h := func(ctx context.Context, req *core.Request) error { return req.Reply(req.Payload(), nil) }
	if inline {
		r.HandleInline(mEcho, h)
	} else {
		r.Handle(mEcho, h)
	}
	// Streaming waits for credit, so it always runs on the pool.
	r.Handle(mStream, func(ctx context.Context, req *core.Request) error {
		p := req.Payload()
		if len(p) != 8 {
			return &core.InvalidPayloadError{Err: fmt.Errorf("want 8 bytes, got %d", len(p))}
		}
		n, size := binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:])
		if size > 16<<20 {
			return &core.InvalidPayloadError{Err: fmt.Errorf("item size %d over 16 MiB", size)}
		}
		tx, err := req.Tx(0)
		if err != nil {
			return &core.InvalidPayloadError{Err: err}
		}
		defer tx.Close()
		item := make([]byte, size)
		for range n {
			if err := tx.Send(ctx, item); err != nil {
				return err
			}
		}
		return req.Reply(nil, nil)
	})
	return r
}

// transportFor returns the transport named by -transport and how to stop it.
func transportFor(name string) (netpoll.Transport, func()) {
	switch name {
	case "net":
		return netpoll.Std{}, func() {}
	case "tls":
		// A throwaway certificate: loadgen measures what TLS costs, it
		// does not authenticate anyone. The client side skips
		// verification, the server side presents the certificate.
		cert := testcert.NewCA("loadgen").Server("loadgen")
		return netpoll.TLS{Config: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}}, func() {}
	}
	g := netpoll.NewGnet(netpoll.GnetOptions{})
	return g, func() { g.Close() }
}

const transportUsage = "gnet (event loops), net (standard library) or tls (standard library, TLS 1.3, a throwaway self-signed certificate the client does not verify)"

func validTransport(name string) bool { return name == "gnet" || name == "net" || name == "tls" }

// server is an echo server: embedded in a load run, or alone (serve).
type server struct {
	srv  *core.Server
	stop func()
}

func startServer(transport, addr string, inline bool, maxInflight int, labels bool) (*server, error) {
	tr, stop := transportFor(transport)
	srv, err := core.Serve(tr, "tcp", addr, core.Options{
		Router:                echoRouter(inline),
		MaxConcurrentRequests: max(maxInflight, 1024),
		ProfileLabels:         labels,
	})
	if err != nil {
		stop()
		return nil, err
	}
	return &server{srv: srv, stop: stop}, nil
}

func (s *server) addr() string { return s.srv.Addr().String() }

func (s *server) close() {
	s.srv.Close()
	s.stop()
}

// serveMain is `loadgen serve`: an echo server until SIGINT or SIGTERM.
func serveMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("loadgen serve")
	addr := fs.String("addr", "127.0.0.1:9000", "listen on `host:port`")
	transport := fs.String("transport", "gnet", transportUsage)
	handler := fs.String("handler", "inline", "echo handler: inline (on the event loop) or pool (goroutine pool)")
	labels := fs.Bool("labels", false, "run handlers under pprof labels (service, method)")
	var prof profFlags
	prof.register(fs)
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if !validTransport(*transport) {
		return usage(fs, stderr, fmt.Errorf("-transport must be gnet, net or tls, not %q", *transport))
	}
	if *handler != "inline" && *handler != "pool" {
		return usage(fs, stderr, fmt.Errorf("-handler must be inline or pool, not %q", *handler))
	}
	p, err := prof.start()
	if err != nil {
		fmt.Fprintln(stderr, "loadgen serve:", err)
		return 1
	}
	tr, stop := transportFor(*transport)
	defer stop()
	srv, err := core.Serve(tr, "tcp", *addr, core.Options{
		Router: echoRouter(*handler == "inline"), MaxConcurrentRequests: 1 << 16, ProfileLabels: *labels,
	})
	if err != nil {
		p.Stop()
		fmt.Fprintln(stderr, "loadgen serve:", err)
		return 1
	}
	fmt.Fprintf(stdout, "loadgen serve: echo on %s (%s, %s handler); Ctrl-C to stop\n", srv.Addr(), *transport, *handler)
	if a := p.Addr(); a != nil {
		fmt.Fprintf(stdout, "pprof: http://%s/debug/pprof/\n", a)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	<-ctx.Done()
	st := srv.LinkStats()
	fmt.Fprintf(stdout, "loadgen serve: %d frames in, %d out in %d write calls (%.3f per frame), %d reads\n",
		st.FramesIn, st.FramesOut, st.Writes, float64(st.Writes)/float64(max(st.FramesOut, 1)), st.Reads)
	srv.Close()
	if err := p.Stop(); err != nil {
		fmt.Fprintln(stderr, "loadgen serve: profiles:", err)
		return 1
	}
	return 0
}
