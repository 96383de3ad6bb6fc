// Package delaynet adds a network's latency to connections on loopback,
// for tests and benchmarks on machines without netem: what is written to
// a Conn reaches its peer a fixed time later, with no bandwidth limit.
package delaynet

import (
	"net"
	"sync"
	"time"
)

// Conn is a net.Conn whose writes arrive oneWay late: Write copies and
// queues, and a goroutine of its own writes each copy once it is due.
// Close ends that goroutine.
type Conn struct {
	net.Conn
	oneWay time.Duration
	mu     sync.Mutex
	q      chan write // closed by Close
	closed bool
	done   chan struct{} // the writing goroutine has ended
}

type write struct {
	b   []byte
	due time.Time
}

// NewConn wraps c.
func NewConn(c net.Conn, oneWay time.Duration) *Conn {
	d := &Conn{Conn: c, oneWay: oneWay, q: make(chan write, 1<<12), done: make(chan struct{})}
	go d.writeLate()
	return d
}

// Write queues a copy of b, to be written oneWay from now. It blocks only
// while 4096 writes are queued.
func (d *Conn) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, net.ErrClosed
	}
	d.q <- write{append([]byte(nil), b...), time.Now().Add(d.oneWay)}
	return len(b), nil
}

func (d *Conn) writeLate() {
	defer close(d.done)
	for w := range d.q {
		time.Sleep(time.Until(w.due))
		if _, err := d.Conn.Write(w.b); err != nil {
			d.Conn.Close()
			for range d.q { // until Close
			}
			return
		}
	}
}

// CloseWrite closes the writing side once what is queued has been written
// (the inner connection must be a *net.TCPConn; otherwise it closes it).
func (d *Conn) CloseWrite() error {
	d.drain()
	if tc, ok := d.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return d.Conn.Close()
}

// Close closes the connection first, so that a late write blocked on a
// peer that stopped reading fails and frees a Write waiting for room, then
// waits for the writing goroutine.
func (d *Conn) Close() error {
	err := d.Conn.Close()
	d.drain()
	return err
}

// drain takes no more writes and waits for the writing goroutine to have
// written (or dropped, once the connection failed) what is queued.
func (d *Conn) drain() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.q)
	}
	d.mu.Unlock()
	<-d.done
}

// Listener accepts connections wrapped in Conn.
type Listener struct {
	net.Listener
	OneWay time.Duration
}

// Accept wraps the next connection.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c, l.OneWay), nil
}
