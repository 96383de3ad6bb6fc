package netpoll

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// outbound coalesces frames from many goroutines into few writes.
//
// Under load WriteFrame does not write to the socket itself: the frame
// that makes the buffer non-empty starts a writer goroutine, which writes
// everything queued by the time it runs, and again while more arrives,
// then ends. So a burst from many callers leaves in one write, and an
// idle connection has no writer. A frame its caller says is alone
// (WriteFrameAlone: the one call in flight) is written by its caller with
// one non-blocking write when no flush is under way, the writer taking
// only what the socket refused. (Guessing "alone" here from the last
// batch's size misfires: handlers answering one by one on worker
// goroutines each look alone, and writing each at once costs a syscall
// per frame where the writer's moment of delay would have batched them.)
// QueueFrame and uncork (the reading goroutine: a gnet event loop) make
// one non-blocking write first, so a batch of inline replies usually
// leaves with no goroutine at all. A frame written owed (WriteFrameOwed)
// starts no flush either: its caller arranges one flushOwed call, at a
// moment it knows more frames have been queued (core runs it from its
// workers' queue, behind the requests queued with it), and the first
// such write since the last flushOwed is told to.
//
// Invariant (under mu): len(pend) > 0 implies flushing, corked or owed. While
// flushing is set, one goroutine owns the sink: a writer goroutine, or the
// reading goroutine (or WriteFrameAlone's caller) during its one
// non-blocking attempt. At most 2*max
// bytes are ever held, plus control frames: pend (bounded by max, except
// that one frame is always accepted into an empty buffer, and control
// frames, which QueueControl's callers bound by their own state) and the
// batch being written.
type outbound struct {
	sink sink
	max  int
	wg   *sync.WaitGroup // the connection's: counts the writer goroutine
	run  func()          // o.writer, bound once: "go o.writer()" would allocate a closure each time

	mu       sync.Mutex
	pend     []byte        // frames waiting, each with its length prefix
	pendN    int           // frames in pend
	spare    []byte        // the last written batch, reused as the next pend
	flushing bool          // a goroutine owns the sink
	corked   bool          // queue defers flushing until uncork (the reader is mid-batch)
	company  bool          // a frame in pend came from a writer with company (write, not alone)
	owed     bool          // a flushOwed call is owed (a frame was written owed since the last one)
	closing  bool          // Close began: no new frames
	err      error         // the write side failed: nothing more is written
	room     chan struct{} // closed when pend shrinks; nil while nobody waits
	idle     chan struct{} // closed when pend is empty and nobody flushes; nil while nobody waits

	// frames counts frames accepted (under mu: an atomic add here, the
	// one locked instruction after the frame's copy, measured 7% of a
	// streaming server's CPU, waiting for those stores to drain).
	frames  uint64
	writes  atomic.Uint64 // write calls that carried bytes
	lastLen int           // bytes in the last batch taken (under mu)
	fail    func(error)   // the connection's teardown, called once on a write error
}

func (o *outbound) init(s sink, max int, wg *sync.WaitGroup, fail func(error)) {
	o.sink, o.max, o.wg, o.fail = s, max, wg, fail
	o.run = o.writer
}

// writeMode says who starts the flush of a frame write queues.
type writeMode uint8

const (
	// modeCompany: a writer goroutine, which yields first, so that the
	// other goroutines with frames queue theirs.
	modeCompany writeMode = iota
	// modeAlone: the writing goroutine, with one non-blocking try, when no
	// flush is under way and nothing else waits (nobody to coalesce with).
	modeAlone
	// modeOwed: nobody now; the writer is told (true) when it must
	// arrange a flushOwed call.
	modeOwed
)

