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
// # Goroutines and buffers
//
// Inbound frames are decoded on the link's reading goroutine (a gnet event
// loop by default), which never blocks: a response wakes its caller, a
// request goes to a bounded goroutine pool (or runs inline when its
// handler was registered as non-blocking).
//
// Payloads are zero-copy views into pooled read chunks. A [Request]'s
// payload is valid until its handler returns (call Request.Retain to keep
// it longer); a [Reply] is valid during the callback given to
// [Caller.Call] (Reply.Retain to keep it).
//
// # Errors
//
// Every call ends with exactly one outcome. Errors match the sentinels in
// errors.go with errors.Is, and errors.As gives a *CallError; retryable
// ones (connection closed, send failed, peer draining) say so through
// [IsRetryable]. The library does not log.
package core
