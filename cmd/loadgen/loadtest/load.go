package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

// exitInterrupted is the status of a run that a signal cut short (128 +
// SIGINT, as shells report it): its results are partial.
const exitInterrupted = 130

// exit ends the process; tests replace it.
var exit atomic.Pointer[func(int)]

func exitNow(code int) {
	if f := exit.Load(); f != nil {
		(*f)(code)
		return
	}
	os.Exit(code)
}

// phase, if set, is told when the warm-up starts ("warmup"), when the
// measured window opens ("measure"), and when a first interrupt has been
// taken and a second would exit ("interrupted"): tests wait on it instead
// of a clock.
var phase atomic.Pointer[func(name string)]

func enter(name string) {
	if f := phase.Load(); f != nil {
		(*f)(name)
	}
}

// loadMain runs one load and reports it. The first Ctrl-C (or SIGTERM)
// ends the measurement and reports what was measured; a second one exits
// at once, without a report.
func loadMain(cfg *config, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finished := make(chan struct{})
	defer close(finished) // before stop: a return is never taken for a signal
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		select {
		case <-finished: // ctx ended because we returned
			return
		default:
		}
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		stop() // the next signal comes to again
		defer signal.Stop(again)
		enter("interrupted")
		select {
		case <-again:
			fmt.Fprintln(stderr, "\nloadgen: interrupted again: exiting without a report")
			exitNow(exitInterrupted)
		case <-finished:
		}
	}()
	res, err := runLoad(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if err := writeReports(cfg, res, stdout); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	if res.interrupted {
		return exitInterrupted
	}
	return 0
}

// result is everything a run measured.
type result struct {
	cfg         *config
	target      string    // "embedded (127.0.0.1:port)" or the remote address
	start, end  time.Time // the measured window: end is when it closed, not when the last call came back
	interrupted bool
	warmupCut   bool  // interrupted before the warm-up ended: nothing was measured
	abandoned   int64 // calls still in flight after the drain, cancelled (the measured ones count as failed)
	issued      int64
	ok, failed  int64
	late        int64
	errKinds    map[string]int64
	corrected   *hdr.Histogram // whole run
	raw         *hdr.Histogram
	link        netpoll.Stats // the client side's links, summed
	items       int64         // stream items received while measuring
	intervals   []interval
}

func (r *result) elapsed() time.Duration { return r.end.Sub(r.start) }

func (r *result) throughput() float64 { return float64(r.ok) / r.elapsed().Seconds() }

// load is one run in progress.
type load struct {
	cfg      *config
	callers  []*core.Caller
	sessions []*core.Session
	rec      *recorder
	reqs     *requests
	method   core.Method // mEcho, or -method
	md       core.Metadata
	tally    []tally       // per worker, and one for the open loop's scheduler (the last)
	budget   atomic.Int64  // measured sends reserved against -n (with -n only)
	answered atomic.Int64  // measured calls ended (with -n)
	spent    chan struct{} // closed when -n calls have ended
	sched    schedule
	callFn   func(w int, intended time.Time) error // a Test's Call, or tests': replaces the echo call
	// calls is every call's parent context, cancelled when the drain after
	// the measured window runs out: no call outlives the run.
	calls      context.Context
	abandon    context.CancelFunc
	abandoning atomic.Bool
	// measureStart is set when the warm-up ends; the open-loop scheduler
	// restarts its schedule from it.
	measureStart atomic.Pointer[time.Time]
	abandoned    atomic.Int64 // calls the drain cancelled
}

