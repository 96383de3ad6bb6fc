package netpoll

import (
	"context"
	"io"
	"net"
	"sync"
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

// readLoop reads straight into chunks: no copy at all on this path.
func (c *Conn) readLoop(r io.Reader) {
	for {
		n, err := r.Read(c.in.room())
		if n > 0 {
			if perr := c.in.commit(n); perr != nil {
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

// Std is the standard-library transport: net.Dial and net.Listen, one read
// goroutine per connection. It works on every platform and needs no setup;
// its zero value is ready to use.
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
	l := &stdListener{ln: ln}
	l.conns.init()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return // closed; Accept errors on a live listener are not retried
			}
			c := newConn(newStreamSink(nc), nil, s.Options, nc.LocalAddr(), nc.RemoteAddr())
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
	return l, nil
}

type stdListener struct {
	ln    net.Listener
	conns connSet
	wg    sync.WaitGroup
}

func (l *stdListener) Addr() net.Addr { return l.ln.Addr() }

func (l *stdListener) Close() error {
	err := l.ln.Close()
	l.wg.Wait()
	l.conns.closeAll()
	return err
}
