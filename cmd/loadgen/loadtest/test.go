package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Test is a load test written as code: loadgen calls Call under its load
// models and reports what it measured, as for its own workloads.
type Test struct {
	// Name says what is loaded, in the report ("kv.v1/Get, mixed keys").
	Name string
	// Call makes one request and says whether it succeeded (nil) or
	// failed (its error, counted by kind: a canonical code, a timeout...).
	// worker is the caller making it: in a closed loop 0 to
	// conns x inflight - 1, each with one call at a time; in an open loop
	// any of them. ctx carries -timeout's deadline and ends when the run
	// is cut short. Call must be safe for concurrent use.
	Call func(ctx context.Context, worker int) error
}

// customFlags are the flags of loadgen's own workloads, which a Test
// replaces.
var customFlags = []string{"target", "method", "data", "data-file", "data-lines", "workload", "items", "window",
	"transport", "handler", "labels", "payload", "H"}

// Run runs t with the load model and outputs that args give, spelled as
// loadgen's flags (-c, -inflight, -rate, -d, -n, -warmup, -timeout,
// -drain, -p, -every, -json, -csv, -hgrm, -hlog, -html, -quiet, the
// profiling flags; see loadgen -h). The text report goes to stdout,
// progress and problems to stderr. It returns loadgen's exit status: 0,
// 1 when the run failed, 2 for bad flags, 130 when interrupted (SIGINT or
// SIGTERM end the run and still report, as in loadgen).
func Run(t Test, args []string, stdout, stderr io.Writer) int {
	cfg, fs, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs)
		return 0
	}
	if err == nil && t.Call == nil {
		err = usageErr("the Test has no Call")
	}
	if err == nil {
		fs.Visit(func(f *flag.Flag) {
			for _, name := range customFlags {
				if f.Name == name && err == nil {
					err = usageErr("-%s configures loadgen's own workloads; a Test makes its own calls", name)
				}
			}
		})
	}
	if err != nil {
		return usage(fs, stderr, err)
	}
	cfg.custom = &t
	return loadMain(cfg, stdout, stderr)
}

// describeCustom names a Test's calls in the report.
func describeCustom(t *Test) string {
	name := strings.TrimSpace(t.Name)
	if name == "" {
		name = "a Go load test"
	}
	return fmt.Sprintf("calls of %s", name)
}
