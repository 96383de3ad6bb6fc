package netpoll

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Handler consumes a connection's inbound frames.
//
// HandleFrames and HandleClose are called from the connection's reading
// goroutine (its read loop, or its gnet event loop), one call at a time,
// never concurrently. They must not block for long: on gnet a blocked
// handler stalls every connection of the event loop.
type Handler interface {
	// HandleFrames receives the frames cut from one read, in order: all
	// of them, or, for a read of many, runs of up to 256 in turn. The
	// slice is only valid during the call; each Frame in it is valid until
	// released, and the handler owes exactly one Release per Frame (now or
	// later, from any goroutine).
	HandleFrames(c *Conn, frames []Frame)
	// HandleClose is called exactly once, after the last HandleFrames, with
	// the connection's terminal error: ErrClosed after a local Close, io.EOF
	// when the peer closed cleanly between frames, or what broke the link
	// (ErrTruncated, a *FrameError, an I/O error).
	HandleClose(c *Conn, err error)
}

// Options tune a connection. The zero value means the defaults.
type Options struct {
	// MaxFrameSize is the largest frame body sent or accepted, in bytes.
	// Default DefaultMaxFrameSize; at least MinMaxFrameSize and at most
	// MaxFrameSizeLimit.
	MaxFrameSize int
	// MaxOutbound is how many bytes of frames may wait to be written before
	// WriteFrame blocks. Default 1 MiB. One frame is always accepted into an
	// empty buffer, whatever its size, and QueueControl's frames into a
	// full one.
	MaxOutbound int
	// ReadChunkSize is the size of the pooled chunks reads land in.
	// Default 64 KiB.
	ReadChunkSize int
	// CloseTimeout bounds each of Close's two waits: for committed frames to
	// be written, and for the peer to close its side. Default 5 s.
	CloseTimeout time.Duration
	// MaxHeld, if positive, is the read budget: how many bytes of read
	// chunks the frames delivered to the handler and not yet released keep
	// alive, before the connection stops reading the socket (backpressure,
	// not an error: the kernel's buffers fill and the peer's writes wait).
	// A chunk is counted whole from its first frame to its last release,
	// since that is what a held frame pins, however small. Reading resumes
	// once released frames bring the count to half of it. Frames of one
	// read are all delivered, so what is held can exceed MaxHeld by one
	// read's chunks (and a partial frame by up to MaxFrameSize).
	MaxHeld int
	// MaxReadSize, if positive, caps how many bytes one read hands to the
	// frame cutter. It exists so tests can force frames to straddle reads
	// (1 = one byte at a time); leave it 0.
	MaxReadSize int
}

