package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The harness: every system's server runs as a process of its own (this
// binary, re-executed with "serve"), and this process loads each with the
// same client loop and the same recording. Systems are interleaved run by
// run, so that drift on a shared machine hits all alike.

// system is one server the harness compares.
type system struct {
	name     string
	kind     string // peers kind; "" for the in-process calibration
	coalesce bool
	// variant: another way to call Rove (a pool handler, typed calls),
	// measured in the closed-loop scenarios only.
	variant bool
}

var allSystems = []system{
	{name: "Rove (gnet)", kind: "rove"},
	{name: "Rove (std net)", kind: "rove-std"},
	{name: "Rove, pool handler (gnet)", kind: "rove-pool", variant: true},
	{name: "Rove, typed (sonic) pool handler (gnet)", kind: "rove-typed", variant: true},
	{name: "Rove, typed (hand-written codec) pool handler (gnet)", kind: "rove-typed-bin", variant: true},
	{name: "gRPC-Go", kind: "grpc"},
	{name: "connect-go (h2c)", kind: "connect"},
	{name: "drpc (a connection per call in flight)", kind: "drpc"},
	{name: "net/rpc", kind: "netrpc"},
	{name: "raw gnet echo, write per frame", kind: "raw"},
	{name: "raw gnet echo, coalesced", kind: "raw", coalesce: true},
}

// calibration answers in the client's own process at once: what the
// client loop and its recording cost, with no system under them.
var calibration = system{name: "calibration (in-process, no I/O)"}

// scenario is one load shape.
type scenario struct {
	name            string
	conns, inflight int
	payload         int
	items           int // > 0: server streaming, items of payload bytes per call
	description     string
}

// streams reports whether the scenario streams.
func (sc scenario) streams() bool { return sc.items > 0 }

var allScenarios = []scenario{
	{name: "ping-pong", conns: 1, inflight: 1, payload: 64, description: "1 connection, 1 call in flight, 64 B"},
	{name: "1x64", conns: 1, inflight: 64, payload: 64, description: "1 connection x 64 in flight, 64 B"},
	{name: "4x256", conns: 4, inflight: 256, payload: 64, description: "4 connections x 256 in flight, 64 B"},
	{name: "4x64-4KiB", conns: 4, inflight: 64, payload: 4096, description: "4 connections x 64 in flight, 4 KiB payloads"},
	{name: "stream-1", conns: 1, inflight: 1, payload: 64, items: 10000,
		description: "one server stream at a time, each of 10,000 items of 64 B, default options (items/s)"},
	{name: "stream-1024", conns: 4, inflight: 256, payload: 64, items: 16,
		description: "1024 concurrent server streams of 16 items of 64 B (items/s)"},
}

// streamingKinds are the systems with server streams in this harness.
var streamingKinds = map[string]bool{"rove": true, "rove-std": true, "grpc": true, "connect": true, "drpc": true}

// sample is one measured run of one system in one scenario.
type sample struct {
	run               int // which run of the harness measured it (ratios pair by run)
	callsPerSec       float64
	p50, p99, p999    time.Duration
	clientCPU, srvCPU time.Duration // per call
	errors            int64
}

type harnessFlags struct {
	runs      int
	dur       time.Duration
	warmup    time.Duration
	quick     bool
	out       string
	systems   string
	scenarios string
	open      bool
	idle      int
}

