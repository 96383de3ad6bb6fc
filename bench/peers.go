// Command bench compares Rove with its peers. Run with no subcommand, it
// is the harness: each system's server in a process of its own, loaded
// by one client loop, systems interleaved run by run, and the tables
// written into BENCHMARKS.md between its markers:
//
//	go run ./bench            # 3 runs of every scenario (about 7 minutes)
//	go run ./bench -quick     # a one-minute smoke run, tables on stdout (CI)
//
// The subcommands run one piece by hand (the same loop and servers):
//
//	bench serve -kind grpc -addr 127.0.0.1:9200 &
//	bench load  -kind grpc -target 127.0.0.1:9200 -d 5s
//	bench idle  -kinds rove,grpc,raw -n 10000
//
// Kinds: rove (Rove on gnet, inline echo), rove-std (on the standard
// library transport), grpc (gRPC-Go, raw-bytes codec), connect
// (connect-go over HTTP/2 in clear text, raw-bytes codec), drpc (storj's
// drpc, a connection per call in flight), netrpc (net/rpc, gob), raw (a length-prefixed echo on gnet: the server writes once per
// frame, or once per read batch with -coalesce). idle measures what idle
// connections cost: heap, RSS, goroutines and descriptors per connection
// on the server, and the time to dial and handshake.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		os.Exit(harnessMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	kind := fs.String("kind", "grpc", "grpc, netrpc, raw or rove")
	addr := fs.String("addr", "127.0.0.1:9200", "serve: listen address")
	target := fs.String("target", "127.0.0.1:9200", "load: server address")
	coalesce := fs.Bool("coalesce", false, "raw server: one write per read batch instead of one per frame")
	conns := fs.Int("conns", 4, "connections")
	inflight := fs.Int("inflight", 256, "calls in flight per connection")
	payload := fs.Int("payload", 64, "payload bytes")
	dur := fs.Duration("d", 5*time.Second, "measured duration")
	warmup := fs.Duration("warmup", time.Second, "warm-up")
	kinds := fs.String("kinds", "rove,grpc,raw", "idle: the systems to measure, in order")
	n := fs.Int("n", 10000, "idle: connections per system")
	workload := fs.String("workload", "unary", "load: unary (64 B echo) or stream (server streaming: -items items of -payload bytes per call; rove, grpc, connect, drpc)")
	items := fs.Int("items", 16, "load -workload stream: items per call")
	cpuprofile := fs.String("cpuprofile", "", "serve, load: write a CPU profile of the process to this file")
	traceOut := fs.String("trace", "", "serve, load: write an execution trace of -trace-for, from -trace-at after the start, to this file")
	traceAt := fs.Duration("trace-at", 2*time.Second, "serve, load: when the execution trace starts")
	traceFor := fs.Duration("trace-for", 300*time.Millisecond, "serve, load: how long the execution trace lasts")
	delay := fs.Duration("delay", 0, "load: add this round trip to every connection, through a delaying proxy in this process")
	fs.Parse(os.Args[2:])
	if *traceOut != "" {
		go traceWindow(*traceOut, *traceAt, *traceFor)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	switch os.Args[1] {
	case "idle":
		if err := idle(*kinds, *n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "idle-serve":
		if err := idleServe(*kind); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "serve":
		stop, err := serve(*kind, *addr, *coalesce)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("peers: %s echo on %s\n", *kind, *addr)
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		<-ctx.Done()
		cancel()
		stop()
	case "load":
		if *delay > 0 {
			p, err := startDelayProxy(*target, *delay/2)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			defer p.Close()
			*target = p.Addr()
		}
		res, err := load(*kind, *target, *workload, *items, *conns, *inflight, *payload, *warmup, *dur)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(res)
	default:
		fmt.Fprintln(os.Stderr, "usage: peers serve|load [flags]")
		os.Exit(2)
	}
}

func serve(kind, addr string, coalesce bool) (func(), error) {
	switch kind {
	case "grpc":
		return serveGRPC(addr)
	case "netrpc":
		return serveNetRPC(addr)
	case "raw":
		return serveRaw(addr, coalesce)
	case "drpc":
		return serveDRPC(addr)
	case "connect":
		return serveConnect(addr)
	case "rove", "rove-pool", "rove-typed", "rove-typed-bin":
		return serveRove(addr, false)
	case "rove-std":
		return serveRove(addr, true)
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// caller makes one echo call; each connection gives one per worker.
type caller func(payload []byte) error

// streamer makes one server-streaming call of items items of size bytes
// and returns once every item has arrived.
type streamer func(items, size int) error

func dialStream(kind, target string, inflight int) (streamer, func(), error) {
	switch kind {
	case "grpc":
		return dialGRPCStream(target)
	case "connect":
		return dialConnectStream(target)
	case "drpc":
		return dialDRPCStream(target, inflight)
	case "rove":
		return dialRoveStream(target, false)
	case "rove-std":
		return dialRoveStream(target, true)
	}
	return nil, nil, fmt.Errorf("kind %q has no stream workload", kind)
}

func dial(kind, target string, inflight int) (caller, func(), error) {
	switch kind {
	case "grpc":
		return dialGRPC(target)
	case "netrpc":
		return dialNetRPC(target)
	case "raw":
		return dialRaw(target, inflight)
	case "drpc":
		return dialDRPC(target, inflight)
	case "connect":
		return dialConnect(target)
	case "rove":
		return dialRove(target, false, roveEcho)
	case "rove-std":
		return dialRove(target, true, roveEcho)
	case "rove-pool":
		return dialRove(target, false, roveEchoPool)
	case "rove-typed":
		return dialRoveTyped(target, roveTyped)
	case "rove-typed-bin":
		return dialRoveTyped(target, roveTypedBin)
	}
	return nil, nil, fmt.Errorf("unknown kind %q", kind)
}

type result struct {
	Kind        string  `json:"kind"`
	Workload    string  `json:"workload"`
	Conns       int     `json:"conns"`
	Inflight    int     `json:"inflight"`
	CallsPerSec float64 `json:"calls_per_s"`
	ItemsPerSec float64 `json:"items_per_s,omitempty"`
	Errors      int64   `json:"errors"`
	P50us       int64   `json:"p50_us"`
	P90us       int64   `json:"p90_us"`
	P99us       int64   `json:"p99_us"`
	P999us      int64   `json:"p999_us"`
	MaxUs       int64   `json:"max_us"`
}

// load runs the closed loop: conns x inflight workers, one call each.
func load(kind, target, workload string, items, conns, inflight, size int, warmup, dur time.Duration) (*result, error) {
	var callers []caller
	for range conns {
		var c caller
		var closeFn func()
		var err error
		switch workload {
		case "unary":
			c, closeFn, err = dial(kind, target, inflight)
		case "stream":
			var st streamer
			st, closeFn, err = dialStream(kind, target, inflight)
			c = func([]byte) error { return st(items, size) }
		default:
			err = fmt.Errorf("unknown workload %q", workload)
		}
		if err != nil {
			return nil, err
		}
		defer closeFn()
		callers = append(callers, c)
	}
	h, ok, failed, elapsed := closedLoop(callers, inflight, make([]byte, size), warmup, dur, nil)
	us := func(q float64) int64 { return h.quantile(q).Microseconds() }
	res := &result{
		Kind: kind, Workload: workload, Conns: conns, Inflight: inflight,
		CallsPerSec: float64(ok) / elapsed.Seconds(), Errors: failed,
		P50us: us(0.50), P90us: us(0.90), P99us: us(0.99), P999us: us(0.999), MaxUs: us(1),
	}
	if workload == "stream" {
		res.ItemsPerSec = res.CallsPerSec * float64(items)
	}
	return res, nil
}

// traceWindow writes an execution trace of the window [at, at+length)
// after the process started to path (go tool trace reads it): a whole
// run's trace would be too large to read, and its first second is the
// warm-up.
func traceWindow(path string, at, length time.Duration) {
	time.Sleep(at)
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	time.Sleep(length)
	trace.Stop()
}
