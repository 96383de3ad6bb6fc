package netpoll

import (
	"context"
	"net"
	"sync"
)

// Transport dials and listens for framed connections. Std and *Gnet
// implement it; Pipe makes connected pairs without one.
type Transport interface {
	// Dial connects to addr and starts the connection with h as its
	// handler. Frames may reach h before Dial returns.
	Dial(ctx context.Context, network, addr string, h Handler) (*Conn, error)
	// Listen accepts connections on addr.
	Listen(network, addr string, accept AcceptFunc) (Listener, error)
}

// AcceptFunc is called once per accepted connection, before its first
// frame, and returns the connection's handler. On gnet it runs on the event
// loop: it must not block.
type AcceptFunc func(c *Conn) Handler

// Listener is a listening socket and the connections it accepted.
type Listener interface {
	// Addr returns the address it listens on (with the real port when
	// listening on port 0).
	Addr() net.Addr
	// Close stops accepting, closes every accepted connection that is still
	// open (gracefully, as Conn.Close) and waits for them.
	Close() error
}

// connSet tracks a listener's live connections so Close can close them.
type connSet struct {
	mu     sync.Mutex
	m      map[*Conn]struct{}
	closed bool
}

func (s *connSet) init() { s.m = make(map[*Conn]struct{}) }

// add tracks c until it is done; false if the set was already closed.
func (s *connSet) add(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	c.onDone = s.forget // no goroutine waits for each connection's end
	return true
}

// forget drops c once it is done, so the set does not grow.
func (s *connSet) forget(c *Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// shut refuses new connections and returns those in the set now.
func (s *connSet) shut() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	return conns
}

// failAll ends every connection in the set at once, and refuses new ones.
func (s *connSet) failAll(err error) {
	for _, c := range s.shut() {
		c.fail(err)
	}
}

// closeAll closes every connection in the set gracefully, refuses new
// ones, and waits for them to end.
func (s *connSet) closeAll() {
	conns := s.shut()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Wait()
	for _, c := range conns {
		<-c.Done()
	}
}