// harnessMain is `go run ./bench` (no subcommand).
func harnessMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f harnessFlags
	fs.IntVar(&f.runs, "runs", 3, "runs of each system in each scenario (medians and ranges)")
	fs.DurationVar(&f.dur, "d", 3*time.Second, "measured time per run")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "warm-up per run")
	fs.BoolVar(&f.quick, "quick", false, "a smoke run of about a minute (CI): 1 run, 500 ms each, the tables on stdout")
	fs.StringVar(&f.out, "out", "BENCHMARKS.md", "the file whose generated section is replaced (- for stdout)")
	fs.StringVar(&f.systems, "systems", "", "comma-separated kinds to run (rove,rove-std,rove-pool,rove-typed,rove-typed-bin,grpc,connect,drpc,netrpc,raw,raw-coalesced); default all")
	fs.StringVar(&f.scenarios, "scenarios", "", "comma-separated scenarios (ping-pong,1x64,4x256,4x64-4KiB,stream-1,stream-1024); default all")
	fs.BoolVar(&f.open, "open", true, "also measure open-loop latency at 25, 50 and 80% of each system's 4x256 maximum")
	fs.IntVar(&f.idle, "idle", 10000, "also hold this many idle connections to each of rove, grpc and raw, and report what each costs (0: skip)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.quick {
		f.runs, f.dur, f.warmup, f.out, f.idle = 1, 500*time.Millisecond, 200*time.Millisecond, "-", 200
	}
	systems, scenarios, err := pick(f)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	results := map[string]map[string][]sample{}   // scenario -> system -> runs
	open := map[string]map[float64][]openSample{} // system -> fraction -> runs
	for run := 0; run < f.runs; run++ {
		for _, sc := range scenarios {
			order := rotate(append([]system{calibration}, systems...), run)
			for _, sys := range order {
				if sc.streams() && !streamingKinds[sys.kind] {
					continue // no streams (the calibration's loop cost is the unary rows')
				}
				fmt.Fprintf(stderr, "run %d/%d  %-10s %s ... ", run+1, f.runs, sc.name, sys.name)
				s, err := measureOnce(sys, sc, f.warmup, f.dur)
				if err != nil {
					fmt.Fprintln(stderr, "failed:", err)
					continue
				}
				s.run = run
				fmt.Fprintf(stderr, "%.0f calls/s, p99 %v\n", s.callsPerSec, s.p99)
				if results[sc.name] == nil {
					results[sc.name] = map[string][]sample{}
				}
				results[sc.name][sys.name] = append(results[sc.name][sys.name], s)
			}
		}
		if !f.open {
			continue
		}
		// Open loop at fractions of each system's own maximum so far.
		for _, sys := range rotate(systems, run) {
			if sys.variant {
				continue
			}
			var rates []float64
			for _, s := range results["4x256"][sys.name] {
				rates = append(rates, s.callsPerSec)
			}
			if len(rates) == 0 {
				continue // no 4x256 measure to take fractions of
			}
			peak := median(rates)
			for _, frac := range openFractions {
				fmt.Fprintf(stderr, "run %d/%d  open %2.0f%%   %s ... ", run+1, f.runs, frac*100, sys.name)
				o, err := measureOpen(sys, frac*peak, f.warmup, f.dur)
				if err != nil {
					fmt.Fprintln(stderr, "failed:", err)
					continue
				}
				fmt.Fprintf(stderr, "%.0f of %.0f calls/s, p99 %v (uncorrected %v)\n", o.achieved, o.offered, o.p99, o.rawP99)
				if open[sys.name] == nil {
					open[sys.name] = map[float64][]openSample{}
				}
				open[sys.name][frac] = append(open[sys.name][frac], o)
			}
		}
	}
	section := renderTables(f, scenarios, append([]system{calibration}, systems...), results) +
		renderRatios(systems, results) + renderOpen(f, systems, open)
	if f.idle > 0 {
		raiseFileLimit()
		var idles []idleResult
		for _, kind := range idleKinds {
			fmt.Fprintf(stderr, "idle  %d connections to %s ... ", f.idle, kind)
			r, err := idleOne(kind, f.idle)
			if err != nil {
				fmt.Fprintln(stderr, "failed:", err)
				continue
			}
			fmt.Fprintf(stderr, "%.1f KiB heap, %.2f goroutines, %.2f fds per connection\n", r.heap/1024, r.goroutines, r.fds)
			idles = append(idles, r)
		}
		if len(idles) > 0 {
			section += fmt.Sprintf("\n#### idle connections and dialling\n\n%d connections held open to each server (a process of its own, measured after a warm connection and two GCs); dial + handshake is the mean time per connection, one after another.\n\n", f.idle) + idleTable(idles)
		}
	}
	if f.out == "-" {
		fmt.Fprint(stdout, section+"\n"+endMarker+"\n")
		return 0
	}
	plots, err := plotFiles(filepath.Join(filepath.Dir(f.out), "docs", "bench"), "docs/bench", scenarios, systems, results, open)
	if err != nil {
		fmt.Fprintln(stderr, "bench: plots:", err)
		return 1
	}
	section += plots + "\n" + endMarker + "\n"
	if err := replaceSection(f.out, section); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	fmt.Fprintf(stderr, "bench: wrote the tables into %s\n", f.out)
	return 0
}

