package netpoll

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// gateWriter blocks every Write until released, and records them.
type gateWriter struct {
	mu      sync.Mutex
	writes  [][]byte
	entered chan struct{} // one send per Write call
	gate    chan struct{} // one receive lets one Write finish
	fail    error
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 100), gate: make(chan struct{})}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes = append(g.writes, append([]byte{}, p...))
	if g.fail != nil {
		return 0, g.fail
	}
	return len(p), nil
}

func (g *gateWriter) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.writes)
}

func startOutbound(t *testing.T, w *gateWriter, max int) (*outbound, *atomic.Int32) {
	var o outbound
	var fails atomic.Int32
	var wg sync.WaitGroup
	o.init(newStreamSink(w), max, &wg, func(error) { fails.Add(1) })
	t.Cleanup(wg.Wait) // every test lets its writers finish
	return &o, &fails
}

// One flush per empty-to-non-empty transition: the first frame's writer
// (here a writer goroutine, since a gateWriter cannot write without
// blocking) is in flight while frames from other goroutines queue without
// another flush being started, and then they go out together in one write.
func TestOutboundCoalesces(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 1<<20)
	if err := o.put(context.Background(), []byte("first"), nil); err != nil {
		t.Fatal(err) // returned without waiting for the stuck socket
	}
	<-w.entered // the writer goroutine is inside Write

	const others = 100
	var wg sync.WaitGroup
	for i := range others {
		wg.Go(func() {
			if err := o.put(context.Background(), []byte{byte(i)}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait() // all returned at once
	select {
	case <-w.entered:
		t.Fatal("a second flush started while one was in flight")
	default:
	}
	w.gate <- struct{}{} // finish the first write
	<-w.entered          // the writer takes everything queued meanwhile
	w.gate <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.drain(ctx); err != nil {
		t.Fatal(err)
	}
	if w.count() != 2 {
		t.Fatalf("%d writes, want 2", w.count())
	}
	if got := len(w.writes[1]); got != others*FrameLen(1) {
		t.Fatalf("second write carried %d bytes, want all %d queued frames", got, others)
	}
	if o.framesOut() != others+1 || o.writes.Load() != 2 {
		t.Fatalf("counters: %d frames, %d writes", o.framesOut(), o.writes.Load())
	}
}

// The buffer is bounded: with the socket stuck, writers block once it is
// full, a blocked writer honours its context, and memory never exceeds the
// bound (plus the one batch in flight).
func TestOutboundBackpressure(t *testing.T) {
	w := newGateWriter()
	const max = 1000
	o, _ := startOutbound(t, w, max)
	if err := o.put(context.Background(), make([]byte, 10), nil); err != nil { // the writer gets stuck in Write
		t.Fatal(err)
	}
	<-w.entered

	body := make([]byte, 98) // 99 bytes framed: 10 fit in max
	for range 10 {
		if err := o.put(context.Background(), body, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := o.put(ctx, body, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write into a full buffer: %v, want it to block until the deadline", err)
	}
	o.mu.Lock()
	if len(o.pend) > max {
		t.Fatalf("%d bytes pending over the %d bound", len(o.pend), max)
	}
	o.mu.Unlock()

	unblocked := make(chan error)
	go func() { unblocked <- o.put(context.Background(), body, nil) }()
	select {
	case err := <-unblocked:
		t.Fatalf("write returned %v while the buffer was full", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.gate <- struct{}{} // the stuck write completes; the queued batch is taken
	if err := <-unblocked; err != nil {
		t.Fatal(err)
	}
	drainAll(t, w, o, false)
}

// A write error fails the connection once and refuses later frames.
func TestOutboundWriteErrorIsTerminal(t *testing.T) {
	w := newGateWriter()
	w.fail = errors.New("broken pipe")
	failed := make(chan error, 2)
	var o outbound
	var wg sync.WaitGroup
	o.init(newStreamSink(w), 1<<20, &wg, func(err error) { failed <- err })
	defer wg.Wait()
	if err := o.put(context.Background(), []byte("x"), nil); err != nil {
		t.Fatalf("write: %v", err)
	}
	<-w.entered
	w.gate <- struct{}{}
	if err := <-failed; !errors.Is(err, w.fail) {
		t.Fatalf("fail got %v", err)
	}
	if err := o.put(context.Background(), []byte("y"), nil); !errors.Is(err, w.fail) {
		t.Fatalf("later write got %v", err)
	}
	select {
	case err := <-failed:
		t.Fatalf("fail called twice: %v", err)
	default:
	}
}

// QueueFrame never blocks: with the socket stuck and the buffer full it
// refuses with ErrWouldBlock instead of waiting.
func TestQueueNeverBlocks(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 300)
	if err := o.queue(make([]byte, 10), nil, false); err != nil { // handed to the writer goroutine
		t.Fatal(err)
	}
	<-w.entered // the writer goroutine is stuck in Write
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = o.queue(make([]byte, 98), nil, false)
	}
	if !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("got %v, want ErrWouldBlock once full", err)
	}
	drainAll(t, w, o, true)
}

// drainAll lets every write through (first the one stuck inside Write, if
// stuck) and waits until the buffer is empty.
func drainAll(t *testing.T, w *gateWriter, o *outbound, stuck bool) {
	t.Helper()
	go func() {
		if stuck {
			w.gate <- struct{}{}
		}
		for range w.entered {
			w.gate <- struct{}{}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.drain(ctx); err != nil {
		t.Fatal(err)
	}
	close(w.entered)
}

type committed struct {
	o       *outbound
	sawPend int
	calls   int
}

// Committed checks it runs under the lock with its frame queued: the
// buffer holds it and no flush has taken it.
func (c *committed) Committed() {
	c.calls++
	c.sawPend = len(c.o.pend)
}

// A Committer is told once its frame is queued, before a flush can take
// it, and not at all when the frame is refused.
func TestCommitterSeesFrameQueued(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 100)
	n := &committed{o: o}
	if err := o.put(context.Background(), []byte("abc"), n); err != nil {
		t.Fatal(err)
	}
	if n.calls != 1 || n.sawPend != FrameLen(3) {
		t.Fatalf("committed %d times, saw %d bytes pending", n.calls, n.sawPend)
	}
	<-w.entered // the writer is stuck: fill the buffer
	q := &committed{o: o}
	if err := o.queue(make([]byte, 90), q, false); err != nil {
		t.Fatal(err)
	}
	refused := &committed{o: o}
	if err := o.queue(make([]byte, 90), refused, false); !errors.Is(err, ErrWouldBlock) || refused.calls != 0 {
		t.Fatalf("refused frame: %v, committed %d times", err, refused.calls)
	}
	if q.calls != 1 {
		t.Fatal("queued frame not committed")
	}
	drainAll(t, w, o, true)
}

// A control frame (QueueControl) is queued even when the buffer is full,
// behind what was queued before it and ahead of what waits for room, so
// that it keeps its place in its sender's order; an ordinary queued frame
// is refused there.
func TestControlFramePassesAFullBuffer(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 100)
	if err := o.put(context.Background(), []byte("first"), nil); err != nil {
		t.Fatal(err)
	}
	<-w.entered // the writer is stuck: fill the buffer, so that not even "ctrl" fits
	if err := o.queue(make([]byte, 97), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := o.queue([]byte("late"), nil, false); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("a plain frame into a full buffer: %v, want ErrWouldBlock", err)
	}
	if err := o.queue([]byte("ctrl"), nil, true); err != nil {
		t.Errorf("a control frame into a full buffer: %v", err) // not Fatal: the stuck writer must still be let go
	}
	after := make(chan error, 1)
	// "after" waits for room; "first" is written, then the writer takes
	// the full buffer and room is made.
	go func() { after <- o.put(context.Background(), []byte("after"), nil) }()
	w.gate <- struct{}{}
	<-w.entered
	if err := <-after; err != nil { // room again: "after" is queued
		t.Fatal(err)
	}
	drainAll(t, w, o, true)
	var got []string
	for _, b := range w.writes {
		for len(b) > 0 {
			rest, body, ok, err := ParseFrame(b, 1<<20)
			if err != nil || !ok {
				t.Fatalf("written bytes do not parse: %v", err)
			}
			if len(body) < 10 {
				got = append(got, string(body))
			}
			b = rest
		}
	}
	if strings.Join(got, ",") != "first,ctrl,after" {
		t.Fatalf("small frames written as %v, want first, ctrl, after", got)
	}
}

// closeGate admits frames until its close frame is committed: a protocol's
// "no item after the channel's close".
type closeGate struct{ closed atomic.Bool }

func (g *closeGate) Admit() bool { return !g.closed.Load() }
func (g *closeGate) Committed()  {}

type closeFrame struct{ g *closeGate }

func (c closeFrame) Admit() bool { return c.g.Admit() }
func (c closeFrame) Committed()  { c.g.closed.Store(true) }

// A write waiting for room whose Admitter a control frame turns to refuse
// is refused at once, without waiting for room any longer: QueueControl
// wakes the writers that wait, and they ask their Admitter again. (A Send
// waiting for room when the peer resets its channel gets the reset now,
// not whenever the peer reads again, and its item never follows the
// acknowledgement.)
func TestControlFrameRefusesAWaitingWrite(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 100)
	if err := o.put(context.Background(), []byte("first"), nil); err != nil {
		t.Fatal(err)
	}
	<-w.entered // the writer is stuck: fill the buffer
	if err := o.queue(make([]byte, 97), nil, false); err != nil {
		t.Fatal(err)
	}
	g := &closeGate{}
	item := make(chan error, 1)
	go func() { item <- o.put(context.Background(), []byte("item"), g) }()
	testwait.Blocked(t, "netpoll.(*outbound).waitLocked", 1)
	if err := o.queue([]byte("close"), closeFrame{g}, true); err != nil {
		t.Errorf("the close frame: %v", err) // not Fatal: the stuck writer must still be let go
	}
	var err error
	stuck := true
	select {
	case err = <-item:
	case <-time.After(10 * time.Second):
		t.Error("the waiting item was not refused while the buffer stayed full")
		w.gate <- struct{}{} // room: let it end, to see what it got
		stuck = false
		err = <-item
	}
	if !errors.Is(err, ErrNotAdmitted) {
		t.Errorf("the waiting item: %v, want ErrNotAdmitted", err)
	}
	drainAll(t, w, o, stuck)
}

// A writer that waits for room while the reader is corked must be woken by
// uncork's flush, which empties the buffer with a non-blocking write of
// its own: a lost wake-up there left it waiting although the buffer was
// empty.
func TestUncorkFlushWakesWaitingWriter(t *testing.T) {
	ln, accepted := rawListener(t)
	wc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	go io.Copy(io.Discard, peer) // the socket always has room

	var o outbound
	var wg sync.WaitGroup
	o.init(newStreamSink(wc), 64, &wg, func(error) {})
	if o.sink.(*streamSink).raw == nil {
		t.Fatal("a TCP socket offers raw writes")
	}
	defer wg.Wait()

	o.cork()
	if err := o.queue(make([]byte, 60), nil, false); err != nil { // fills the buffer; corked, so no flush
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- o.put(context.Background(), make([]byte, 10), nil) }()
	testwait.For(t, "the writer to wait for room", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.room != nil
	})
	o.uncork() // flushes the 60 bytes inline: the buffer is empty
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting writer was not woken when uncork emptied the buffer")
	}
}

// Cork holds back only the reading goroutine's own queued replies: a
// frame that another goroutine writes while the reader is corked (its
// handler still running, or blocked) goes out at once.
func TestWriteWhileCorkedGoesOut(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 1<<20)
	o.cork() // the reader is inside HandleFrames, and stays there
	if err := o.put(context.Background(), []byte("from another goroutine"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("a frame written while the reader was corked waited for uncork")
	}
	drainAll(t, w, o, true)
	o.uncork()
}

// One frame is always accepted into an empty buffer, however large, and a
// frame that exactly fills the buffer's room is accepted without waiting:
// both by write and by queue.
func TestOutboundAcceptsAtTheBound(t *testing.T) {
	const max = 300
	for _, name := range []string{"write", "queue"} {
		t.Run(name, func(t *testing.T) {
			w := newGateWriter()
			o, _ := startOutbound(t, w, max)
			put := func(body []byte) error {
				if name == "write" {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					return o.put(ctx, body, nil)
				}
				return o.queue(body, nil, false)
			}
			if err := put(make([]byte, 10*max)); err != nil { // empty buffer: accepted
				t.Fatalf("a large frame into an empty buffer: %v", err)
			}
			defer drainAll(t, w, o, true)
			<-w.entered // the writer holds that batch; the buffer is empty again
			first := make([]byte, 100)
			if err := put(first); err != nil {
				t.Fatal(err)
			}
			n := max - FrameLen(len(first))
			for FrameLen(n) > max-FrameLen(len(first)) {
				n--
			}
			if FrameLen(len(first))+FrameLen(n) != max {
				t.Fatal("no frame fills the room exactly")
			}
			if err := put(make([]byte, n)); err != nil { // exactly fills it
				t.Fatalf("a frame that exactly fills the room: %v", err)
			}
			o.mu.Lock()
			if len(o.pend) != max {
				t.Fatalf("%d bytes pending, want exactly %d", len(o.pend), max)
			}
			o.mu.Unlock()
		})
	}
}

// refuser is an Admitter that refuses while closed is set.
type refuser struct {
	closed    bool
	committed int
}

func (r *refuser) Admit() bool { return !r.closed }
func (r *refuser) Committed()  { r.committed++ }

// An Admitter decides under the lock whether its frame still goes: a
// refused frame is not queued, not committed, and the write says so.
func TestAdmitterRefuses(t *testing.T) {
	w := newGateWriter()
	o, _ := startOutbound(t, w, 1<<20)
	defer drainAll(t, w, o, true)
	r := &refuser{}
	if err := o.put(context.Background(), []byte("in"), r); err != nil || r.committed != 1 {
		t.Fatalf("admitted: %v, committed %d", err, r.committed)
	}
	<-w.entered
	r.closed = true
	if err := o.put(context.Background(), []byte("out"), r); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("write: %v, want ErrNotAdmitted", err)
	}
	if err := o.queue([]byte("out"), r, false); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("queue: %v, want ErrNotAdmitted", err)
	}
	o.mu.Lock()
	pend := len(o.pend)
	o.mu.Unlock()
	if r.committed != 1 || pend != 0 {
		t.Fatalf("a refused frame was queued: committed %d, %d bytes pending", r.committed, pend)
	}
}

