package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// streamBackend runs a Conn over any byte stream: a net.Conn or a pipe end.
// One goroutine reads; writes are made by whoever flushes (see outbound).
type streamBackend struct {
	rwc io.ReadWriteCloser
}

func (b streamBackend) closeWrite() error {
	if cw, ok := b.rwc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return b.rwc.Close()
}

func (b streamBackend) abort() { _ = b.rwc.Close() }

// newStreamConn starts a Conn over rwc and its read goroutine.
func newStreamConn(rwc io.ReadWriteCloser, h Handler, opts Options, local, remote net.Addr) *Conn {
	c := newConn(newStreamSink(rwc), h, opts, local, remote)
	c.be = streamBackend{rwc: rwc}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.readLoop(rwc)
	}()
	return c
}

// readLoop reads and cuts frames until the stream ends. An idle
// connection holds no read chunk: a socket is read through its descriptor
// (rawReader), any other reader (a *tls.Conn, a pipe) with a small read
// first (plainReader).
func (c *Conn) readLoop(r io.Reader) {
	read := c.rawReader(r)
	if read == nil {
		read = c.plainReader(r)
	}
	for {
		got, perr, err := read()
		if got {
			if perr != nil {
				c.deliver()
				c.finish(perr)
				return
			}
			c.deliver()
			if c.overBudget() {
				c.waitBudget()
			}
		}
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// readFunc reads once and cuts what arrived into c.in's batch: got says
// bytes arrived, perr is a framing error, err the read's own (both may
// come with bytes).
type readFunc func() (got bool, perr, err error)

// smallRead is plainReader's first read: what a reader that blocks in
// Read holds while it waits.
const smallRead = 1024

// plainReader reads r with blocking Reads. With no partial frame buffered
// it gives the chunk back and reads into a small buffer of its own, since
// that Read may wait for as long as the connection stays idle; the bytes
// are copied into a chunk (at most smallRead: the one copy on this path).
// While a frame is partial, or the last Read filled what it was given
// (more is likely waiting), it reads straight into the chunk. A TLS
// reader answers the small Read from the record it has decrypted, so the
// extra Read costs a copy, not a system call.
func (c *Conn) plainReader(r io.Reader) readFunc {
	small := make([]byte, smallRead)
	busy := false
	return func() (bool, error, error) {
		if busy || c.in.partial() {
			b := c.in.room()
			n, err := r.Read(b)
			busy = n == len(b)
			if n <= 0 {
				return false, nil, err
			}
			c.in.shrink(n)
			return true, c.in.commit(n), err
		}
		c.in.release()
		n, err := r.Read(small)
		busy = n == len(small)
		if n <= 0 {
			return false, nil, err
		}
		return true, c.in.feed(small[:n]), err
	}
}

// Std is the standard-library transport: net.Dial and net.Listen, one read
// goroutine per connection. It needs no setup; its zero value is ready to
// use. An idle connection costs its read goroutine but no read chunk (one
// over a reader that is not a socket, a *tls.Conn for one, waits in a
// Read of smallRead bytes).
type Std struct {
	// Options apply to every connection it makes.
	Options Options
}

// Dial connects to addr ("tcp" or "unix", as for net.Dial) and starts the
// connection with h as its handler.
func (s Std) Dial(ctx context.Context, network, addr string, h Handler) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return newStreamConn(nc, h, s.Options, nc.LocalAddr(), nc.RemoteAddr()), nil
}

// Listen listens on addr and starts each accepted connection with the
// handler accept returns. accept runs on the accepting goroutine.
func (s Std) Listen(network, addr string, accept AcceptFunc) (Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return Accept(ln, s.Options, accept), nil
}

// NewConn runs a Conn over nc, any connected net.Conn (a *tls.Conn, a
// unix socket, one end of net.Pipe, a connection from a custom dialer),
// with h as its handler. One goroutine reads; Close or Abort closes nc.
// Frames may reach h before NewConn returns. A *tls.Conn whose handshake
// has not run yet completes it on that goroutine, before the first read.
func NewConn(nc net.Conn, h Handler, opts Options) *Conn {
	return newStreamConn(nc, h, opts, nc.LocalAddr(), nc.RemoteAddr())
}

// Accept serves ln, any net.Listener (tls.NewListener's, a test
// listener, one handed over by systemd): a goroutine accepts until the
// returned Listener is closed, which also closes ln and every connection
// it accepted. Each connection is read by a goroutine of its own, as
// NewConn's, and gets the handler accept returns; accept runs on the
// accepting goroutine and must not block for long.
func Accept(ln net.Listener, opts Options, accept AcceptFunc) Listener {
	l := &stdListener{ln: ln, closed: make(chan struct{})}
	l.conns.init()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var delay time.Duration
		for {
			nc, err := ln.Accept()
			if err != nil {
				var te interface{ Temporary() bool }
				if !errors.As(err, &te) || !te.Temporary() || errors.Is(err, net.ErrClosed) {
					return // closed
				}
				// Out of descriptors and the like: the listener is fine,
				// but retrying at once would spin. Back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
				case <-l.closed:
					return
				}
				continue
			}
			delay = 0
			c := newConn(newStreamSink(nc), nil, opts, nc.LocalAddr(), nc.RemoteAddr())
			c.be = streamBackend{rwc: nc}
			c.h = accept(c)
			if !l.conns.add(c) {
				c.fail(ErrClosed)
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.readLoop(nc)
			}()
		}
	}()
	return l
}

type stdListener struct {
	ln        net.Listener
	conns     connSet
	wg        sync.WaitGroup
	closed    chan struct{} // closed by Close: ends an accept back-off
	closeOnce sync.Once
}

func (l *stdListener) Addr() net.Addr { return l.ln.Addr() }

func (l *stdListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	err := l.ln.Close()
	l.wg.Wait()
	l.conns.closeAll()
	return err
}

// TLS returns the TLS state of a connection made over a *tls.Conn (by
// the TLS transport, NewConn or Accept), once its handshake is done; nil
// for any other connection.
func (c *Conn) TLS() *tls.ConnectionState {
	if b, ok := c.be.(streamBackend); ok {
		if tc, ok := b.rwc.(*tls.Conn); ok {
			if cs := tc.ConnectionState(); cs.HandshakeComplete {
				return &cs
			}
		}
	}
	return nil
}
