package loadtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant
// digits.
const (
	histMin     = 1
	histMax     = int64(time.Hour / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMin, histMax, histSigFigs) }

func toMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	return min(max(us, histMin), histMax)
}

// recorder collects latencies from many goroutines. Each worker writes to
// one of a few shards (a mutex, two histograms and the counts of calls
// that ended), so workers rarely contend and share no counter that every
// call writes (shared ok and failed counters moved a cache line between
// the cores at each call: record was 4.8% of a 4 x 256 loadgen profile
// with them, 2.9% without); snapshot swaps every shard's interval
// histograms out.
type recorder struct {
	shards    []shard
	late      atomic.Int64 // open loop: sends that left more than lateAfter behind schedule
	measuring atomic.Bool  // false during warm-up
	errMu     sync.Mutex
	errKinds  map[string]int64
}

type shard struct {
	mu         sync.Mutex
	corrected  *hdr.Histogram // from the intended send time (open loop), or the send
	raw        *hdr.Histogram // from the actual send time
	ok, failed int64          // calls ended since the start of measuring (under mu)
	_          [24]byte       // keep shards on separate cache lines
}

// lateAfter: a send later than this behind its schedule counts as late.
const lateAfter = time.Millisecond

func newRecorder(nshards int) *recorder {
	r := &recorder{shards: make([]shard, nshards), errKinds: map[string]int64{}}
	for i := range r.shards {
		r.shards[i].corrected, r.shards[i].raw = newHist(), newHist()
	}
	return r
}

// record notes one completed call. intended is when it should have been
// sent (the actual send time in closed loop), sent when it was, done when
// it completed.
func (r *recorder) record(worker int, intended, sent, done time.Time, err error) {
	if !r.measuring.Load() {
		return
	}
	if err != nil {
		r.errMu.Lock()
		r.errKinds[errKind(err)]++
		r.errMu.Unlock()
	}
	sh := &r.shards[worker%len(r.shards)]
	sh.mu.Lock()
	if err != nil {
		sh.failed++
	} else {
		sh.ok++
	}
	// A failed call is left out of the percentiles, except one that timed
	// out: it took at least its timeout, and leaving it out would shrink
	// the tail exactly when the server is slow.
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		_ = sh.corrected.RecordValue(toMicros(done.Sub(intended)))
		_ = sh.raw.RecordValue(toMicros(done.Sub(sent)))
	}
	sh.mu.Unlock()
}

// snapshot moves what the shards hold into fresh interval histograms.
func (r *recorder) snapshot() (corrected, raw *hdr.Histogram) {
	corrected, raw = newHist(), newHist()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		corrected.Merge(sh.corrected)
		raw.Merge(sh.raw)
		sh.corrected.Reset()
		sh.raw.Reset()
		sh.mu.Unlock()
	}
	return corrected, raw
}

// reset drops everything recorded (the end of the warm-up).
func (r *recorder) reset() {
	r.snapshot()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.ok, sh.failed = 0, 0
		sh.mu.Unlock()
	}
	r.late.Store(0)
	r.errMu.Lock()
	r.errKinds = map[string]int64{}
	r.errMu.Unlock()
}

// counts returns the calls that succeeded and failed since the start of
// measuring.
func (r *recorder) counts() (ok, failed int64) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		ok, failed = ok+sh.ok, failed+sh.failed
		sh.mu.Unlock()
	}
	return ok, failed
}

func (r *recorder) errorKinds() map[string]int64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	out := make(map[string]int64, len(r.errKinds))
	for k, v := range r.errKinds {
		out[k] = v
	}
	return out
}

// interval is one snapshot period of a run.
type interval struct {
	start, end time.Time
	ok, failed int64
	corrected  *hdr.Histogram
	raw        *hdr.Histogram
	offered    float64 // open loop: the scheduled rate at the interval's end
}

func (iv interval) rate() float64 {
	return float64(iv.ok+iv.failed) / iv.end.Sub(iv.start).Seconds()
}
