// Command loadgen measures Rove's throughput and latency under pipelining.
//
// With no flags it starts an embedded Rove server on loopback, runs a
// closed-loop pipelined 64 B echo for 10 s after a 2 s warm-up, shows live
// progress, and prints calls/s and latency percentiles. See -h for the
// load models (closed loop, open loop with coordinated-omission
// correction, rate ramps), remote use (loadgen serve, -target) and the
// outputs (JSON, CSV, .hgrm, HdrHistogram log, HTML report, profiles).
//
// The package loadtest is the same program as a library: a load test
// written in Go runs under the same load models, reports and outputs.
package main

import (
	"os"

	"github.com/rove-rpc/rove/cmd/loadgen/loadtest"
)

func main() {
	os.Exit(loadtest.Main(os.Args[1:], os.Stdout, os.Stderr))
}
