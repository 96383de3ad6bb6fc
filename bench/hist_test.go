package main

import (
	"testing"
	"time"
)

// Buckets are contiguous and ordered, and quantiles come back within the
// buckets' error (1.6%).
func TestLatencyHist(t *testing.T) {
	for i := 1; i < histExps*histSubs; i++ {
		if lowerBound(i) <= lowerBound(i-1) {
			t.Fatalf("bucket %d starts at %d, not after %d", i, lowerBound(i), lowerBound(i-1))
		}
		if b := bucketOf(lowerBound(i)); b != i {
			t.Fatalf("value %d lands in bucket %d, not %d", lowerBound(i), b, i)
		}
	}
	h := newLatencyHist()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {0.999, 999 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d > 0.016 || d < -0.016 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if h.quantile(0.5) == 0 || newLatencyHist().quantile(0.5) != 0 {
		t.Fatal("empty/non-empty")
	}
}

func BenchmarkRecord(b *testing.B) {
	h := newLatencyHist()
	for i := 0; i < b.N; i++ {
		h.record(time.Duration(i&1023) * time.Microsecond)
	}
}