// write queues one frame and returns; a writer goroutine writes it, or,
// for a frame alone with no flush under way, this goroutine with one
// non-blocking try, or, for a frame written with modeOwed, whoever calls
// flushOwed. It reports whether the caller now owes that call (modeOwed,
// no flush under way and no call owed already). It blocks only while the
// buffer is full.
func (o *outbound) write(ctx context.Context, body []byte, n Committer, mode writeMode) (bool, error) {
	need := FrameLen(len(body))
	o.mu.Lock()
	for o.err == nil && !o.closing && len(o.pend) > 0 && len(o.pend)+need > o.max {
		// A frame refused now is refused at once, not once room comes:
		// a control frame queued meanwhile wakes us to ask again.
		if !admit(n) {
			o.mu.Unlock()
			return false, ErrNotAdmitted
		}
		if err := o.waitLocked(ctx, &o.room); err != nil {
			return false, err
		}
	}
	if err := o.refusalLocked(); err != nil {
		o.mu.Unlock()
		return false, err
	}
	if !admit(n) {
		o.mu.Unlock()
		return false, ErrNotAdmitted
	}
	o.appendLocked(body, n)
	o.company = o.company || mode != modeAlone
	switch {
	case o.flushing: // the flush under way takes it
	case mode == modeOwed:
		// Not left to a corked reader's uncork, as no write is: the
		// reader may be held up mid-batch (a relayed write waiting for
		// room).
		first := !o.owed
		o.owed = true
		o.mu.Unlock()
		return first, nil
	case mode == modeAlone && (o.pendN == 1 || o.owed):
		// Nobody to coalesce with (the caller says so, and nothing else
		// waits but frames written owed, which wait for a flush anyway:
		// they go now, with it, and their owed flush finds nothing):
		// write it here rather than pay a goroutine and a switch before
		// it leaves (round-trip latency). Never blocks: what the socket
		// does not take goes to a writer.
		o.tryFlushLocked()
		return false, nil
	default: // cork holds back only queue's inline flushes, not other writers
		o.flushing = true
		o.startWriterLocked()
	}
	o.mu.Unlock()
	return false, nil
}

// flushOwed is the call a write with modeOwed arranged: it flushes what
// is queued, unless a flush is under way (which takes it), with
// non-blocking writes on this goroutine (again for what came during the
// last, up to owedTries) and a writer goroutine for what the socket does
// not take. It never blocks.
func (o *outbound) flushOwed() {
	o.mu.Lock()
	o.owed = false
	o.flushIdleLocked(owedTries)
}

// owedTries bounds the non-blocking writes of one flushOwed: frames that
// keep coming while it writes go to a writer goroutine after that many.
const owedTries = 4

func (o *outbound) refusalLocked() error {
	if o.err != nil {
		return o.err
	}
	if o.closing {
		return ErrClosed
	}
	return nil
}

// queue is write for goroutines that must never block. It never waits for
// room (ErrWouldBlock instead, unless control: see QueueControl) and never
// makes a blocking write: if no flush is under way it tries one
// non-blocking write of everything queued, and hands whatever the socket
// did not take to a writer goroutine.
func (o *outbound) queue(body []byte, n Committer, control bool) error {
	o.mu.Lock()
	if err := o.refusalLocked(); err != nil {
		o.mu.Unlock()
		return err
	}
	if !control && len(o.pend) > 0 && len(o.pend)+FrameLen(len(body)) > o.max {
		o.mu.Unlock()
		return ErrWouldBlock
	}
	if !admit(n) {
		o.mu.Unlock()
		return ErrNotAdmitted
	}
	o.appendLocked(body, n)
	if control {
		// It may have changed what an Admitter waiting for room would
		// answer (a channel's close, for the channel's next item): the
		// waiting writers ask again (write).
		wake(&o.room)
	}
	if o.flushing || o.corked {
		o.mu.Unlock()
		return nil
	}
	o.tryFlushLocked()
	return nil
}

// admit asks n, if it is an Admitter, whether its frame may still go.
func admit(n Committer) bool {
	a, ok := n.(Admitter)
	return !ok || a.Admit()
}

