package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rove-rpc/rove/core"
)

// config is one run's settings, from the command line.
type config struct {
	// load
	conns     int
	inflight  int
	rate      rateSpec // zero: closed loop
	duration  time.Duration
	total     int64 // -n: stop after this many calls (0: use duration)
	warmup    time.Duration
	payload   int
	timeout   time.Duration
	drain     time.Duration
	labels    bool
	workload  string
	items     int      // stream: items per call
	window    int      // stream: channel credit window
	metadata  []string // key=value
	method    string   // -method: load a service's method instead of loadgen's echo
	data      string   // -data: JSON request (or @file), {{counter}} templated
	dataFile  string   // -data-file: raw request bytes
	dataLines string   // -data-lines: JSON requests, one per line, in turn
	custom    *Test    // Run: a Test makes the calls (no server, no sessions)
	transport string
	target    string // empty: embedded server
	handler   string // embedded server: inline or pool

	// output
	percentiles []float64
	every       time.Duration
	jsonOut     string
	csvOut      string
	hgrmOut     string
	hlogOut     string
	htmlOut     string
	quiet       bool

	prof profFlags
}

// profFlags are shared by the load and serve sides.
type profFlags struct {
	cpuprofile string
	memprofile string
	dir        string
	http       string
}

// on describes the profiling that is on, or "".
func (p profFlags) on() string {
	var what []string
	for _, f := range []struct{ v, name string }{
		{p.cpuprofile, "cpu to " + p.cpuprofile}, {p.memprofile, "heap to " + p.memprofile},
		{p.dir, "every profile to " + p.dir + " (mutex and block sampling on)"}, {p.http, "pprof served on " + p.http},
	} {
		if f.v != "" {
			what = append(what, f.name)
		}
	}
	return strings.Join(what, ", ")
}

func (p *profFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to `file`")
	fs.StringVar(&p.memprofile, "memprofile", "", "write a heap profile at the end of the run to `file`")
	fs.StringVar(&p.dir, "pprof-dir", "", "write every profile (cpu, heap, allocs, mutex, block, goroutine) to `dir`")
	fs.StringVar(&p.http, "pprof-http", "", "serve net/http/pprof on `addr` (e.g. 127.0.0.1:6060) during the run")
}

