// Package netpoll moves frames over sockets and nothing else: it knows no
// RPC. It cuts inbound bytes into length-prefixed frames (the framing of
// docs/PROTOCOL.md), hands them up in batches, and coalesces outbound frames
// from many goroutines into as few write syscalls as it can.
//
// Three transports share one [Conn] type and one contract:
//   - [Gnet]: gnet/v2 event loops, server side (an engine) and client side
//     (a gnet Client), over TCP or unix sockets. Only this file of Rove
//     touches gnet.
//   - [Std]: the standard library's net package, one read goroutine per conn.
//   - [Pipe]: an in-memory, bounded, full-duplex byte pipe for tests.
//
// # Inbound
//
// Bytes land in pooled, reference-counted chunks (power-of-two size
// classes from 4 KiB up; the default chunk is 64 KiB). The std and pipe
// transports read straight into a chunk; gnet reads into its loop buffer
// and netpoll copies each read batch into a chunk once.
// Frames are cut in place: a [Frame] is a view into its chunk, never a copy,
// and keeps the chunk alive until [Frame.Release]. [Handler.HandleFrames]
// gets all the frames of one read at once. A frame larger than the chunk
// gets a larger one as its bytes arrive, doubling at most each time, never
// sized by the length its header announces: a peer pins what it sent.
//
// # Outbound
//
// [Conn.WriteFrame] appends the frame to the connection's outbound buffer
// and returns; callers never make the write syscall. The frame that makes
// the buffer non-empty wakes the connection's writer goroutine (exactly one
// flush is scheduled per empty-to-non-empty transition), which writes
// everything queued by the time it runs with one write call, and again while
// more arrives: under load one syscall carries many frames. The buffer is
// bounded ([Options.MaxOutbound]): a writer that finds it full waits for
// room (or its context), which is the backpressure. [Conn.QueueFrame] is the
// variant for goroutines that must never block (an event loop): it tries one
// non-blocking write itself and hands the rest to the writer goroutine, and
// the replies a handler queues while one inbound batch is handled leave in
// one write.
//
// Handing every flush to the writer goroutine was measured against flat
// combining (the caller that finds the buffer empty writes inline): with
// 4 connections x 256 calls in flight across processes, the hand-off gave
// 208-226k calls/s against 118-162k, since callers no longer block in
// write syscalls and batches grow while the writer wakes.
//
// On gnet, writes bypass the event loop: netpoll writes through a dup of the
// connection's descriptor, parked on Go's own poller when the socket is full.
// That saves the loop wake-up (an eventfd write and a task allocation inside
// gnet) that AsyncWrite or Wake would cost per batch, and a full socket then
// blocks the writer, not the loop. The loop only ever reads.
//
// # Lifecycle
//
// A Conn has one terminal error, set once; the first wins. [Conn.Close] is
// graceful: it stops taking frames, flushes what was committed, half-closes
// so the peer sees end-of-stream after the last frame, waits (up to
// [Options.CloseTimeout]) for the peer to close its side, then releases
// everything and waits for every goroutine the Conn started.
// [Handler.HandleClose] runs exactly once, after the last HandleFrames.
package netpoll
