package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// closedLoop is the one client loop for every system (the harness's and
// the `load` command's): inflight workers on each of calls, each with one
// call at a time, for warmup and then dur measured. window, if not nil,
// runs as the measured window opens (true) and closes (false), so the
// harness can read the CPU clocks there.
//
// Each worker records into counters and a histogram of its own, merged at
// the end: no atomics and no sharing on the hot path. It also batches its
// latencies on its own stack (recBatch), because with 1024 workers a
// worker's record is out of the cache by its next call: writing the record
// per call cost two cache misses, 0.3-0.4 µs of a 4 x 256 client's 2.6 µs
// a call (measured against a loop that recorded nothing), and that would
// be charged to the system under test. The calibration row measures what
// is left.
func closedLoop(calls []caller, inflight int, payload []byte, warmup, dur time.Duration, window func(open bool)) (h *latencyHist, ok, failed int64, elapsed time.Duration) {
	var measuring, stop atomic.Bool
	workers := make([]*workerRec, len(calls)*inflight)
	base := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		rec := &workerRec{}
		workers[w] = rec
		call := calls[w%len(calls)]
		wg.Go(func() {
			var batch recBatch
			// time.Since of a time with a monotonic reading reads only the
			// monotonic clock: cheaper than time.Now twice.
			for !stop.Load() {
				t0 := time.Since(base)
				err := call(payload)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					rec.failed++
					continue
				}
				batch.add(rec, time.Since(base)-t0)
			}
			batch.flush(rec)
		})
	}
	time.Sleep(warmup)
	if window != nil {
		window(true)
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(dur)
	measuring.Store(false)
	elapsed = time.Since(start)
	if window != nil {
		window(false)
	}
	stop.Store(true)
	wg.Wait()
	h = newLatencyHist()
	for _, r := range workers {
		h.merge(&r.hist)
		ok, failed = ok+r.ok, failed+r.failed
	}
	return h, ok, failed, elapsed
}

// workerRec is one worker's recording: its goroutine alone writes it,
// until the loop's wait.
type workerRec struct {
	ok, failed int64
	hist       latencyHist
}

// recBatch is a worker's latest latencies as histogram buckets. It lives
// on the worker's stack, in lines the call has just touched, and takes a
// plain store per call; flush adds it to the record a batch at a time.
type recBatch struct {
	n       int
	buckets [64]uint16 // bucketOf < histExps*histSubs (1856)
}

func (b *recBatch) add(rec *workerRec, d time.Duration) {
	b.buckets[b.n] = uint16(bucketOf(uint64(max(d, 0))))
	b.n++
	if b.n == len(b.buckets) {
		b.flush(rec)
	}
}

func (b *recBatch) flush(rec *workerRec) {
	for _, i := range b.buckets[:b.n] {
		rec.hist.counts[i]++
	}
	rec.ok += int64(b.n)
	b.n = 0
}