func pick(f harnessFlags) ([]system, []scenario, error) {
	systems, scenarios := allSystems, allScenarios
	if f.systems != "" {
		systems = nil
		for _, k := range strings.Split(f.systems, ",") {
			found := false
			for _, s := range allSystems {
				if systemKey(s) == strings.TrimSpace(k) {
					systems, found = append(systems, s), true
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("unknown system %q", k)
			}
		}
	}
	if f.scenarios != "" {
		scenarios = nil
		for _, n := range strings.Split(f.scenarios, ",") {
			found := false
			for _, s := range allScenarios {
				if s.name == strings.TrimSpace(n) {
					scenarios, found = append(scenarios, s), true
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("unknown scenario %q", n)
			}
		}
	}
	return systems, scenarios, nil
}

// rotate starts the order at a different system each run.
func rotate(s []system, by int) []system {
	by %= len(s)
	return append(append([]system(nil), s[by:]...), s[:by]...)
}

// measureOnce starts sys's server process (none for the calibration),
// loads it and stops it.
func measureOnce(sys system, sc scenario, warmup, dur time.Duration) (sample, error) {
	if sys.kind == "" {
		return loadLoop(func(int) (caller, func(), error) {
			return func([]byte) error { return nil }, func() {}, nil
		}, sc, warmup, dur, nil)
	}
	srv, err := startServer(sys)
	if err != nil {
		return sample{}, err
	}
	defer srv.stop()
	return loadLoop(func(inflight int) (caller, func(), error) {
		if sc.streams() {
			st, closeFn, err := dialStream(sys.kind, srv.addr, inflight)
			if err != nil {
				return nil, nil, err
			}
			return func([]byte) error { return st(sc.items, sc.payload) }, closeFn, nil
		}
		return dial(sys.kind, srv.addr, inflight)
	}, sc, warmup, dur, srv)
}

// measureOpen runs sys's server and offers it rate calls/s (4
// connections, up to 256 in flight on each).
func measureOpen(sys system, rate float64, warmup, dur time.Duration) (openSample, error) {
	srv, err := startServer(sys)
	if err != nil {
		return openSample{}, err
	}
	defer srv.stop()
	const conns, inflight = 4, 256
	calls := make([]caller, conns)
	for i := range calls {
		c, closeFn, err := dial(sys.kind, srv.addr, inflight)
		if err != nil {
			return openSample{}, err
		}
		defer closeFn()
		calls[i] = c
	}
	payload := make([]byte, 64)
	return openLoop(func(w int) error { return calls[w%conns](payload) }, conns*inflight, rate, warmup, dur), nil
}

// serverProc is a system's server in a child process.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(sys system) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the child
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"serve", "-kind", sys.kind, "-addr", addr}
	if sys.coalesce {
		args = append(args, "-coalesce")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: cmd, addr: addr}
	deadline := time.Now().Add(10 * time.Second)
	for { // until it accepts: the child has no other way to say it is up
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s server never listened on %s", sys.name, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *serverProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the child's CPU time so far (user + system), from /proc.
func (p *serverProc) cpu() time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks (USER_HZ, 100 on Linux)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadLoop dials the scenario's connections and runs closedLoop on them,
// reading both processes' CPU clocks at the measured window's edges.
func loadLoop(dialer func(inflight int) (caller, func(), error), sc scenario, warmup, dur time.Duration, srv *serverProc) (sample, error) {
	calls := make([]caller, sc.conns)
	for i := range calls {
		c, closeFn, err := dialer(sc.inflight)
		if err != nil {
			return sample{}, err
		}
		defer closeFn()
		calls[i] = c
	}
	var cpu0, cpu1, srv0, srv1 time.Duration
	total, n, failed, elapsed := closedLoop(calls, sc.inflight, make([]byte, sc.payload), warmup, dur, func(open bool) {
		cpu, srvCPU := selfCPU(), time.Duration(0)
		if srv != nil {
			srvCPU = srv.cpu()
		}
		if open {
			cpu0, srv0 = cpu, srvCPU
		} else {
			cpu1, srv1 = cpu, srvCPU
		}
	})
	s := sample{callsPerSec: float64(n) / elapsed.Seconds(), errors: failed,
		p50: total.quantile(0.50), p99: total.quantile(0.99), p999: total.quantile(0.999)}
	if n == 0 {
		return s, errors.New("no call completed")
	}
	s.clientCPU = (cpu1 - cpu0) / time.Duration(n)
	s.srvCPU = (srv1 - srv0) / time.Duration(n)
	return s, nil
}
