package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// GnetOptions configure the gnet transport. The zero value means the
// defaults.
type GnetOptions struct {
	// Options apply to every connection.
	Options Options
	// EventLoops is the number of event loops of each engine (each listener,
	// and the client side). Default: one per CPU for a listener, half as
	// many (at least one) for the client side (see clientLoops).
	EventLoops int
}

// Gnet is the gnet/v2 transport: reads run on gnet event loops, a listener
// is a gnet engine, and dialed connections join one shared gnet Client.
// Writes go straight to each socket from whoever flushes (see the package
// doc): one descriptor and no goroutine per idle connection.
//
// Create it with NewGnet; Close stops the client engine. Listeners are
// closed with their own Close. Safe for concurrent use.
type Gnet struct {
	opts GnetOptions

	mu     sync.Mutex
	client *gnet.Client // started on the first Dial
	events *gnetEvents  // the client's handler
	closed bool
	dialed connSet // what Close ends, also connections paused off the loop
}

// NewGnet returns a gnet transport. It starts nothing until the first Dial
// or Listen.
func NewGnet(opts GnetOptions) *Gnet {
	g := &Gnet{opts: opts}
	g.dialed.init()
	return g
}

// gnetOptions are the options of an engine with loops event loops (0: one
// per CPU, gnet's multicore default).
func (g *Gnet) gnetOptions(loops int) []gnet.Option {
	// SO_REUSEADDR: a server restarted after a drain binds its port again
	// at once, instead of waiting out the old connections' TIME_WAIT.
	opts := []gnet.Option{gnet.WithLogger(silentLogger{}), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReuseAddr(true)}
	if loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(loops))
	} else {
		opts = append(opts, gnet.WithMulticore(true))
	}
	return opts
}

// clientLoops is the number of event loops of the client engine: the
// configured number, else half of GOMAXPROCS (procs), at least one.
//
// Why half: a gnet loop waits in a blocking epoll_wait system call, and
// Go's scheduler leaves a P with a thread in a system call until sysmon
// retakes it, 20 µs to 10 ms later. With a loop per P, every P can sit in
// epoll_wait while the callers the loops just woke wait for one, and on
// the client side those callers (and the writers they start) do most of
// the work. Half the Ps for loops leaves the other half free: on 2 CPUs,
// 4 x 256 calls of 64 B ran 5-11% faster with one client loop than with
// two, 1024 streams 8-10% (BENCHMARKS.md, loadgen and the bench
// harness). A listener keeps a loop per CPU: its loops run the inline
// handlers themselves, and one loop fewer measured no better.
func (g *Gnet) clientLoops(procs int) int {
	if g.opts.EventLoops > 0 {
		return g.opts.EventLoops
	}
	return max(1, procs/2)
}

// ErrTransportClosed is returned by Dial and Listen after Gnet.Close.
var ErrTransportClosed = errors.New("netpoll: transport closed")

// Dial connects with the standard dialer (so ctx bounds the connect), then
// hands the socket to the gnet Client's event loops.
func (g *Gnet) Dial(ctx context.Context, network, addr string, h Handler) (*Conn, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrTransportClosed
	}
	if g.client == nil {
		ev := &gnetEvents{opts: g.opts.Options}
		cli, err := gnet.NewClient(ev, g.gnetOptions(g.clientLoops(runtime.GOMAXPROCS(0)))...)
		if err == nil {
			err = cli.Start()
		}
		if err != nil {
			g.mu.Unlock()
			return nil, fmt.Errorf("netpoll: start gnet client: %w", err)
		}
		g.client, g.events = cli, ev
	}
	cli := g.client
	g.mu.Unlock()

	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	pending := &gnetDial{h: h, set: &g.dialed}
	// EnrollContext dups the socket, closes nc, and returns after OnOpen ran.
	if _, err := cli.EnrollContext(nc, pending); err != nil {
		return nil, err
	}
	if pending.err != nil {
		return nil, pending.err
	}
	return pending.c, nil
}

// Close stops the client engine, closing every dialed connection abruptly
// (close them first for a graceful end). Listeners are not affected.
func (g *Gnet) Close() error {
	g.mu.Lock()
	cli := g.client
	g.closed, g.client = true, nil
	g.mu.Unlock()
	// Stopping the engine ends the connections on its loops; one whose
	// reading is paused by its read budget is off them, so each is failed
	// here too (for those on the loops it only comes first).
	g.dialed.failAll(ErrTransportClosed)
	if cli == nil {
		return nil
	}
	return cli.Stop()
}

// Listen starts a gnet engine on addr ("tcp" or "unix").
func (g *Gnet) Listen(network, addr string, accept AcceptFunc) (Listener, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil, ErrTransportClosed
	}
	l := &gnetListener{ran: make(chan struct{}), booted: make(chan struct{})}
	l.conns.init()
	l.events = &gnetEvents{opts: g.opts.Options, accept: accept, conns: &l.conns, boot: l.boot}
	go func() {
		defer close(l.ran)
		l.runErr = gnet.Run(l.events, network+"://"+addr, g.gnetOptions(g.opts.EventLoops)...)
	}()
	select {
	case <-l.booted:
		return l, nil
	case <-l.ran:
		return nil, fmt.Errorf("netpoll: gnet listen %s %s: %w", network, addr, l.runErr)
	}
}

type gnetListener struct {
	events *gnetEvents
	conns  connSet
	eng    gnet.Engine
	addr   net.Addr
	booted chan struct{} // closed by OnBoot
	ran    chan struct{} // closed when gnet.Run returned
	runErr error
}