// appendLocked queues one frame and tells its Committer: under mu, so
// before any flush can take the frame.
func (o *outbound) appendLocked(body []byte, n Committer) {
	if need := len(o.pend) + FrameLen(len(body)); need > cap(o.pend) {
		want := max(need, 2*cap(o.pend))
		if len(o.pend) == 0 {
			// A new batch: sized like the last one, so that a run of
			// batches takes one pooled buffer each, not a series of
			// ever larger ones (but not like a lone large frame).
			want = max(need, min(o.lastLen, maxPooledChunk))
		}
		b := append(getOutBuf(want), o.pend...)
		putOutBuf(o.pend)
		o.pend = b
	}
	o.pend = AppendFrame(o.pend, body)
	o.pendN++
	o.frames++
	if n != nil {
		n.Committed()
	}
}

// framesOut returns the frames accepted so far.
func (o *outbound) framesOut() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.frames
}

// cork holds back flushes until uncork, so that the frames queued while
// one inbound batch is handled leave in one write.
func (o *outbound) cork() {
	o.mu.Lock()
	o.corked = true
	o.mu.Unlock()
}

// uncork ends cork and starts the flush of what was queued meanwhile.
func (o *outbound) uncork() {
	o.mu.Lock()
	o.corked = false
	o.flushIdleLocked(1)
}

// flushIdleLocked starts a flush of what is queued (tryFlushesLocked with
// up to tries writes), unless a flush is under way, nothing is queued or
// writing failed. Called with mu held; returns with it released.
func (o *outbound) flushIdleLocked(tries int) {
	if o.flushing || len(o.pend) == 0 || o.err != nil {
		o.mu.Unlock()
		return
	}
	o.tryFlushesLocked(tries)
}

// tryFlushLocked starts a flush without ever blocking: one non-blocking
// write of everything queued, then a writer goroutine for the rest. Called
// with mu held, pend non-empty and no flush under way; returns with mu
// released.
func (o *outbound) tryFlushLocked() { o.tryFlushesLocked(1) }

// tryFlushesLocked is tryFlushLocked with up to tries non-blocking
// writes: while the socket takes everything and more frames came during
// the write, this goroutine writes them too, rather than hand them to a
// writer goroutine.
func (o *outbound) tryFlushesLocked(tries int) {
	o.flushing = true
	for {
		batch := o.takeBatchLocked()
		o.mu.Unlock()

		n, err := o.sink.try(batch)
		if n > 0 {
			o.writes.Add(1)
		}

		o.mu.Lock()
		if err != nil {
			o.failLocked(err)
			return
		}
		tries--
		if n < len(batch) {
			// The unsent tail goes out before anything queued meanwhile.
			rest := copy(batch, batch[n:])
			batch = append(batch[:rest], o.pend...)
			o.pend, o.spare = batch, o.pend[:0]
			o.pendN++ // the unsent tail: at least part of one more frame
			tries = 0 // the socket is full: a writer waits for it
		} else {
			o.recycleLocked(batch)
		}
		switch {
		case len(o.pend) == 0 || o.err != nil:
			o.doneLocked()
			return
		case tries == 0:
			o.startWriterLocked()
			o.mu.Unlock()
			return
		}
	}
}

// startWriterLocked hands the flush (flushing stays set) to a new writer
// goroutine. Called with mu held and no write error: the connection's
// teardown sets the error under mu before it waits for its goroutines, so
// it counts every writer started.
func (o *outbound) startWriterLocked() {
	o.wg.Add(1)
	go o.run()
}

// takeBatchLocked takes everything queued as the next batch to write and
// wakes the writers waiting for room: pend is empty now, whoever shrinks
// it. (Every flush path takes its batch here, so none can forget the
// wake-up: a writer that waited while the reader was corked is released by
// uncork's flush as by the writer goroutine's.)
func (o *outbound) takeBatchLocked() []byte {
	batch := o.pend
	o.pend, o.spare = o.spare[:0], nil
	o.pendN, o.company = 0, false
	o.lastLen = len(batch)
	wake(&o.room)
	return batch
}

