package main

import (
	"sync"
	"time"
)

// Open-loop latency: calls are due at a fixed rate whether or not the
// server keeps up, and each call's latency counts from when it was due
// (corrected for coordinated omission: a stall shows in every call that
// waited behind it, not only in the one that met it). The rates are
// fractions of each system's own maximum, measured in the 4x256 scenario
// of the same run.

// openFractions are the offered rates, as fractions of the maximum.
var openFractions = []float64{0.25, 0.5, 0.8}

// openSample is one open-loop run at one rate.
type openSample struct {
	offered, achieved float64
	p50, p99, p999    time.Duration // corrected: from when each call was due
	rawP99            time.Duration // from when it was sent
	errors            int64
}

// openLoop offers rate calls/s for dur after warmup on conns connections,
// with up to inflight calls in flight on each.
func openLoop(call func(w int) error, workersN int, rate float64, warmup, dur time.Duration) openSample {
	type job struct {
		due      time.Duration
		measured bool // due within the measured window
	}
	jobs := make(chan job, workersN)
	base := time.Now()
	var wg sync.WaitGroup
	recs := make([]*openRec, workersN)
	for w := range recs {
		r := &openRec{}
		recs[w] = r
		wg.Go(func() {
			for j := range jobs {
				sent := time.Since(base)
				err := call(w)
				if !j.measured {
					continue
				}
				if err != nil {
					r.failed++
					continue
				}
				done := time.Since(base)
				r.ok++
				r.corrected.record(done - j.due)
				r.raw.record(done - sent)
			}
		})
	}
	// The scheduler: every call has its due time on the schedule; it
	// hands out whatever is due, then sleeps to the next (a sleep is
	// coarse, so calls go out in small bursts; their latency still counts
	// from their own due time).
	interval := time.Duration(float64(time.Second) / rate)
	var due time.Duration
	end := warmup + dur
	var start time.Duration
	for due < end {
		now := time.Since(base)
		if due > now {
			time.Sleep(due - now)
			continue
		}
		measured := due >= warmup
		if measured && start == 0 {
			start = due
		}
		jobs <- job{due: due, measured: measured} // blocks while every worker is busy: the schedule does not wait
		due += interval
	}
	measuredFor := time.Since(base) - start
	close(jobs)
	wg.Wait()
	total, raw := newLatencyHist(), newLatencyHist()
	var ok, failed int64
	for _, r := range recs {
		total.merge(&r.corrected)
		raw.merge(&r.raw)
		ok, failed = ok+r.ok, failed+r.failed
	}
	return openSample{offered: rate, achieved: float64(ok) / measuredFor.Seconds(), errors: failed,
		p50: total.quantile(0.5), p99: total.quantile(0.99), p999: total.quantile(0.999), rawP99: raw.quantile(0.99)}
}

type openRec struct {
	ok, failed     int64
	corrected, raw latencyHist
}
