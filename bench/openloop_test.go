package main

import (
	"testing"
	"time"
)

// The open loop's latency counts from when each call was due: a server
// that stalls once for 100 ms shows in the corrected p99 (every call due
// during the stall waited), not in the uncorrected one, which sees only
// the one slow call among many fast ones.
func TestOpenLoopCorrects(t *testing.T) {
	var stalled bool
	start := time.Now()
	call := func(int) error {
		if !stalled && time.Since(start) > 300*time.Millisecond {
			stalled = true
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}
	o := openLoop(call, 1, 1000, 100*time.Millisecond, time.Second)
	if o.p99 < 50*time.Millisecond || o.rawP99 > 10*time.Millisecond {
		t.Fatalf("corrected p99 %v, uncorrected %v", o.p99, o.rawP99)
	}
	if o.achieved < 800 || o.achieved > 1200 {
		t.Fatalf("achieved %.0f of 1000 calls/s", o.achieved)
	}
}
