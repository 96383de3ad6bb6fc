package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

// The raw echo: frames are a 4-byte big-endian length and the body.

type rawServer struct {
	gnet.BuiltinEventEngine
	coalesce bool
	eng      gnet.Engine
	booted   chan struct{}
}

func (s *rawServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	close(s.booted)
	return gnet.None
}

// OnTraffic echoes every whole frame: one Write per frame, or (coalesce)
// one Write for all the frames of this read.
func (s *rawServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Peek(-1)
	n := 0
	for len(buf)-n >= 4 {
		size := int(binary.BigEndian.Uint32(buf[n:]))
		if len(buf)-n < 4+size {
			break
		}
		if !s.coalesce {
			c.Write(buf[n : n+4+size])
		}
		n += 4 + size
	}
	if s.coalesce && n > 0 {
		c.Write(buf[:n])
	}
	c.Discard(n)
	return gnet.None
}

func serveRaw(addr string, coalesce bool) (func(), error) {
	s := &rawServer{coalesce: coalesce, booted: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- gnet.Run(s, "tcp://"+addr, gnet.WithMulticore(true)) }()
	select {
	case <-s.booted:
	case err := <-errc:
		return nil, err
	}
	return func() { s.eng.Stop(context.Background()) }, nil
}

// rawClient pipelines calls on one connection: responses come back in
// order, so each call waits on its own slot in a FIFO. Calls append to a
// buffer; a writer goroutine flushes what has accumulated, so writes are
// coalesced the way Rove's are (a fair client for a raw server).
type rawClient struct {
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	kick    chan struct{}
	pending chan chan error // FIFO of waiters, capacity = in flight
}

func dialRaw(target string, inflight int) (caller, func(), error) {
	nc, err := net.Dial("tcp", target)
	if err != nil {
		return nil, nil, err
	}
	c := &rawClient{kick: make(chan struct{}, 1), pending: make(chan chan error, inflight)}
	done := make(chan struct{})
	go func() { // writer
		for {
			select {
			case <-c.kick:
			case <-done:
				return
			}
			runtime.Gosched() // let the other callers append first
			c.mu.Lock()
			b := c.buf
			c.buf = c.spare[:0]
			c.mu.Unlock()
			if len(b) > 0 {
				if _, err := nc.Write(b); err != nil {
					return
				}
			}
			c.spare = b
		}
	}()
	go func() { // reader
		r := bufio.NewReaderSize(nc, 64<<10)
		var hdrb [4]byte
		for {
			if _, err := io.ReadFull(r, hdrb[:]); err != nil {
				for {
					select {
					case w := <-c.pending:
						w <- err
					default:
						return
					}
				}
			}
			if _, err := r.Discard(int(binary.BigEndian.Uint32(hdrb[:]))); err != nil {
				return
			}
			(<-c.pending) <- nil
		}
	}()
	waiters := sync.Pool{New: func() any { return make(chan error, 1) }}
	call := func(payload []byte) error {
		w := waiters.Get().(chan error)
		c.mu.Lock()
		c.pending <- w
		c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(payload)))
		c.buf = append(c.buf, payload...)
		c.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
		err := <-w
		waiters.Put(w)
		return err
	}
	return call, func() { close(done); nc.Close() }, nil
}
