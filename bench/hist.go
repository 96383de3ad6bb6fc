package main

import (
	"math/bits"
	"time"
)

// latencyHist counts latencies in log-linear buckets: 64 sub-buckets per
// power of two of nanoseconds (under 1.6% error), from 1 ns to about 17 s;
// longer is counted in the last. A record is one increment; a histogram
// has one writer (a worker) and is merged once it is done.
type latencyHist struct {
	counts [histExps * histSubs]uint32
}

const (
	histSubBits = 6
	histSubs    = 1 << histSubBits
	histExps    = 34 - histSubBits + 1
)

func newLatencyHist() *latencyHist { return new(latencyHist) }

func bucketOf(ns uint64) int {
	if ns < histSubs {
		return int(ns)
	}
	exp := bits.Len64(ns) - histSubBits // >= 1
	i := exp*histSubs + int(ns>>(exp-1)) - histSubs
	if i >= histExps*histSubs {
		return histExps*histSubs - 1
	}
	return i
}

// lowerBound is the smallest latency counted in bucket i.
func lowerBound(i int) uint64 {
	if i < histSubs {
		return uint64(i)
	}
	exp := i / histSubs
	sub := i%histSubs + histSubs
	return uint64(sub) << (exp - 1)
}

func (h *latencyHist) record(d time.Duration) { h.counts[bucketOf(uint64(max(d, 0)))]++ }

func (h *latencyHist) merge(o *latencyHist) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
}

// quantile returns the latency below which q of the recorded ones fall
// (the upper end of its bucket's range, rounded to its middle).
func (h *latencyHist) quantile(q float64) time.Duration {
	var total uint64
	for _, n := range h.counts {
		total += uint64(n)
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	var seen uint64
	for i, n := range h.counts {
		seen += uint64(n)
		if seen >= rank && seen > 0 {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration((lo + hi) / 2)
		}
	}
	return time.Duration(lowerBound(len(h.counts) - 1))
}
