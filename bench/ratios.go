package main

import (
	"fmt"
	"slices"
	"strings"
)

// targetRatio is one of issue 13's targets: system a's measure over
// system b's in one scenario. It is taken run by run, from the two
// samples of the same run (measured within minutes of each other, the
// systems interleaved), and summarised by the median of those ratios:
// the machine's drift between runs, which moves every system's rate by
// up to a factor of two here, cancels in each ratio instead of landing
// in a ratio of two medians taken at different moments.
type targetRatio struct {
	what     string
	scenario string
	a, b     string // system keys, as -systems names them
	measure  string // "rate", "p50" or "p99"
	atMost   bool   // the bound is an upper one (latencies)
	bound    float64
}

// targetRatios are the targets in the order of BENCHMARKS.md's table;
// a bound of 0 is a comparison with no target of its own.
var targetRatios = []targetRatio{
	{"calls, Rove against the coalesced raw gnet echo", "4x256", "rove", "raw-coalesced", "rate", false, 0.85},
	{"p99, Rove against the coalesced raw gnet echo", "4x256", "rove", "raw-coalesced", "p99", true, 1.2},
	{"p50, Rove against the coalesced raw gnet echo", "ping-pong", "rove", "raw-coalesced", "p50", true, 1.05},
	{"pool handler against inline", "4x256", "rove-pool", "rove", "rate", false, 0.8},
	{"pool handler against inline", "1x64", "rove-pool", "rove", "rate", false, 0.8},
	{"one stream against gRPC-Go's", "stream-1", "rove", "grpc", "rate", false, 2},
	{"1024 streams against gRPC-Go's", "stream-1024", "rove", "grpc", "rate", false, 5},
	{"typed (sonic) against raw, both on the pool", "4x256", "rove-typed", "rove-pool", "rate", false, 0.8},
	{"typed (sonic) against raw, both on the pool", "1x64", "rove-typed", "rove-pool", "rate", false, 0.8},
	{"typed (hand-written codec) against raw, both on the pool", "4x256", "rove-typed-bin", "rove-pool", "rate", false, 0},
	{"typed (hand-written codec) against raw, both on the pool", "1x64", "rove-typed-bin", "rove-pool", "rate", false, 0},
}

// systemKey names sys as -systems does.
func systemKey(sys system) string {
	if sys.coalesce {
		return sys.kind + "-coalesced"
	}
	return sys.kind
}

// value is the ratio's measure of one sample.
func (t targetRatio) value(s sample) float64 {
	switch t.measure {
	case "p50":
		return float64(s.p50)
	case "p99":
		return float64(s.p99)
	}
	return s.callsPerSec
}

// perRun pairs a's and b's samples by run and returns a/b for each run
// that measured both (a failed run leaves its pair out).
func (t targetRatio) perRun(a, b []sample) []float64 {
	var rs []float64
	for _, sa := range a {
		for _, sb := range b {
			if sa.run == sb.run && t.value(sb) > 0 {
				rs = append(rs, t.value(sa)/t.value(sb))
			}
		}
	}
	return rs
}

// renderRatios makes the table of the targets this run measured both
// sides of; "" when there is none.
func renderRatios(systems []system, results map[string]map[string][]sample) string {
	byKey := map[string]string{} // key -> the system's name, the results' key
	for _, sys := range systems {
		byKey[systemKey(sys)] = sys.name
	}
	var rows strings.Builder
	for _, t := range targetRatios {
		na, okA := byKey[t.a]
		nb, okB := byKey[t.b]
		if !okA || !okB {
			continue
		}
		rs := t.perRun(results[t.scenario][na], results[t.scenario][nb])
		if len(rs) == 0 {
			continue
		}
		med := median(rs)
		target, verdict := "-", "-"
		if t.bound > 0 {
			op := ">="
			if t.atMost {
				op = "<="
			}
			met := 0
			for _, r := range rs {
				if (t.atMost && r <= t.bound) || (!t.atMost && r >= t.bound) {
					met++
				}
			}
			target = fmt.Sprintf("%s %.2fx", op, t.bound)
			verdict = fmt.Sprintf("%d of %d", met, len(rs))
		}
		fmt.Fprintf(&rows, "| %s | %s | **%.2fx** | %.2fx-%.2fx | %s | %s |\n",
			t.what, t.scenario, med, slices.Min(rs), slices.Max(rs), target, verdict)
	}
	if rows.Len() == 0 {
		return ""
	}
	return "\n#### issue 13's targets, run by run\n\n" +
		"Each ratio is taken within one run, between the two systems' samples of that run (measured minutes apart, interleaved with the others), then the median over the runs: the machine's drift between runs cancels in each ratio. Rates are calls/s (items/s for streams); a latency ratio compares the two samples' p50 or p99.\n\n" +
		"| target | scenario | median ratio | range | target | runs meeting it |\n|---|---|---|---|---|---|\n" + rows.String()
}
