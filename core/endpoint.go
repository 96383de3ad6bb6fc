package core

import (
	"context"
	"net"
	"sync"

	"github.com/rove-rpc/rove/netpoll"
)

// Dial opens a session to addr over tr as the initiator and completes the
// handshake. tr is typically a *netpoll.Gnet (event loops) or netpoll.Std;
// network is "tcp" or "unix". Close the session when done.
func Dial(ctx context.Context, tr netpoll.Transport, network, addr string, opts Options) (*Session, error) {
	pool, err := newWorkers(opts.withDefaults().Workers)
	if err != nil {
		return nil, err
	}
	s := newSession(true, opts, pool)
	s.ownPool = true
	h := s.ownerHandle() // held from the start: the peer's first calls may bind channels
	link, err := tr.Dial(ctx, network, addr, s.events())
	if err != nil {
		s.fail(&HandshakeError{Reason: "dial: " + err.Error()})
		<-s.done
		return nil, err
	}
	s.attach(link)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// DialConn opens a session as the initiator over nc, a connection the
// caller made (a *tls.Conn, a connection from a custom dialer or proxy,
// one end of net.Pipe), and completes the handshake. The session owns nc
// from then on: closing the session closes it. opts.Link configures the
// link; it is read by a goroutine of its own (the standard library
// transport's model).
func DialConn(ctx context.Context, nc net.Conn, opts Options) (*Session, error) {
	pool, err := newWorkers(opts.withDefaults().Workers)
	if err != nil {
		return nil, err
	}
	s := newSession(true, opts, pool)
	s.ownPool = true
	h := s.ownerHandle()
	s.attach(netpoll.NewConn(nc, s.events(), opts.Link))
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// start runs the initiator's side of the handshake.
func (s *session) start(ctx context.Context) error {
	if err := s.hello(ctx); err != nil {
		s.fail(&HandshakeError{Reason: "sending Hello: " + err.Error()})
	}
	if err := s.waitHandshake(ctx); err != nil {
		s.Close()
		return err
	}
	return nil
}

// Server accepts sessions on one listener. Every session it accepts shares
// its Options (and so its Router) and its handler pool.
type Server struct {
	ln       netpoll.Listener
	opts     Options
	workers  *workers
	mu       sync.Mutex
	sessions map[*session]struct{}
	ended    netpoll.Stats // link counters of sessions that have ended
	closed   bool          // no new sessions
	stopOnce sync.Once
	stopped  chan struct{} // closed when Close has finished
	stopErr  error
}

// Serve listens on addr over tr and accepts sessions until Close. Each
// accepted session is handed to opts.OnSession once its handshake is done.
func Serve(tr netpoll.Transport, network, addr string, opts Options) (*Server, error) {
	pool, err := newWorkers(opts.withDefaults().Workers)
	if err != nil {
		return nil, err
	}
	srv := &Server{opts: opts, workers: pool, sessions: make(map[*session]struct{}), stopped: make(chan struct{})}
	srv.ln, err = tr.Listen(network, addr, srv.accept)
	if err != nil {
		pool.release()
		return nil, err
	}
	return srv, nil
}

// ServeListener accepts sessions from ln, any net.Listener (one from
// tls.NewListener, a unix socket, a listener handed over by a supervisor,
// an in-memory one in tests), until Close, which also closes ln. Each
// connection is read by a goroutine of its own with opts.Link's settings.
// Accepted sessions go through opts.AcceptSession, then opts.OnSession,
// as with Serve.
func ServeListener(ln net.Listener, opts Options) (*Server, error) {
	pool, err := newWorkers(opts.withDefaults().Workers)
	if err != nil {
		return nil, err
	}
	srv := &Server{opts: opts, workers: pool, sessions: make(map[*session]struct{}), stopped: make(chan struct{})}
	srv.ln = netpoll.Accept(ln, opts.Link, srv.accept)
	return srv, nil
}

// accept runs on the event loop for each new link.
func (srv *Server) accept(link *netpoll.Conn) netpoll.Handler {
	s := newSession(false, srv.opts, srv.workers)
	s.attach(link)
	s.onEnd = srv.forget
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		s.fail(ErrSessionClosed)
		return s.events()
	}
	srv.sessions[s] = struct{}{}
	srv.mu.Unlock()
	return s.events()
}

// forget drops an ended session, keeping its counters. It is the
// session's onEnd, so no goroutine waits for each session's end.
func (srv *Server) forget(s *session) {
	srv.mu.Lock()
	delete(srv.sessions, s)
	srv.ended = srv.ended.Add(s.LinkStats())
	srv.mu.Unlock()
}

// LinkStats sums the link counters of every session the server has
// accepted, open or ended.
func (srv *Server) LinkStats() netpoll.Stats {
	srv.mu.Lock()
	sum := srv.ended
	srv.mu.Unlock()
	for _, s := range srv.snapshot() {
		sum = sum.Add(s.LinkStats())
	}
	return sum
}

// Addr returns the listening address.
func (srv *Server) Addr() net.Addr { return srv.ln.Addr() }

// Drain drains every session (see Session.Drain) and closes the server:
// no new session is accepted from the start. When ctx ends first, the
// handlers that remain are cancelled and Drain returns ctx's error at once;
// the close goes on in the background (Close waits for it).
func (srv *Server) Drain(ctx context.Context) error {
	srv.mu.Lock()
	srv.closed = true
	srv.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range srv.snapshot() {
		wg.Go(func() { _ = s.Drain(ctx) })
	}
	wg.Wait()
	go srv.Close()
	select {
	case <-srv.stopped:
		return srv.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting, closes every session and waits for them, and for
// every handler they ran. Calling it again waits for the first Close.
func (srv *Server) Close() error {
	srv.stopOnce.Do(func() {
		srv.mu.Lock()
		srv.closed = true
		srv.mu.Unlock()
		var wg sync.WaitGroup
		for _, s := range srv.snapshot() {
			wg.Go(func() { _ = s.Close() })
		}
		wg.Wait()
		srv.stopErr = srv.ln.Close()
		srv.workers.release()
		close(srv.stopped)
	})
	<-srv.stopped
	return srv.stopErr
}

func (srv *Server) snapshot() []*session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*session, 0, len(srv.sessions))
	for s := range srv.sessions {
		out = append(out, s)
	}
	return out
}

// Pipe returns two sessions joined in memory (netpoll.Pipe), handshake
// done: the initiator first. For tests of everything above the link.
func Pipe(ctx context.Context, initiator, acceptor Options) (*Session, *Session, error) {
	pi, err := newWorkers(initiator.withDefaults().Workers)
	if err != nil {
		return nil, nil, err
	}
	pa, err := newWorkers(acceptor.withDefaults().Workers)
	if err != nil {
		pi.release()
		return nil, nil, err
	}
	a := newSession(true, initiator, pi)
	b := newSession(false, acceptor, pa)
	a.ownPool, b.ownPool = true, true
	h := a.ownerHandle()
	la, lb := netpoll.Pipe(a.events(), b.events(), initiator.Link)
	a.attach(la)
	b.attach(lb)
	if err := a.start(ctx); err != nil {
		b.Close()
		return nil, nil, err
	}
	return h, b.pub, nil
}
