package main

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A batch holds every latency it was given, across its flushes and the
// last partial one: the histogram is the same as recording each directly.
func TestRecBatchKeepsEveryLatency(t *testing.T) {
	var rec workerRec
	var b recBatch
	want := newLatencyHist()
	const n = 3*len(b.buckets) + 5 // three full batches and a partial one
	for i := 1; i <= n; i++ {
		d := time.Duration(i*i) * time.Microsecond
		b.add(&rec, d)
		want.record(d)
	}
	if rec.ok != 3*int64(len(b.buckets)) {
		t.Fatalf("before the last flush: %d recorded, want the three full batches", rec.ok)
	}
	b.flush(&rec)
	if rec.ok != int64(n) {
		t.Fatalf("%d recorded, want %d", rec.ok, n)
	}
	if rec.hist.counts != want.counts {
		t.Fatal("the batched histogram differs from recording each latency")
	}
}

// closedLoop counts calls made while it measures and only those: every
// call it reports was made, failures apart, and calls keep coming until
// the window closes.
func TestClosedLoopCounts(t *testing.T) {
	var made, bad atomic.Int64
	errOdd := errors.New("odd")
	call := func([]byte) error {
		if made.Add(1)%7 == 0 {
			bad.Add(1)
			return errOdd
		}
		time.Sleep(10 * time.Microsecond)
		return nil
	}
	var opened, closed int
	h, ok, failed, elapsed := closedLoop([]caller{call, call}, 3, make([]byte, 8), 20*time.Millisecond, 50*time.Millisecond, func(open bool) {
		if open {
			opened++
		} else {
			closed++
		}
	})
	if opened != 1 || closed != 1 {
		t.Fatalf("window opened %d and closed %d times, want once each", opened, closed)
	}
	if ok == 0 || failed == 0 {
		t.Fatalf("ok %d, failed %d: want both", ok, failed)
	}
	if ok+failed > made.Load() || failed > bad.Load() {
		t.Fatalf("ok %d + failed %d, but %d calls made (%d failed)", ok, failed, made.Load(), bad.Load())
	}
	var inHist int64
	for _, c := range h.counts {
		inHist += int64(c)
	}
	if inHist != ok {
		t.Fatalf("histogram holds %d, ok %d", inHist, ok)
	}
	if elapsed < 50*time.Millisecond {
		t.Fatalf("elapsed %v, shorter than the window", elapsed)
	}
}