func (o Options) withDefaults() Options {
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	o.MaxFrameSize = min(max(o.MaxFrameSize, MinMaxFrameSize), MaxFrameSizeLimit)
	if o.MaxOutbound <= 0 {
		o.MaxOutbound = 1 << 20
	}
	if o.ReadChunkSize <= 0 {
		o.ReadChunkSize = 64 << 10
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
	return o
}

// Stats are a connection's counters. Writes counts write calls on the
// socket, so Writes/FramesOut is the syscalls-per-frame figure under load.
type Stats struct {
	FramesOut uint64 // frames accepted by WriteFrame
	Writes    uint64 // write calls that carried them
	FramesIn  uint64 // frames delivered to the handler
	Reads     uint64 // read batches they came in
}

// Add returns the sum of two Stats (of several connections, say).
func (s Stats) Add(o Stats) Stats {
	return Stats{FramesOut: s.FramesOut + o.FramesOut, Writes: s.Writes + o.Writes,
		FramesIn: s.FramesIn + o.FramesIn, Reads: s.Reads + o.Reads}
}

// backend is what a transport provides under a Conn.
type backend interface {
	// closeWrite half-closes the socket: the peer reads end-of-stream after
	// the bytes already written.
	closeWrite() error
	// abort closes the socket at once; the reading side then ends and
	// calls Conn.finish.
	abort()
}

// Conn is one framed connection, the same type on every transport.
//
// WriteFrame, Close, Err, Done and Stats are safe from any goroutine.
type Conn struct {
	opts   Options
	h      Handler
	be     backend
	out    outbound
	in     inbound // owned by the reading goroutine
	local  net.Addr
	remote net.Addr

	errOnce sync.Once
	err     error         // terminal error; written once under errOnce, read after errSet
	errSet  chan struct{} // closed when err is set
	aborted atomic.Bool
	closing atomic.Bool
	wg      sync.WaitGroup // the read goroutine (std, pipe) and the writer while one runs
	done    chan struct{}  // closed after HandleClose returned and every goroutine ended
	onDone  func(*Conn)    // set before reading starts (a listener's connSet); called just before done closes

	framesIn, reads atomic.Uint64
	readErr         error // gnet only: why OnTraffic stopped reading; loop-owned

	budget // the read budget: bytes held, and pausing
}

// newConn makes a Conn writing to s. The transport must then set be and
// start reading, and call finish exactly once when reading ends. It starts
// no goroutine: a writer runs only while the socket is full.
func newConn(s sink, h Handler, opts Options, local, remote net.Addr) *Conn {
	opts = opts.withDefaults()
	c := &Conn{
		opts: opts, h: h, local: local, remote: remote,
		errSet: make(chan struct{}),
		done:   make(chan struct{}),
	}
	c.in = inbound{chunkSize: opts.ReadChunkSize, maxFrame: opts.MaxFrameSize, maxRead: opts.MaxReadSize, acct: c}
	c.in.full = c.deliver
	c.maxHeld.Store(int64(max(opts.MaxHeld, 0)))
	c.out.init(s, opts.MaxOutbound, &c.wg, c.fail)
	return c
}

// WriteFrame sends one frame with body as its body. It returns once the
// frame is copied into the outbound buffer; if no flush was under way it
// also writes what the socket takes at once, without blocking (the rest
// goes to a writer goroutine). body may be reused as soon as it returns. A nil error
// does not mean the peer got it: a link failure is reported once, through
// the terminal error. A body over the maximum is refused with a
// *FrameError wrapping ErrFrameTooLarge and nothing is sent.
//
// WriteFrame blocks only while the outbound buffer is full; ctx bounds that
// wait. It may be called from any goroutine, but not from a Handler callback
// of a gnet connection, which runs on the event loop and must not block.
func (c *Conn) WriteFrame(ctx context.Context, body []byte) error {
	return c.WriteFrameCommitted(ctx, body, nil)
}

// Committer learns that its frame is in the outbound buffer.
type Committer interface {
	// Committed is called once the frame is queued, under the outbound
	// buffer's lock: before any byte of the frame can reach the peer. It
	// must be quick and must not call back into the Conn.
	Committed()
}

// Admitter is a Committer that can still refuse its frame: Admit is
// called under the outbound buffer's lock just before the frame would be
// queued, and false drops it (the write returns ErrNotAdmitted and
// Committed is not called). A protocol uses it to order a frame against
// another one it queues under the same lock (a response against the
// close of its connection, an item against the close of its channel)
// without a lock of its own on the write path. A write waiting for room
// asks too, each time it wakes, and a frame queued with QueueControl wakes
// it: so a control frame whose Committed makes Admit refuse ends a wait
// for room at once with ErrNotAdmitted. Admit may therefore be called
// more than once per frame.
type Admitter interface {
	Committer
	Admit() bool
}

// ErrNotAdmitted is returned by a write whose Admitter refused the frame.
var ErrNotAdmitted = errors.New("netpoll: frame not admitted")

// WriteFrameCommitted is WriteFrame that also tells n (if not nil) when the
// frame is queued, before it can reach the peer: what a protocol needs to
// update its own state exactly then (a request leaving the in-flight count
// as its response is sent, say).
func (c *Conn) WriteFrameCommitted(ctx context.Context, body []byte, n Committer) error {
	if err := c.checkSize(body); err != nil {
		return err
	}
	_, err := c.out.write(ctx, body, n, modeCompany)
	return err
}

// WriteFrameAlone is WriteFrameCommitted for a frame its caller knows has
// no company coming (the one call in flight, say): if no flush is under
// way, it is written at once on the caller's goroutine, with one
// non-blocking write (the rest, if the socket takes only part, goes to a
// writer goroutine), instead of being handed to a writer goroutine that
// waits a moment for more frames to coalesce with. It saves that hand-off
// on a round trip; under load it is WriteFrameCommitted. It never blocks
// on the socket.
func (c *Conn) WriteFrameAlone(ctx context.Context, body []byte, n Committer) error {
	if err := c.checkSize(body); err != nil {
		return err
	}
	_, err := c.out.write(ctx, body, n, modeAlone)
	return err
}

// WriteFrameOwed is WriteFrameCommitted for a caller that knows when more
// frames will have been queued: it starts no flush. If it returns owed
// true, the caller must make sure FlushOwed is called once, soon, from any
// goroutine: until then the frame may wait in the buffer. The caller owes
// that call only when told: frames written owed meanwhile, by any
// goroutine, go out with it. So a goroutine that answers a run of
// requests (core's workers) can flush once after the run, where
// WriteFrameCommitted would start a writer goroutine for the run's first
// frame, whose start and yield each wait for a P. It blocks only while the
// buffer is full, as WriteFrameCommitted does.
func (c *Conn) WriteFrameOwed(ctx context.Context, body []byte, n Committer) (owed bool, err error) {
	if err := c.checkSize(body); err != nil {
		return false, err
	}
	return c.out.write(ctx, body, n, modeOwed)
}

// FlushOwed is the call WriteFrameOwed said is owed: it writes what is
// queued on this goroutine, with non-blocking writes (again for frames
// that came during the last, a few times at most), and hands what the
// socket does not take to a writer goroutine. It never blocks.
func (c *Conn) FlushOwed() { c.out.flushOwed() }

func (c *Conn) checkSize(body []byte) error {
	if len(body) > c.opts.MaxFrameSize {
		return &FrameError{Size: uint64(len(body)), Limit: c.opts.MaxFrameSize, err: ErrFrameTooLarge}
	}
	return nil
}

// ErrWouldBlock is returned by QueueFrame when the outbound buffer is full.
var ErrWouldBlock = errors.New("netpoll: outbound buffer full")

// QueueFrame is WriteFrame for a goroutine that must never block, such as
// a Handler callback on a gnet event loop. It never waits: a full outbound
// buffer returns ErrWouldBlock and the frame is not queued. Like
// WriteFrame it writes without blocking when no flush is under way (during
// HandleFrames, once the handler returns, so a batch's replies leave
// together). body may be reused as soon as it returns.
func (c *Conn) QueueFrame(body []byte) error { return c.QueueFrameCommitted(body, nil) }

// QueueFrameCommitted is QueueFrame with a Committer (see
// WriteFrameCommitted); n is not told if the frame is refused.
func (c *Conn) QueueFrameCommitted(body []byte, n Committer) error {
	if err := c.checkSize(body); err != nil {
		return err
	}
	return c.out.queue(body, n, false)
}

// QueueControl is QueueFrameCommitted for a small control frame that must
// keep its place in the order of what its caller sends next (a
// cancellation, a channel's close or reset, an acknowledgement): it is
// queued even when the outbound buffer is full, so it never returns
// ErrWouldBlock and never needs a goroutine to wait for room. Only for
// frames whose number the protocol bounds by state this side keeps (one
// per call or channel): a peer must not be able to make us queue them
// without end while it does not read. It fails as QueueFrameCommitted
// otherwise (closed, not admitted, too large).
func (c *Conn) QueueControl(body []byte, n Committer) error {
	if err := c.checkSize(body); err != nil {
		return err
	}
	return c.out.queue(body, n, true)
}

// MaxFrameSize is the largest body WriteFrame accepts on this connection.
func (c *Conn) MaxFrameSize() int { return c.opts.MaxFrameSize }

// LocalAddr returns the local address (a pipe's is "pipe").
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Done is closed when the connection is over: HandleClose has returned and
// every goroutine the Conn started has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the terminal error, or nil while the connection is up.
func (c *Conn) Err() error {
	select {
	case <-c.errSet:
		return c.err
	default:
		return nil
	}
}

// Stats returns the connection's counters so far.
func (c *Conn) Stats() Stats {
	return Stats{
		FramesOut: c.out.framesOut(), Writes: c.out.writes.Load(),
		FramesIn: c.framesIn.Load(), Reads: c.reads.Load(),
	}
}

// setErr records the terminal error if none is set yet.
func (c *Conn) setErr(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.errSet)
	})
}

