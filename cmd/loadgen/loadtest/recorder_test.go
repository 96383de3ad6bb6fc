package loadtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Calls recorded from many workers at once are all counted, each once, in
// the outcome it had: successes, failures, and timeouts (failures that
// still count in the percentiles); nothing during the warm-up; and reset
// starts from zero.
func TestRecorderCountsEveryCallOnce(t *testing.T) {
	r := newRecorder(4)
	now := time.Now()
	r.record(0, now, now, now.Add(time.Millisecond), nil) // warm-up: not measured
	r.measuring.Store(true)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				var err error
				switch i % 5 {
				case 1:
					err = errors.New("refused")
				case 2:
					err = context.DeadlineExceeded
				}
				r.record(w, now, now, now.Add(time.Millisecond), err)
			}
		})
	}
	wg.Wait()
	ok, failed := r.counts()
	if wantOK, wantFailed := int64(workers*each*3/5), int64(workers*each*2/5); ok != wantOK || failed != wantFailed {
		t.Fatalf("counted %d ok and %d failed, want %d and %d", ok, failed, wantOK, wantFailed)
	}
	corrected, _ := r.snapshot()
	if got, want := corrected.TotalCount(), int64(workers*each*4/5); got != want {
		t.Fatalf("%d latencies recorded, want %d (successes and timeouts)", got, want)
	}
	r.reset()
	if ok, failed := r.counts(); ok != 0 || failed != 0 {
		t.Fatalf("after reset: %d ok, %d failed", ok, failed)
	}
}