var defaultPercentiles = []float64{50, 90, 99, 99.9, 99.99}

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// parseRun parses the flags of a load run.
func parseRun(args []string, stderr io.Writer) (*config, *flag.FlagSet, error) {
	c := &config{}
	fs := newFlagSet("loadgen")
	fs.IntVar(&c.conns, "conns", 4, "connections (sessions) to open")
	fs.IntVar(&c.conns, "c", 4, "shorthand for -conns")
	fs.IntVar(&c.inflight, "inflight", 256, "calls in flight per connection (closed loop), or the most outstanding per connection (open loop)")
	rate := fs.String("rate", "", "open loop: `calls/s` on a fixed schedule (50000, 50k), or a ramp FROM:TO:OVER (10k:200k:10s); empty: closed loop")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured run length")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "shorthand for -duration")
	fs.Int64Var(&c.total, "n", 0, "stop after this many measured calls instead of a duration")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "warm-up before measuring (excluded from results)")
	fs.IntVar(&c.payload, "payload", 64, "request payload `bytes` (echoed back)")
	fs.DurationVar(&c.timeout, "timeout", 0, "per-call timeout, sent with each call as its deadline, counted from when the call was due (0: none; a deadline costs a timer per call on both sides)")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "after the measured window (or Ctrl-C), how long calls in flight get to come back before they are cancelled and counted as failed: no run outlasts -d by more")
	fs.StringVar(&c.workload, "workload", "unary", "unary (echo calls), stream (each call streams -items items back on a channel), or mixed (half each)")
	fs.IntVar(&c.items, "items", 16, "stream: items per call")
	fs.IntVar(&c.window, "window", core.DefaultWindow, "stream: the channel's credit window")
	fs.Func("H", "request metadata `key=value` (repeatable)", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("want key=value, got %q", s)
		}
		c.metadata = append(c.metadata, s)
		return nil
	})
	fs.StringVar(&c.method, "method", "", "load this `service/Method` of the -target (as core.NewMethod names it) instead of loadgen's echo; success is an OK response")
	fs.StringVar(&c.data, "data", "", "the request as `JSON` (typed methods take JSON) or @file; {{counter}} in it becomes the call's number")
	fs.StringVar(&c.dataFile, "data-file", "", "the request as the raw bytes of `file` (a raw method)")
	fs.StringVar(&c.dataLines, "data-lines", "", "requests from `file`, one JSON value per line, used in turn")
	fs.StringVar(&c.transport, "transport", "gnet", transportUsage)
	fs.StringVar(&c.target, "target", "", "load a remote server at `host:port` (started with loadgen serve) instead of an embedded one")
	fs.StringVar(&c.handler, "handler", "inline", "embedded server's echo handler: inline (on the event loop) or pool (goroutine pool)")
	pl := fs.String("p", "", "extra percentiles to report, comma-separated (e.g. 75,99.5)")
	fs.DurationVar(&c.every, "every", 0, "print a snapshot every `interval` (e.g. 1s)")
	fs.StringVar(&c.jsonOut, "json", "", "write a JSON summary to `file` (- for stdout)")
	fs.StringVar(&c.csvOut, "csv", "", "write per-interval and total rows as CSV to `file` (- for stdout)")
	fs.StringVar(&c.hgrmOut, "hgrm", "", "write the percentile distribution (.hgrm, for HdrHistogram's plotter) to `file`")
	fs.StringVar(&c.hlogOut, "hlog", "", "write an HdrHistogram interval log to `file` (merge runs from several machines with loadgen merge)")
	fs.StringVar(&c.htmlOut, "html", "", "write a self-contained HTML report to `file`")
	fs.BoolVar(&c.quiet, "quiet", false, "no live progress line")
	fs.BoolVar(&c.labels, "labels", false, "embedded server: run handlers under pprof labels (service, method), to split a profile by method")
	c.prof.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, fs, err
		}
		return nil, fs, usageErr("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, fs, usageErr("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if *rate != "" {
		if c.rate, err = parseRate(*rate); err != nil {
			return nil, fs, usageErr("-rate: %v", err)
		}
	}
	if c.percentiles, err = parsePercentiles(*pl); err != nil {
		return nil, fs, usageErr("-p: %v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return c, fs, c.validate(set)
}

// validate rejects values out of range and contradictory combinations.
func (c *config) validate(set map[string]bool) error {
	switch {
	case c.conns < 1:
		return usageErr("-conns must be at least 1")
	case c.inflight < 1:
		return usageErr("-inflight must be at least 1")
	case c.duration <= 0 && c.total == 0:
		return usageErr("-duration must be positive")
	case c.total < 0:
		return usageErr("-n must be positive")
	case c.total > 0 && (set["duration"] || set["d"]):
		return usageErr("-n and -duration contradict each other: give one")
	case c.total > 0 && c.rate.ramp():
		return usageErr("-n and a -rate ramp contradict each other: a ramp has its own length")
	case c.warmup < 0:
		return usageErr("-warmup must not be negative")
	case c.payload < 0 || c.payload > 16<<20:
		return usageErr("-payload must be between 0 and 16 MiB")
	case c.timeout < 0:
		return usageErr("-timeout must not be negative")
	case c.drain <= 0:
		return usageErr("-drain must be positive")
	case c.workload != "unary" && c.workload != "stream" && c.workload != "mixed":
		return usageErr("-workload must be unary, stream or mixed, not %q", c.workload)
	case c.items < 1 || c.items > 1<<20:
		return usageErr("-items must be between 1 and 1048576")
	case c.window < 1 || c.window > 1<<16:
		return usageErr("-window must be between 1 and 65536")
	case c.workload == "unary" && (set["items"] || set["window"]):
		return usageErr("-items and -window apply to -workload stream or mixed")
	case !validTransport(c.transport):
		return usageErr("-transport must be gnet, net or tls, not %q", c.transport)
	case c.handler != "inline" && c.handler != "pool":
		return usageErr("-handler must be inline or pool, not %q", c.handler)
	case c.target != "" && set["handler"]:
		return usageErr("-handler configures the embedded server; with -target the remote server decides")
	case c.target != "" && c.labels:
		return usageErr("-labels configures the embedded server; with -target use loadgen serve -labels")
	case c.every < 0:
		return usageErr("-every must not be negative")
	case c.method != "" && c.target == "":
		return usageErr("-method loads a service of yours: give its address with -target (the embedded server serves only loadgen's echo)")
	case c.method != "" && c.workload != "unary":
		return usageErr("-method makes unary calls: -workload stream and mixed stream from loadgen's own server")
	case btoi(c.data != "")+btoi(c.dataFile != "")+btoi(c.dataLines != "") > 1:
		return usageErr("-data, -data-file and -data-lines contradict each other: give one")
	case set["payload"] && (c.data != "" || c.dataFile != "" || c.dataLines != ""):
		return usageErr("-payload and -data* contradict each other: the request is one or the other")
	}
	if c.method != "" {
		if _, err := core.ParseMethod(c.method); err != nil {
			return usageErr("-method: %v", err)
		}
	}
	if c.rate.ramp() {
		c.duration = c.rate.over
	}
	return nil
}

func parsePercentiles(s string) ([]float64, error) {
	ps := append([]float64{}, defaultPercentiles...)
	if s == "" {
		return ps, nil
	}
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || p <= 0 || p >= 100 {
			return nil, fmt.Errorf("%q is not a percentile between 0 and 100", f)
		}
		if !containsFloat(ps, p) {
			ps = append(ps, p)
		}
	}
	sortFloats(ps)
	return ps, nil
}

func containsFloat(xs []float64, x float64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func sortFloats(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `Usage:
  loadgen [flags]              load an embedded Rove server (or -target) and report latency
  loadgen serve [flags]        run the server side alone (for -target from other machines)
  loadgen merge FILE.hlog...   merge HdrHistogram logs from several loadgen runs

Load models: closed loop (default): -conns x -inflight calls in flight;
open loop: -rate calls/s on a fixed schedule, latency measured from each
call's intended send time (coordinated omission corrected, as wrk2).

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