// boot runs in OnBoot: learn the real address (port 0 picks one).
func (l *gnetListener) boot(eng gnet.Engine) {
	l.eng = eng
	if fd, err := eng.Dup(); err == nil {
		f := os.NewFile(uintptr(fd), "listener")
		if ln, err := net.FileListener(f); err == nil {
			l.addr = ln.Addr()
			_ = ln.Close()
		}
		_ = f.Close()
	}
	close(l.booted)
}

func (l *gnetListener) Addr() net.Addr { return l.addr }

func (l *gnetListener) Close() error {
	l.conns.closeAll()
	// Stop with a done context: it only starts the shutdown; waiting for
	// gnet.Run to return is both sooner and complete.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = l.eng.Stop(ctx)
	<-l.ran
	return nil
}

// gnetDial carries a Dial's handler and its transport's set of dialled
// connections into OnOpen, and the Conn back out.
type gnetDial struct {
	h   Handler
	set *connSet
	c   *Conn
	err error
}

// gnetEvents is the gnet event handler of one engine (a listener or the
// client). Every method runs on an event loop.
type gnetEvents struct {
	gnet.BuiltinEventEngine
	opts   Options
	accept AcceptFunc        // listeners only
	conns  *connSet          // listeners only
	boot   func(gnet.Engine) // listeners only
}

func (e *gnetEvents) OnBoot(eng gnet.Engine) gnet.Action {
	if e.boot != nil {
		e.boot(eng)
	}
	return gnet.None
}

func (e *gnetEvents) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if c, ok := gc.Context().(*Conn); ok { // a paused connection reading again
		return nil, c.reattach(gc)
	}
	pending, _ := gc.Context().(*gnetDial)
	sink := newGnetSink(gc.Fd())
	c := newConn(sink, nil, e.opts, gc.LocalAddr(), gc.RemoteAddr())
	c.be = &gnetBackend{c: c, gc: gc, sink: sink}
	gc.SetContext(c)
	if pending != nil {
		c.h = pending.h
		pending.c = c
		// Tracked here, on the loop, before the connection can end: its
		// end reads onDone, which add sets.
		if !pending.set.add(c) { // Close ran meanwhile
			c.fail(ErrTransportClosed)
		}
	} else {
		c.h = e.accept(c)
		if !e.conns.add(c) {
			c.fail(ErrClosed)
		}
	}
	return nil, gnet.None
}

func (e *gnetEvents) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	buf, _ := gc.Next(-1) // a view of the loop's read buffer: copied once, by feed
	if c == nil || c.readErr != nil {
		return gnet.None
	}
	before := c.framesIn.Load() // feed delivers full batches itself
	err := c.in.feed(buf)
	c.deliver()
	c.in.release()
	if c.framesIn.Load()-before > 1 {
		yieldBeforePoll()
	}
	if err != nil {
		c.readErr = err
		return gnet.Close
	}
	if c.overBudget() {
		return c.detach(gc)
	}
	return gnet.None
}

// yieldBeforePoll lets the goroutines a batch woke run before the loop
// goes back to epoll_wait.
//
// Handling a batch readies goroutines onto the loop's P: the callers
// whose responses came, the workers given requests, the writers those
// start. gnet then waits in a blocking epoll_wait, which keeps its P
// until sysmon retakes it, 20 µs to 10 ms later: whatever is still in
// that P's run queue is stranded meanwhile (golang/go#76290). gnet yields
// once before it blocks, but a yield lets only about 61 goroutines run
// before the scheduler's fairness check resumes the loop from the global
// queue, and a goroutine readied after it (a writer its worker started)
// queues behind the loop. In one process with a client and a server
// (2 Ps), traces showed runnable goroutines waiting with no goroutine
// running 38% of the time; this yield, after any batch of more than one
// frame, took loadgen's embedded 1 x 64 from 260k to 430k calls/s
// (BENCHMARKS.md). A lone frame (ping-pong) readies at most one
// goroutine, which gnet's own yield runs.
func yieldBeforePoll() { runtime.Gosched() }

func (e *gnetEvents) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	if c.rstate.Load() == readPausing { // we detached it: not an end
		c.paused()
		return gnet.None
	}
	c.be.(*gnetBackend).sink.closeFd() // gnet closes the descriptor when we return
	switch {
	case c.readErr != nil:
		err = c.readErr
	case err == nil: // closed by us (abort) or by the engine stopping
		err = ErrClosed
	}
	c.finish(err)
	return gnet.None
}

// gnetBackend closes a gnet connection: through gnet, and by waking a
// writer parked on the sink's dup.
type gnetBackend struct {
	c    *Conn
	gc   gnet.Conn // under c.pauseMu: a resume replaces it
	sink *gnetSink
}

func (b *gnetBackend) closeWrite() error { return b.sink.shutdownWrite() }

func (b *gnetBackend) abort() {
	b.sink.abort()
	b.c.pauseMu.Lock()
	gc := b.gc
	parked := b.c.rstate.Load() == readPaused
	if parked {
		b.c.rstate.Store(readResuming) // nothing may resume it now
	}
	b.c.pauseMu.Unlock()
	if parked {
		// No gnet connection will close: end it here, off the caller's
		// goroutine (finish calls the handler, which may have called us).
		go b.c.finish(b.c.Err())
		return
	}
	_ = gc.Close() // asynchronous; a no-op if gnet already closed it
}

// silentLogger keeps gnet quiet: the library does not log.
type silentLogger struct{}

func (silentLogger) Debugf(string, ...any) {}
func (silentLogger) Infof(string, ...any)  {}
func (silentLogger) Warnf(string, ...any)  {}
func (silentLogger) Errorf(string, ...any) {}
func (silentLogger) Fatalf(string, ...any) {}
