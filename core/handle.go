package core

import "runtime"

// Session is a handle on one peer-to-peer session over one link: the
// handshake, the root connection, keepalive, drain and teardown. Both
// peers call and serve on it (rule 3). Its methods are those of the
// session and are safe from any goroutine.
//
// Liveness (rule 31). The Session that Dial (or Pipe, for the initiator)
// returns is the owner handle of the root connection: the session lives
// while it, any Caller taken from it, or any channel bound on it is alive.
// Caller.Close releases only that Caller. When the last of them is
// released (closed, or dropped and collected: rule 32), the root is marked
// closed and the session ends once no virtual connection remains. Close
// ends the session at once, whatever else is alive.
//
// On the accepting side (a Server's sessions, the second session of Pipe)
// nothing the user holds keeps the session alive or ends it: it lives
// until the peer, the Server or Close ends it. Callers that handlers take
// to call back to the peer never end it.
type Session struct {
	*session
}

// Conn is a handle on one connection of a session: the root (id 0) or a
// virtual one. Each has its own handlers, callers, id allocators and
// limits; request and channel ids are allocated by the connection's
// parity (rule 10).
//
// The Conn that OpenConn returns is the owner handle of that virtual
// connection: it lives while the Conn, any Caller taken from it, or any
// channel bound on it is alive, and is closed as if by Close when the last
// of them is released (rule 31). Other Conn values (Session.Root,
// Request.Conn, Caller.Conn) hold nothing.
type Conn struct {
	*conn
}

// ownerHandle returns the owner handle of the root, for the peer that
// dialed: the session's liveness starts with it.
func (s *session) ownerHandle() *Session {
	s.root.owned = true
	h := &Session{session: s}
	hold(s.root, h)
	return h
}

// ownerHandle returns the owner handle of a virtual connection we opened.
func (c *conn) ownerHandle() *Conn {
	c.owned = true
	h := &Conn{conn: c}
	hold(c, h)
	return h
}

// hold counts one more holder of the connection (rule 31); when handle
// (an owner handle or a Caller) is collected without being released, a
// cleanup releases it (rule 32).
func hold[T any](c *conn, handle *T) runtime.Cleanup {
	c.refs.Add(1)
	return runtime.AddCleanup(handle, (*conn).release, c)
}

// release drops one holder. When the last holder of a connection we own
// is gone, the connection ends: a virtual one is closed as its owner
// would (CloseConn), the root is marked closed and the session ends once
// no virtual connection remains. It never blocks: it runs on the runtime's
// cleanup goroutine, and on the reading goroutine when a channel ends.
func (c *conn) release() {
	if c.refs.Add(-1) != 0 || !c.owned || c.down() != nil {
		return
	}
	if c.id != 0 {
		c.Close()
		return
	}
	c.closed.Store(true)
	if c.s.vconns.Size() == 0 {
		c.s.fail(ErrSessionClosed)
	}
}

// inner returns the connection behind h, or nil for a nil handle.
func (h *Conn) inner() *conn {
	if h == nil {
		return nil
	}
	return h.conn
}
