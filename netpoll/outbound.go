package netpoll

import (
	"context"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// outbound coalesces frames from many goroutines into few writes.
//
// Invariant (under mu): len(pend) > 0 implies flushing or corked. While
// flushing is set, one goroutine owns w: the writer goroutine (woken by
// kick), or the reading goroutine during queue's one non-blocking attempt.
// At most 2*max bytes are ever held: pend (bounded by max, except that one
// frame is always accepted into an empty buffer) and the batch being written.
type outbound struct {
	w    io.Writer
	raw  *rawWriter // non-blocking attempts for queue; nil on a pipe
	max  int
	kick chan struct{} // capacity 1: wakes the writer goroutine to take over a flush

	mu       sync.Mutex
	pend     []byte        // frames waiting, each with its length prefix
	spare    []byte        // the last written batch, reused as the next pend
	flushing bool          // a goroutine owns the write side
	corked   bool          // queue defers flushing until uncork (the reader is mid-batch)
	closing  bool          // Close began: no new frames
	err      error         // the write side failed: nothing more is written
	room     chan struct{} // closed when pend shrinks; nil while nobody waits
	idle     chan struct{} // closed when pend is empty and nobody flushes; nil while nobody waits

	frames    atomic.Uint64 // frames accepted
	writes    atomic.Uint64 // write calls made
	pendN     int           // frames in pend (under mu)
	lastBatch atomic.Int64  // frames in the last batch written
	fail      func(error)   // the connection's teardown, called once on a write error
}

func (o *outbound) init(w io.Writer, max int, fail func(error)) {
	o.w, o.max, o.fail = w, max, fail
	o.raw = newRawWriter(w)
	o.kick = make(chan struct{}, 1)
}

// write queues one frame and returns: it never writes to the socket
// itself. The frame that makes the buffer non-empty wakes the writer
// goroutine, which writes everything queued by the time it runs, so a
// burst from many callers leaves in one write. It blocks only while the
// buffer is full.
func (o *outbound) write(ctx context.Context, body []byte, n Committer) error {
	need := FrameLen(len(body))
	o.mu.Lock()
	for o.err == nil && !o.closing && len(o.pend) > 0 && len(o.pend)+need > o.max {
		if err := o.waitLocked(ctx, &o.room); err != nil {
			return err
		}
	}
	if err := o.refusalLocked(); err != nil {
		o.mu.Unlock()
		return err
	}
	o.appendLocked(body, n)
	if !o.flushing {
		o.flushing = true
		o.handOverLocked()
	}
	o.mu.Unlock()
	return nil
}

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
// room (ErrWouldBlock instead) and never makes a blocking write: if no flush
// is under way it tries one non-blocking write of everything queued, and
// hands whatever the socket did not take to the writer goroutine.
func (o *outbound) queue(body []byte, n Committer) error {
	o.mu.Lock()
	if err := o.refusalLocked(); err != nil {
		o.mu.Unlock()
		return err
	}
	if len(o.pend) > 0 && len(o.pend)+FrameLen(len(body)) > o.max {
		o.mu.Unlock()
		return ErrWouldBlock
	}
	o.appendLocked(body, n)
	if o.flushing || o.corked {
		o.mu.Unlock()
		return nil
	}
	return o.startFlushLocked()
}

// appendLocked queues one frame and tells its Committer: under mu, so
// before any flush can take the frame.
func (o *outbound) appendLocked(body []byte, n Committer) {
	o.pend = AppendFrame(o.pend, body)
	o.pendN++
	o.frames.Add(1)
	if n != nil {
		n.Committed()
	}
}

// cork holds back queue's flushes until uncork, so that the frames queued
// while one inbound batch is handled leave in one write.
func (o *outbound) cork() {
	o.mu.Lock()
	o.corked = true
	o.mu.Unlock()
}

// uncork ends cork and starts the flush of what was queued meanwhile.
func (o *outbound) uncork() {
	o.mu.Lock()
	o.corked = false
	if o.flushing || len(o.pend) == 0 || o.err != nil {
		o.mu.Unlock()
		return
	}
	o.startFlushLocked()
}

// startFlushLocked starts a flush without ever blocking: one non-blocking
// write of everything queued, then the writer goroutine for the rest.
// Called with mu held, pend non-empty and no flush under way; returns with
// mu released.
func (o *outbound) startFlushLocked() error {
	o.flushing = true
	if o.raw == nil {
		o.handOverLocked()
		o.mu.Unlock()
		return nil
	}
	batch := o.takeBatchLocked()
	o.mu.Unlock()

	n, err := o.raw.try(batch)
	o.writes.Add(1)

	o.mu.Lock()
	if err != nil {
		return o.failLocked(err)
	}
	if n < len(batch) {
		// The unsent tail goes out before anything queued meanwhile.
		rest := copy(batch, batch[n:])
		batch = append(batch[:rest], o.pend...)
		o.pend, o.spare = batch, o.pend[:0]
		o.pendN++ // the unsent tail: at least part of one more frame
	} else if cap(batch) <= 2*o.max {
		o.spare = batch[:0]
	}
	if len(o.pend) > 0 {
		o.handOverLocked()
	} else {
		o.flushing = false
		wake(&o.idle)
	}
	o.mu.Unlock()
	return nil
}

// takeBatchLocked takes everything queued as the next batch to write and
// wakes the writers waiting for room: pend is empty now, whoever shrinks
// it. (Both flush paths take their batch here, so none can forget the
// wake-up: a writer that waited while the reader was corked is released by
// uncork's flush as by the writer goroutine's.)
func (o *outbound) takeBatchLocked() []byte {
	batch := o.pend
	o.pend, o.spare = o.spare[:0], nil
	o.lastBatch.Store(int64(o.pendN))
	o.pendN = 0
	wake(&o.room)
	return batch
}

// handOverLocked gives the flush (flushing stays set) to the writer
// goroutine.
func (o *outbound) handOverLocked() {
	select {
	case o.kick <- struct{}{}:
	default: // already kicked: the writer goroutine will see pend
	}
}

// failLocked records a write error, releases every waiter and tears the
// connection down. Called with mu held; returns with it released.
func (o *outbound) failLocked(err error) error {
	if o.err == nil {
		o.err = err
	}
	o.flushing = false
	o.pend, o.pendN = nil, 0
	wake(&o.room)
	wake(&o.idle)
	o.mu.Unlock()
	o.fail(err)
	return err
}

// flushLocked writes batches until pend is empty. It runs on the writer
// goroutine with mu held and flushing set; it returns with mu released.
func (o *outbound) flushLocked() {
	for {
		if len(o.pend) == 0 || o.err != nil {
			o.flushing = false
			o.pend, o.pendN = o.pend[:0], 0
			wake(&o.idle)
			o.mu.Unlock()
			return
		}
		batch := o.takeBatchLocked()
		o.mu.Unlock()

		_, err := o.w.Write(batch)
		o.writes.Add(1)

		o.mu.Lock()
		if cap(batch) <= 2*o.max {
			o.spare = batch[:0]
		}
		if err != nil {
			o.failLocked(err)
			return
		}
	}
}

// run is the writer goroutine: it finishes flushes handed over by callers.
func (o *outbound) run(quit <-chan struct{}) {
	for {
		select {
		case <-o.kick:
			// The goroutine that kicked us handed us its P's next slot, so
			// we would run before the other callers it woke can queue
			// their frames. Under load (the last batch carried several
			// frames) yield once: whoever is runnable appends first, and
			// the batch grows. A lone request (ping-pong) goes at once:
			// with nothing else runnable the yield only costs latency.
			if o.lastBatch.Load() > 1 {
				runtime.Gosched()
			}
			o.mu.Lock()
			o.flushLocked()
		case <-quit:
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
