package main

import (
	"strings"
	"testing"
	"time"
)

// Ratios pair the two systems' samples by run, so a failed run drops its
// pair instead of shifting every later one; the row shows the median of
// the per-run ratios and how many runs met the bound.
func TestRenderRatiosPairsByRun(t *testing.T) {
	rove, echo := allSystems[0], allSystems[len(allSystems)-1]
	if systemKey(rove) != "rove" || systemKey(echo) != "raw-coalesced" {
		t.Fatalf("systems moved: %q, %q", systemKey(rove), systemKey(echo))
	}
	ms := time.Millisecond
	results := map[string]map[string][]sample{"4x256": {
		// The echo's run 1 failed: rove's run 1 has no pair.
		rove.name: {{run: 0, callsPerSec: 900, p99: 3 * ms}, {run: 1, callsPerSec: 100, p99: 9 * ms}, {run: 2, callsPerSec: 400, p99: 2 * ms}},
		echo.name: {{run: 0, callsPerSec: 1000, p99: 2 * ms}, {run: 2, callsPerSec: 500, p99: 2 * ms}},
	}}
	out := renderRatios([]system{rove, echo}, results)
	for _, want := range []string{
		// 0.90 and 0.80: median 0.85; only run 0 reaches 0.85.
		"| calls, Rove against the coalesced raw gnet echo | 4x256 | **0.85x** | 0.80x-0.90x | >= 0.85x | 1 of 2 |",
		// 1.5 and 1.0: median 1.25; only run 2 within 1.2.
		"| p99, Rove against the coalesced raw gnet echo | 4x256 | **1.25x** | 1.00x-1.50x | <= 1.20x | 1 of 2 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ping-pong") || strings.Contains(out, "pool") {
		t.Errorf("rows for scenarios or systems not measured:\n%s", out)
	}
	if got := renderRatios([]system{rove}, results); got != "" {
		t.Errorf("one side only: %q", got)
	}
}