// takeSink takes at most max bytes per try (as a socket with little room
// would) and records which goroutine kind wrote what.
type takeSink struct {
	mu          sync.Mutex
	max         int
	tried, full []byte // bytes taken by try (callers), by write (the writer)
	tries       int    // try calls
	during      func() // if set, called once, during the next try (outside mu)
}

func (s *takeSink) try(p []byte) (int, error) {
	s.mu.Lock()
	during := s.during
	s.during = nil
	s.mu.Unlock()
	if during != nil {
		during()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(p), s.max)
	s.tried = append(s.tried, p[:n]...)
	s.tries++
	return n, nil
}

func (s *takeSink) write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = append(s.full, p...)
	return nil
}

func (s *takeSink) idle() {}

func (s *takeSink) all() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(append([]byte(nil), s.tried...), s.full...)
}

// newTakeOutbound is an outbound on a takeSink that takes everything.
func newTakeOutbound(t *testing.T) (*outbound, *takeSink, *sync.WaitGroup) {
	t.Helper()
	s := &takeSink{max: 1 << 20}
	o := new(outbound)
	wg := new(sync.WaitGroup)
	o.init(s, 1<<20, wg, func(error) {})
	return o, s, wg
}

// A frame written alone with no flush under way leaves on its caller's
// goroutine before the write returns (no hand-off to a writer); what the
// socket does not take goes to a writer, in order, before later frames.
func TestWriteAloneWritesOnCaller(t *testing.T) {
	o, s, wg := newTakeOutbound(t)
	if err := o.putAlone(context.Background(), []byte("ping"), nil); err != nil {
		t.Fatal(err)
	}
	if want := AppendFrame(nil, []byte("ping")); string(s.all()) != string(want) || len(s.full) != 0 {
		t.Fatalf("after the write returned the socket had %q (by the writer: %q), want %q from the caller", s.tried, s.full, want)
	}
	wg.Wait()

	// A socket that takes 3 bytes: the caller writes those, a writer the rest.
	s.max = 3
	if err := o.putAlone(context.Background(), []byte("pong"), nil); err != nil {
		t.Fatal(err)
	}
	if err := o.put(context.Background(), []byte("next"), nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	want := AppendFrame(AppendFrame(AppendFrame(nil, []byte("ping")), []byte("pong")), []byte("next"))
	if got := s.all(); string(got) != string(want) {
		// tried then full is the order the bytes left in
		t.Fatalf("wire %q, want %q", got, want)
	}
}

// put is write as WriteFrameCommitted calls it.
func (o *outbound) put(ctx context.Context, body []byte, n Committer) error {
	_, err := o.write(ctx, body, n, modeCompany)
	return err
}

// putAlone is write as WriteFrameAlone calls it.
func (o *outbound) putAlone(ctx context.Context, body []byte, n Committer) error {
	_, err := o.write(ctx, body, n, modeAlone)
	return err
}