// recycleLocked keeps a written batch's array for the next pend, unless a
// frame larger than the bound made it huge. (Within a flush the two arrays
// take turns; doneLocked gives both back when the flush ends.)
func (o *outbound) recycleLocked(batch []byte) {
	if cap(batch) <= 2*o.max {
		o.spare = batch[:0]
	} else {
		putOutBuf(batch)
	}
}

// doneLocked ends the flush: the buffer is empty, or writing failed.
// Called with mu held; returns with it released.
func (o *outbound) doneLocked() {
	o.flushing = false
	// The buffer is empty: its arrays go back to their pool, so that a
	// connection between batches holds none (the next batch takes one,
	// sized by the last: see appendLocked).
	putOutBuf(o.pend)
	putOutBuf(o.spare)
	o.pend, o.spare, o.pendN, o.company = nil, nil, 0, false
	wake(&o.idle)
	o.mu.Unlock()
}

// failLocked records a write error, releases every waiter and tears the
// connection down. Called with mu held; returns with it released.
func (o *outbound) failLocked(err error) {
	if o.err == nil {
		o.err = err
	}
	o.flushing = false
	o.pend, o.pendN, o.company = nil, 0, false
	wake(&o.room)
	wake(&o.idle)
	o.mu.Unlock()
	o.fail(err)
}

// writer is the goroutine a flush was handed to: it writes, blocking as
// the socket requires, until the buffer is empty, then lets the sink
// release what blocking needed (gnet's pollable descriptor) before it
// gives up the flush and ends.
func (o *outbound) writer() {
	defer o.wg.Done()
	o.mu.Lock()
	for {
		if o.err != nil || len(o.pend) == 0 {
			o.mu.Unlock()
			o.sink.idle()
			o.mu.Lock()
			if o.err != nil || len(o.pend) == 0 { // nothing came while we let go of the lock
				o.doneLocked()
				return
			}
		}
		if o.company {
			// The goroutine that started us handed us its P's next slot,
			// so we would run before the other callers it woke can queue
			// their frames: yield once, and whoever is runnable appends
			// first. Only for frames whose writers said they have company
			// (others in flight): yielding by the last batch's size fed on
			// itself (single-frame batches never yielded and stayed
			// single, a write per call: 4 x 256 settled at the lower of
			// two rates), and a frame alone that merely came during a
			// flush (a lone call's reply behind the previous one's write)
			// has nobody to wait for: a yield puts us on the global run
			// queue, where we can sit until sysmon retakes a P when every
			// P is held by an event loop blocked in epoll_wait.
			o.mu.Unlock()
			runtime.Gosched()
			o.mu.Lock()
		}
		batch := o.takeBatchLocked()
		o.mu.Unlock()

		err := o.sink.write(batch)
		o.writes.Add(1)

		o.mu.Lock()
		o.recycleLocked(batch)
		if err != nil {
			o.failLocked(err)
			o.sink.idle()
			return
		}
	}
}

// drain stops new frames and waits until every committed frame was written
// (or writing failed), or ctx ends. It returns the write error, if any.
func (o *outbound) drain(ctx context.Context) error {
	o.mu.Lock()
	o.closing = true
	wake(&o.room) // blocked writers now fail with ErrClosed
	for (o.flushing || len(o.pend) > 0) && o.err == nil {
		if err := o.waitLocked(ctx, &o.idle); err != nil {
			return err
		}
	}
	err := o.err
	o.mu.Unlock()
	return err
}

// shut refuses every frame from now on with err (the first error is kept)
// and wakes every waiter. A flush in progress stops after its current write.
func (o *outbound) shut(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	wake(&o.room)
	wake(&o.idle)
	o.mu.Unlock()
}

// waitLocked waits until *ch is woken (see wake) or ctx ends. Called with
// mu held; returns with it held, or released if ctx ended.
func (o *outbound) waitLocked(ctx context.Context, ch *chan struct{}) error {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	woken := *ch
	o.mu.Unlock()
	select {
	case <-woken:
	case <-ctx.Done():
		return ctx.Err()
	}
	o.mu.Lock()
	return nil
}

// wake closes *ch if someone waits on it.
func wake(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}