// fail tears the connection down with err (the first error wins): no more
// frames go out and the socket closes at once.
func (c *Conn) fail(err error) {
	c.setErr(err)
	c.out.shut(c.Err())
	if c.aborted.CompareAndSwap(false, true) {
		c.be.abort()
	}
}

// deliver hands the frames cut so far (one read's, or a run of
// maxBatchFrames of it) to the handler.
func (c *Conn) deliver() {
	if n := len(c.in.batch); n > 0 {
		c.framesIn.Add(uint64(n))
		c.reads.Add(1)
		// Replies queued by the handler for this batch leave together.
		c.out.cork()
		c.h.HandleFrames(c, c.in.batch)
		c.out.uncork()
		c.in.reset()
	}
}

// finish runs once on the reading goroutine when reading has ended for
// good, with the reason it ended.
func (c *Conn) finish(readErr error) {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	switch {
	case errors.Is(readErr, io.EOF) && c.in.partial():
		readErr = ErrTruncated
	case readErr == nil || errors.Is(readErr, io.EOF):
		readErr = io.EOF // gnet wraps it in a *os.SyscallError; callers want the sentinel
	}
	c.fail(readErr)
	c.in.free()
	c.h.HandleClose(c, c.Err())
	go func() { // the reading goroutine may be a gnet loop: never wait on it
		c.wg.Wait()
		if c.onDone != nil {
			c.onDone(c)
		}
		close(c.done)
	}()
}

