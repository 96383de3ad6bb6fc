// Package core is Rove's RPC runtime: sessions with a handshake, a root
// connection, pipelined calls in both directions with exactly one outcome
// each, cancellation, deadlines, metadata and concurrency limits both ways.
//
// # Shape
//
// A [Session] runs over one framed link (package netpoll). [Dial] opens
// one as the initiator, a [Server] accepts them, and [Pipe] joins two in
// memory for tests. Roles only decide who speaks first: both peers serve
// the methods of their [Router] and call the other through a [Caller].
//
// # Lifetimes
//
// A connection this peer dialed or opened lives while anything the user
// holds for it is alive: its owner handle (the [Session] from [Dial], the
// [Conn] from [Session.OpenConn]), every [Caller] taken from it, and every
// channel bound on it. [Caller.Close] releases that Caller only; a handle
// dropped without Close is released by a cleanup. Sessions a [Server]
// accepted live until the peer, the Server or Close ends them. When a
// session ends, every handler's context ends (also those that already
// replied), pending calls fail with ErrConnectionClosed and channels see
// the end.
//
// # Goroutines and buffers
//
// Inbound frames are decoded on the link's reading goroutine (a gnet event
// loop by default), which never blocks: a response wakes its caller, a
// request is queued for the session's workers (or runs inline when its
// handler was registered as non-blocking). A worker that finishes a
// handler takes the next queued request itself, and a queued request
// never waits behind a running handler. Its response goes out with the
// others of its batch: the workers flush them once the requests queued
// before have started (not finished), with no writer goroutine.
//
// Payloads are zero-copy views into pooled read chunks. A [Request]'s
// payload is valid until its handler returns (call Request.Retain to keep
// it longer); a [Reply] is valid during the callback given to
// [Caller.Call] (Reply.Retain to keep it).
//
// # Memory
//
// A peer can make a session hold its bytes only within the session's
// byte budget ([Options].ByteBudget, advertised in the handshake):
// payloads of requests whose handlers run, channel items queued for a
// receiver, responses waiting for room. Past it the session stops reading
// the link until bytes are released (Request and Item Release, handlers
// returning); the peer is slowed down, not failed. Metadata and channel
// limits are advertised and checked the same way, and no frame larger
// than the peer's maximum is ever sent. Buffers, tables and the handler
// pool are made on first use: an idle session costs no goroutine.
//
// # Errors
//
// Every call ends with exactly one outcome. Errors match the sentinels in
// errors.go with errors.Is, and errors.As gives a *CallError; retryable
// ones (connection closed, send failed, peer draining) say so through
// [IsRetryable]. The library does not log.
package core
