package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/rove-rpc/rove/pprof"
)

// Main is the loadgen command without the process: it runs args (a load
// run, serve or merge) and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int { return run(args, stdout, stderr) }

// run is main without the process: it returns the exit status (0 ok,
// 1 the run failed, 2 bad usage).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serveMain(args[1:], stdout, stderr)
		case "merge":
			return mergeMain(args[1:], stdout, stderr)
		}
	}
	cfg, fs, err := parseRun(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs)
		return 0
	}
	if err != nil {
		return usage(fs, stderr, err)
	}
	return loadMain(cfg, stdout, stderr)
}

// newFlagSet makes a flag set that prints nothing while parsing: -h and
// mistakes are reported once, by the caller (help on stdout, a mistake as
// one line on stderr).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args; false means return the status it gives.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (int, bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, fs)
		return 0, false
	case err != nil:
		return usage(fs, stderr, err), false
	case fs.NArg() > 0:
		return usage(fs, stderr, fmt.Errorf("unexpected argument %q", fs.Arg(0))), false
	}
	return 0, true
}

// usage reports a command-line mistake: the mistake, and where the
// flags are listed (not the whole list, which would bury the mistake).
// Status 2.
func usage(fs *flag.FlagSet, stderr io.Writer, err error) int {
	msg := err.Error()
	if errors.Is(err, errUsage) {
		msg = msg[len(errUsage.Error())+2:]
	}
	fmt.Fprintf(stderr, "loadgen: %s\nRun '%s -h' for the flags.\n", msg, fs.Name())
	return 2
}

func (p profFlags) start() (*pprof.Profiler, error) {
	return pprof.Start(pprof.Options{Dir: p.dir, CPUFile: p.cpuprofile, MemFile: p.memprofile, HTTPAddr: p.http})
}