// Abort ends the connection at once, for a peer that is presumed gone:
// frames not yet written are dropped, the socket is closed, and Err
// reports err unless an error was already set. It does not wait; Done
// tells when the Conn's goroutines have ended. Any goroutine may call it.
func (c *Conn) Abort(err error) {
	if err == nil {
		err = ErrClosed
	}
	c.fail(err)
}

// Close shuts the connection down gracefully: no new frames are accepted,
// every frame already committed is written, then the write side is
// half-closed so the peer reads end-of-stream after the last frame. Close
// then waits for the peer to close its side, and for the Conn's goroutines.
// Each wait is bounded by Options.CloseTimeout, after which the socket is
// closed abruptly. Frames that arrive meanwhile are still delivered.
//
// Close returns the error that stopped the drain, if any; calling it again
// only waits.
func (c *Conn) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		<-c.done
		return nil
	}
	c.setErr(ErrClosed)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.CloseTimeout)
	err := c.out.drain(ctx)
	cancel()
	if err == nil && !c.aborted.Load() {
		err = c.be.closeWrite()
	}
	if err != nil {
		c.fail(err)
	}
	linger := time.NewTimer(c.opts.CloseTimeout)
	select {
	case <-c.done:
	case <-linger.C:
		c.fail(ErrClosed)
		<-c.done
	}
	linger.Stop()
	// Report only a failure of this Close's own drain, not a reason the
	// connection had already ended for.
	if err != nil && (errors.Is(err, ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, c.Err())) {
		err = nil
	}
	return err
}
