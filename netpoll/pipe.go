package netpoll

import (
	"io"
	"net"
	"sync"
)

// pipeCapacity is how many bytes one direction of a pipe buffers before a
// writer blocks, like a socket's send buffer.
const pipeCapacity = 256 << 10

// Pipe returns two connected Conns over an in-memory, bounded, full-duplex
// byte stream: what a writes, b reads, and the other way round. It behaves
// like a socket (bytes, not frames, cross it; a full buffer blocks the
// writer; close is end-of-stream) so that everything above netpoll can be
// tested without one. ha and hb handle a's and b's inbound frames.
func Pipe(ha, hb Handler, opts Options) (a, b *Conn) {
	ab, ba := newPipeBuffer(), newPipeBuffer()
	ea := &pipeEnd{r: ba, w: ab}
	eb := &pipeEnd{r: ab, w: ba}
	a = newStreamConn(ea, ha, opts, pipeAddr{}, pipeAddr{})
	b = newStreamConn(eb, hb, opts, pipeAddr{}, pipeAddr{})
	return a, b
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeBuffer is one direction: a bounded byte queue.
type pipeBuffer struct {
	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte
	wclosed  bool // writer done: reads drain, then EOF
	rclosed  bool // reader gone: writes fail
	capacity int
}

func newPipeBuffer() *pipeBuffer {
	p := &pipeBuffer{capacity: pipeCapacity}
	p.cond.L = &p.mu
	return p
}

func (p *pipeBuffer) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.wclosed && !p.rclosed {
		p.cond.Wait()
	}
	if p.rclosed {
		return 0, net.ErrClosed
	}
	if len(p.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[:copy(p.buf, p.buf[n:])]
	p.cond.Broadcast()
	return n, nil
}

func (p *pipeBuffer) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for len(p.buf) >= p.capacity && !p.wclosed && !p.rclosed {
			p.cond.Wait()
		}
		if p.wclosed {
			return written, net.ErrClosed
		}
		if p.rclosed {
			return written, io.ErrClosedPipe
		}
		n := min(len(b), p.capacity-len(p.buf))
		p.buf = append(p.buf, b[:n]...)
		b = b[n:]
		written += n
		p.cond.Broadcast()
	}
	return written, nil
}

// tryWrite writes what fits now, never waiting: a socket's non-blocking
// write.
func (p *pipeBuffer) tryWrite(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.wclosed:
		return 0, net.ErrClosed
	case p.rclosed:
		return 0, io.ErrClosedPipe
	}
	n := min(len(b), max(p.capacity-len(p.buf), 0))
	if n > 0 {
		p.buf = append(p.buf, b[:n]...)
		p.cond.Broadcast()
	}
	return n, nil
}

func (p *pipeBuffer) closeWrite() {
	p.mu.Lock()
	p.wclosed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *pipeBuffer) closeRead() {
	p.mu.Lock()
	p.rclosed = true
	p.buf = nil
	p.cond.Broadcast()
	p.mu.Unlock()
}

// pipeEnd is one side: reads from r, writes to w.
type pipeEnd struct {
	r, w *pipeBuffer
}

func (e *pipeEnd) Read(b []byte) (int, error)  { return e.r.read(b) }
func (e *pipeEnd) Write(b []byte) (int, error) { return e.w.write(b) }

func (e *pipeEnd) tryWrite(b []byte) (int, error) { return e.w.tryWrite(b) }

// CloseWrite ends the stream the peer reads, after what is buffered.
func (e *pipeEnd) CloseWrite() error {
	e.w.closeWrite()
	return nil
}

// Close ends both directions at once, like closing a socket.
func (e *pipeEnd) Close() error {
	e.w.closeWrite()
	e.r.closeRead()
	return nil
}