// runLoad sets up the target, warms up, measures, and tears down.
func runLoad(ctx context.Context, cfg *config, stderr io.Writer) (*result, error) {
	prof, err := cfg.prof.start()
	if err != nil {
		return nil, err
	}
	defer prof.Stop()

	res := &result{cfg: cfg, target: cfg.target}
	if cfg.custom != nil {
		l := newLoad(cfg)
		l.callFn = func(w int, intended time.Time) error {
			ctx, cancel := l.callCtx(intended)
			defer cancel()
			return cfg.custom.Call(ctx, w)
		}
		res.target = "loadtest.Test (its Call makes the requests)"
		l.measure(ctx, res, stderr)
		return res, nil
	}
	addr := cfg.target
	if addr == "" {
		srv, err := startServer(cfg.transport, "127.0.0.1:0", cfg.handler == "inline", cfg.inflight, cfg.labels)
		if err != nil {
			return nil, fmt.Errorf("embedded server: %w", err)
		}
		defer srv.close()
		addr = srv.addr()
		res.target = "embedded server on " + addr
	}

	l := newLoad(cfg)
	if l.reqs, err = newRequests(cfg); err != nil {
		return nil, err
	}
	if cfg.method != "" {
		l.method, _ = core.ParseMethod(cfg.method) // validated with the flags
	}
	for _, kv := range cfg.metadata {
		k, v, _ := strings.Cut(kv, "=")
		l.md = l.md.Add(k, core.StringValue(v), 0)
	}
	tr, stopTr := transportFor(cfg.transport)
	defer stopTr()
	for range cfg.conns {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		s, err := core.Dial(dctx, tr, "tcp", addr, core.Options{MaxOutstandingCalls: max(cfg.inflight, 1)})
		cancel()
		if err != nil {
			l.close()
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		l.sessions = append(l.sessions, s)
		l.callers = append(l.callers, s.Caller())
	}
	defer l.close()

	l.measure(ctx, res, stderr)
	res.link = l.linkStats()
	return res, nil
}

func newLoad(cfg *config) *load {
	l := &load{cfg: cfg, rec: newRecorder(16), method: mEcho, sched: newSchedule(cfg.rate), spent: make(chan struct{})}
	l.tally = make([]tally, cfg.conns*cfg.inflight+1)
	l.reqs = &requests{fixed: make([]byte, cfg.payload)}
	l.calls, l.abandon = context.WithCancel(context.Background())
	return l
}

func (l *load) linkStats() netpoll.Stats {
	var sum netpoll.Stats
	for _, s := range l.sessions {
		sum = sum.Add(s.LinkStats())
	}
	return sum
}

func (l *load) close() {
	for _, c := range l.callers {
		c.Close()
	}
	for _, s := range l.sessions {
		s.Close()
	}
}

// call makes one operation for worker w: an echo, a stream (mixed: odd
// workers stream), or the test's stand-in.
func (l *load) call(w int, intended time.Time) error {
	switch {
	case l.callFn != nil:
		return l.callFn(w, intended)
	case l.streams(w):
		return l.stream(w, intended)
	}
	return l.echo(w, intended)
}

// streams reports whether worker w's calls are streams.
func (l *load) streams(w int) bool {
	return l.callFn == nil && (l.cfg.workload == "stream" || l.cfg.workload == "mixed" && w%2 == 1)
}

// stream makes one streaming call: the server sends -items items of
// -payload bytes on a channel of -window credits; the operation ends when
// every item and the response have arrived.
func (l *load) stream(w int, intended time.Time) error {
	ctx, cancel := l.callCtx(intended)
	defer cancel()
	cl := l.callers[w%len(l.callers)]
	rx := cl.Conn().NewRx(l.cfg.window)
	defer rx.Close()
	var req [8]byte
	binary.LittleEndian.PutUint32(req[:], uint32(l.cfg.items))
	binary.LittleEndian.PutUint32(req[4:], uint32(l.cfg.payload))
	// The items are read on this goroutine while the call runs (While);
	// a failed read cancels the call.
	err := cl.Call(ctx, mStream, req[:], &core.CallOptions{Channels: []core.Channel{rx}, Metadata: l.md, While: func() error {
		for range l.cfg.items {
			it, err := rx.Recv(ctx)
			if err != nil {
				return err
			}
			it.Release()
		}
		return nil
	}}, nil)
	return err
}

// callCtx is the context of one operation: the run's (cancelled if the
// drain runs out), with -timeout a deadline that travels with the call.
// The deadline counts from when the call was due (in an open loop, the
// schedule's time, not the moment a free worker sent it): a call that
// waited its whole timeout in the queue fails as timed out at once, as
// a real client with a deadline would.
func (l *load) callCtx(intended time.Time) (context.Context, context.CancelFunc) {
	if l.cfg.timeout > 0 {
		return context.WithDeadline(l.calls, intended.Add(l.cfg.timeout))
	}
	return l.calls, func() {}
}

// drain waits for the workers once nothing more is issued: the calls in
// flight get -drain to come back, then they are cancelled (and counted as
// failed), so a run never waits on a server that stopped answering.
func (l *load) drain(workers *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	t := time.NewTimer(l.cfg.drain)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	l.abandoning.Store(true)
	l.abandon()
	<-done
}

// echo makes one echo call on worker w's connection.
func (l *load) echo(w int, intended time.Time) error {
	ctx, cancel := l.callCtx(intended)
	defer cancel()
	var opts *core.CallOptions
	if len(l.md) > 0 {
		opts = &core.CallOptions{Metadata: l.md}
	}
	return l.callers[w%len(l.callers)].Call(ctx, l.method, l.reqs.next(), opts, nil)
}

// measure runs the warm-up and the measured phase, collecting intervals.
func (l *load) measure(ctx context.Context, res *result, stderr io.Writer) {
	issuing, stopIssuing := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	begin := func() { // the measured phase starts now
		l.rec.reset()
		res.start = time.Now()
		l.rec.measuring.Store(true)
		l.startMeasuring(res.start)
		enter("measure")
	}
	if l.cfg.warmup <= 0 {
		// No warm-up: measuring starts before the first call, so that no
		// call goes out unmeasured (with -n, the server sees exactly n).
		begin()
	}
	if l.cfg.rate.open() {
		l.openLoop(issuing, &workers)
	} else {
		l.closedLoop(issuing, &workers)
	}

	if l.cfg.warmup > 0 {
		// Warm-up: calls flow, nothing is recorded. Say so, or a long one
		// looks like a hang.
		enter("warmup")
		if !l.cfg.quiet {
			what := l.cfg.duration.String()
			if l.cfg.total > 0 {
				what = fmt.Sprintf("%s calls", fmtCount(float64(l.cfg.total)))
			}
			fmt.Fprintf(stderr, "warming up for %s, then measuring %s\n", l.cfg.warmup, what)
		}
		warm := time.NewTimer(l.cfg.warmup)
		select {
		case <-warm.C:
		case <-ctx.Done():
			warm.Stop()
			// Cut short: nothing was measured, and nothing is reported as
			// if it had been.
			res.interrupted, res.warmupCut = true, true
			res.start = time.Now()
			res.end = res.start
			stopIssuing()
			l.drain(&workers)
			return
		}
		begin()
	}

	tick := time.Second
	if l.cfg.every > 0 {
		tick = l.cfg.every
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	prog := newProgress(stderr, l.cfg)
	var end <-chan time.Time
	if l.cfg.total == 0 {
		end = time.After(l.cfg.duration)
	}
	last := res.start
	var lastOK, lastFailed int64
	snap := func(now time.Time) {
		c, r := l.rec.snapshot()
		ok, failed := l.rec.counts()
		iv := interval{start: last, end: now, ok: ok - lastOK, failed: failed - lastFailed, corrected: c, raw: r}
		if l.cfg.rate.open() { // the schedule's average over the interval: its midpoint
			iv.offered = l.sched.rateAt((last.Sub(res.start) + now.Sub(res.start)) / 2)
		}
		res.intervals = append(res.intervals, iv)
		last, lastOK, lastFailed = now, ok, failed
		// The last interval is cut short by the end (and holds the drain
		// of calls in flight): print it only if it is a real period.
		if l.cfg.every > 0 && iv.end.Sub(iv.start) >= tick/2 {
			prog.snapshot(iv, now.Sub(res.start))
		}
	}
	progress := time.NewTicker(250 * time.Millisecond)
	defer progress.Stop()
loop:
	for {
		select {
		case now := <-ticker.C:
			snap(now)
		case <-progress.C:
			ok, failed := l.rec.counts()
			prog.update(time.Since(res.start), ok, failed, res.intervals)
		case <-end:
			break loop
		case <-l.budgetSpent():
			break loop
		case <-ctx.Done():
			res.interrupted = true
			break loop
		}
	}
	// The window closes now. Stop issuing; the calls in flight get -drain
	// to finish (their outcomes and latencies are kept, so issued = ok +
	// failed), then the rest are cancelled.
	res.end = time.Now()
	stopIssuing()
	l.drain(&workers)
	snap(time.Now())
	prog.done()

	res.issued, res.items = l.tallies()
	res.abandoned = l.abandoned.Load()
	res.ok, res.failed = l.rec.counts()
	res.late = l.rec.late.Load()
	res.errKinds = l.rec.errorKinds()
	res.corrected, res.raw = newHist(), newHist()
	for _, iv := range res.intervals {
		res.corrected.Merge(iv.corrected)
		res.raw.Merge(iv.raw)
	}
}

// budget: -n calls. A closed channel once they have all been issued and
// answered.
func (l *load) budgetSpent() <-chan struct{} {
	if l.cfg.total == 0 {
		return nil
	}
	return l.spent
}

// tally is what one worker (or the open loop's scheduler) counted, on a
// cache line of its own: a counter every call of every worker wrote would
// move between the cores on each call, a cost the measured system would
// be charged with. (128 bytes apart, so that no two tallies' counters
// share a line however the slice is aligned.)
type tally struct {
	issued atomic.Int64 // measured sends
	items  atomic.Int64 // stream items of measured calls that succeeded
	_      [112]byte
}

// tallies sums the tallies: measured sends, stream items.
func (l *load) tallies() (issued, items int64) {
	for i := range l.tally {
		issued += l.tally[i].issued.Load()
		items += l.tally[i].items.Load()
	}
	return issued, items
}

// take reserves one measured send for tally t; false once -n is used up.
// During the warm-up every send is allowed and unmeasured. Only -n needs
// a counter that every send writes: its budget must be exact.
func (l *load) take(t *tally) (measured, ok bool) {
	if !l.rec.measuring.Load() {
		return false, true
	}
	if l.cfg.total > 0 && l.budget.Add(1) > l.cfg.total {
		l.budget.Add(-1)
		return false, false
	}
	t.issued.Add(1)
	return true, true
}

// untake gives back a measured send taken but never made.
func (l *load) untake(t *tally) {
	t.issued.Add(-1)
	if l.cfg.total > 0 {
		l.budget.Add(-1)
	}
}

// done counts a measured call's end, closing spent after the last of -n.
func (l *load) done() {
	if l.cfg.total > 0 && l.answered.Add(1) == l.cfg.total {
		close(l.spent)
	}
}

// closedLoop: conns x inflight workers, each with one call in flight.
func (l *load) closedLoop(issuing context.Context, wg *sync.WaitGroup) {
	for w := range l.cfg.conns * l.cfg.inflight {
		wg.Go(func() {
			for issuing.Err() == nil {
				measured, ok := l.take(&l.tally[w])
				if !ok {
					return
				}
				sent := time.Now()
				err := l.call(w, sent)
				l.countAbandoned(err)
				if measured {
					l.recordEnd(w, sent, sent, err)
				}
			}
		})
	}
}

// openLoop: a scheduler hands each call's intended send time to a pool of
// conns x inflight workers. A call's latency is measured from its intended
// time, so a stalled server shows up in the percentiles as the wait it
// really caused (coordinated omission corrected, as wrk2); the latency
// from the actual send is kept beside it.
func (l *load) openLoop(issuing context.Context, wg *sync.WaitGroup) {
	jobs := make(chan job)
	for w := range l.cfg.conns * l.cfg.inflight {
		wg.Go(func() {
			for j := range jobs {
				sent := time.Now()
				if sent.Sub(j.intended) > lateAfter && j.measured {
					l.rec.late.Add(1)
				}
				err := l.call(w, j.intended)
				l.countAbandoned(err)
				if j.measured {
					l.recordEnd(w, j.intended, sent, err)
				}
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		// Warm-up at the starting rate, then the measured schedule.
		start := time.Now()
		var i int64
		sched := newSchedule(rateSpec{from: l.cfg.rate.from, to: l.cfg.rate.from})
		own := &l.tally[len(l.tally)-1] // the scheduler's: it sends the jobs
		warming := true
		for issuing.Err() == nil {
			if ms := l.measureStart.Load(); ms != nil && warming {
				start, i, sched, warming = *ms, 0, l.sched, false
			}
			due := start.Add(sched.at(i))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-issuing.Done():
					return
				}
			}
			measured, ok := l.take(own)
			if !ok {
				return
			}
			select {
			case jobs <- job{intended: due, measured: measured}:
			case <-issuing.Done():
				if measured {
					l.untake(own)
				}
				return
			}
			i++
		}
	})
}

type job struct {
	intended time.Time
	measured bool
}

// recordEnd records a measured call's outcome. A stream call that
// succeeded counts its items: those of the measured calls only, as ok
// counts them (a call sent in the warm-up that ends in the window counts
// for neither).
func (l *load) recordEnd(w int, intended, sent time.Time, err error) {
	if err == nil && l.streams(w) {
		l.tally[w].items.Add(int64(l.cfg.items))
	}
	l.rec.record(w, intended, sent, time.Now(), err)
	l.done()
}

// countAbandoned counts a call the drain cancelled (measured or not: one
// sent in the warm-up may hang as well).
func (l *load) countAbandoned(err error) {
	if err != nil && l.abandoning.Load() {
		l.abandoned.Add(1)
	}
}

// startMeasuring tells the open-loop scheduler to restart its schedule.
func (l *load) startMeasuring(t time.Time) { l.measureStart.Store(&t) }

// errKind names an error for the report.
func errKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{context.DeadlineExceeded, "timeout"},
		{core.ErrCancelled, "cancelled"},
		{core.ErrConnectionClosed, "connection closed"},
		{core.ErrUnavailable, "unavailable"},
		{core.ErrProtocol, "protocol error"},
		{core.ErrUnknownMethod, "unknown method"},
		{core.ErrInternal, "internal"},
		{core.ErrTooManyRequests, "too many requests"},
		{core.ErrSendFailed, "send failed"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	// An application error: its canonical code (NotFound, ...).
	return core.CodeOf(err).String()
}
