package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/rove-rpc/rove/netpoll"
)

// Options configure a session (and every session of a Server). The zero
// value means the defaults.
type Options struct {
	// Router holds the methods this peer serves on the root connection.
	// nil: none (every call from the peer gets UnknownMethod).
	Router *Router
	// MaxConcurrentRequests is how many of the peer's requests this peer
	// accepts in flight per connection; advertised in the handshake, and a
	// peer that exceeds it commits a protocol violation (rule 18). Default
	// 1024.
	MaxConcurrentRequests int
	// MaxOutstandingCalls caps this peer's own calls in flight per
	// connection when the peer advertises no lower limit. Default 4096.
	MaxOutstandingCalls int
	// HandshakeTimeout bounds the handshake. Default 10 s.
	HandshakeTimeout time.Duration
	// KeepaliveInterval is how often a Ping is sent; KeepaliveTimeout how
	// long the peer may stay silent before the session is torn down (rule
	// 4). Defaults 10 s and 30 s. A negative interval disables keepalive.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// Metadata is sent in the handshake (Hello or HelloAck).
	Metadata Metadata
	// Context is the parent of every handler's context: its values are
	// visible to handlers (its cancellation is not inherited; Close
	// cancels handlers). Default context.Background().
	Context context.Context
	// Workers bounds the idle goroutines kept to run blocking handlers
	// (each ends after 10 s without work). Default 16384. Running
	// handlers are not bounded by it: a request never waits for a busy
	// worker, so a slow handler never delays another call (rule 17).
	Workers int
	// Link configures the links of Pipe. Dial and Serve use the options of
	// the transport they are given.
	Link netpoll.Options
	// AcceptSession, on an acceptor (Serve, ServeListener), vets each
	// session before its HelloAck: it sees the initiator's metadata, its
	// address and its TLS state. An error refuses the session with Reject
	// (code refused), and the initiator's Dial fails with a
	// *HandshakeError that matches ErrRejected and is not retryable. It
	// runs on a goroutine of its own and may block; ctx ends after
	// HandshakeTimeout, when the session is given up anyway. nil accepts
	// every session.
	AcceptSession AcceptSessionFunc
	// AcceptConn decides on the virtual connections the peer opens; nil
	// refuses them all (rule 8).
	AcceptConn AcceptConnFunc
	// MaxVirtualConns caps the virtual connections of a session, both
	// ways: beyond it OpenConn fails and the peer's are refused. Default
	// 1024.
	MaxVirtualConns int
	// MaxChannels caps the live channels the peer may bind on one
	// connection (including those this side reset and that wait for the
	// sender's Close); beyond it a request is a violation, so a peer cannot
	// make us hold channel state without bound. Default 65536.
	MaxChannels int
	// MaxMetadataEntries and MaxMetadataBytes bound the metadata of each
	// message the peer sends (entries, and bytes of the encoded field).
	// Both are advertised in the handshake: a message over them is a
	// violation, a Hello over them is refused, and this peer's own calls,
	// responses and connections keep within the peer's. Defaults 256
	// entries and 64 KiB.
	MaxMetadataEntries int
	MaxMetadataBytes   int
	// ByteBudget bounds the bytes of the peer's frames this session holds
	// for it (rule 34): request payloads held by running handlers, channel
	// items queued for a receiver, responses waiting for room in the
	// outbound buffer. A held frame counts the read buffer it keeps alive,
	// not only its own bytes (see netpoll.Options.MaxHeld). Past it the
	// session stops reading the link until handlers and receivers release
	// bytes: backpressure, never an error. Advertised in the handshake.
	// What is held can exceed it by one read of the link and one partial
	// frame. Default 64 MiB.
	ByteBudget int
	// ChannelByteWindow bounds the payload bytes of one channel's items
	// that a sender may have sent to this session and not yet had
	// acknowledged by a grant, whatever the channel's window in items:
	// so that one channel of large items cannot take the whole ByteBudget
	// and stall the session's other calls and channels while its receiver
	// does not read. Advertised in the handshake; a Rove sender keeps
	// within its peer's (it may go one item past it, and past half of it
	// it waits for grants), and a receiver grants as soon as the items
	// taken since its last grant carry 32 KiB (half the smallest window).
	// Default ByteBudget/16 (4 MiB of the default budget); at least
	// 64 KiB; negative: not advertised (items are then bounded by count
	// only). Both sessions of a relay (ConnOptions.Relay) must advertise
	// one, or both not (else the relay is refused with ErrRelayWindows): a
	// sender keeps within the relay's window and the far receiver's
	// grants, relayed, are what give its bytes back.
	ChannelByteWindow int
	// ServerInterceptors wrap every handler this session serves (root and
	// virtual connections), the first outermost; CallInterceptors wrap
	// every call it makes. A Server's sessions share its Options, and so
	// its interceptors. See ServerInterceptor and CallInterceptor.
	ServerInterceptors []ServerInterceptor
	CallInterceptors   []CallInterceptor
	// Logger, if set, is told of lifecycle events: sessions opening
	// (Debug) and ending (Info, Warn for a protocol violation, Debug for
	// a local Close) with their cause, and handler panics (Error). Calls
	// are not logged: use an interceptor. nil: the library says nothing.
	Logger *slog.Logger
	// Stats, if set, is told of every call served or made and of the
	// session's start and end (see StatsHandler). nil: nothing is measured.
	Stats StatsHandler
	// ProfileLabels runs every handler under pprof labels service=<name>
	// and method=<name>, so a CPU profile can be split per method (go tool
	// pprof -tagfocus). It costs an allocation or two per call.
	ProfileLabels bool
	// OnSession is called for every session a Server establishes, on the
	// link's reading goroutine (an event loop): it must not block.
	OnSession func(*Session)
}

func (o Options) withDefaults() Options {
	if o.MaxConcurrentRequests <= 0 {
		o.MaxConcurrentRequests = 1024
	}
	if o.MaxOutstandingCalls <= 0 {
		o.MaxOutstandingCalls = 4096
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = 10 * time.Second
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 3 * o.KeepaliveInterval
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.MaxChannels <= 0 {
		o.MaxChannels = 65536
	}
	if o.MaxMetadataEntries <= 0 {
		o.MaxMetadataEntries = 256
	}
	if o.MaxMetadataBytes <= 0 {
		o.MaxMetadataBytes = 64 << 10
	}
	if o.ByteBudget <= 0 {
		o.ByteBudget = 64 << 20
	}
	if o.ChannelByteWindow == 0 {
		o.ChannelByteWindow = o.ByteBudget / 16
	}
	if o.ChannelByteWindow > 0 {
		o.ChannelByteWindow = max(o.ChannelByteWindow, minByteWindow)
	}
	if o.MaxVirtualConns <= 0 {
		o.MaxVirtualConns = 1024
	}
	if o.Workers <= 0 {
		o.Workers = 16384
	}
	return o
}
