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
// gets all the frames of one read at once, or runs of 256 of a read of
// more (the frame list costs 40 bytes a frame, and a peer can pack tens
// of thousands of empty frames in one read). A frame larger than the chunk
// gets a larger one as its bytes arrive, doubling at most each time, never
// sized by the length its header announces: a peer pins what it sent.
//
// # Outbound
//
// [Conn.WriteFrame] appends the frame to the connection's outbound buffer
// and returns; callers never make the write syscall. The frame that makes
// the buffer non-empty starts a writer goroutine (exactly one flush per
// empty-to-non-empty transition), which writes everything queued by the
// time it runs with one write call, and again while more arrives, then
// ends: under load one syscall carries many frames, and an idle connection
// has no goroutine. The buffer is bounded ([Options.MaxOutbound]): a writer
// that finds it full waits for room (or its context), which is the
// backpressure. [Conn.QueueFrame] is the variant for goroutines that must
// never block (an event loop): it tries one non-blocking write itself and
// hands only what the socket did not take to a writer goroutine, and the
// replies a handler queues while one inbound batch is handled leave in one
// write. [Conn.QueueControl] queues a small control frame even into a full
// buffer, for frames that must keep their place in their sender's order
// and whose number the caller bounds. [Conn.WriteFrameOwed] starts no
// flush at all: it tells its caller when a [Conn.FlushOwed] is owed, for
// a caller that knows when the frames worth coalescing will have been
// queued (core's workers flush a batch's responses once they have run its
// requests): a writer goroutine's start and its yield each wait for a P,
// and on a server whose event loops hold the Ps in epoll_wait that wait
// was 20-160 us.
//
// Handing every flush to a writer goroutine was measured against flat
// combining (the caller that finds the buffer empty writes inline), twice:
// with 4 connections x 256 calls in flight across processes, the hand-off
// gave 208-226k calls/s against 118-162k, and later 645-712k against
// 171-295k (0.02-0.04 write calls per frame against 0.87), since callers no
// longer block in write syscalls and batches grow while the writer starts.
// Starting the writer per flush instead of keeping one parked per
// connection measured the same or better (ping-pong p50 16-24 us against
// 22-26 us) and costs nothing while idle.
//
// On gnet, writes bypass the event loop: netpoll writes straight to the
// connection's descriptor. That saves the loop wake-up (an eventfd write
// and a task allocation inside gnet) that AsyncWrite or Wake would cost per
// batch, and the loop only ever reads. It is safe because gnet calls
// OnClose before it closes the descriptor, and OnClose shuts every writer
// out first (gnetSink). A writer that finds the socket full waits on a dup
// of it registered with Go's poller, so a full socket blocks the writer,
// not the loop; the dup lives only while the writer waits. An idle
// connection costs one descriptor and no goroutine.
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
