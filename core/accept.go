package core

import (
	"context"
	"crypto/tls"
	"net"
)

// AcceptSessionFunc vets a session the peer opens, before it is
// established: nil accepts it, an error refuses it. See
// Options.AcceptSession.
type AcceptSessionFunc func(ctx context.Context, req SessionRequest) error

// SessionRequest is what an AcceptSessionFunc knows of the initiator:
// everything in its Hello that matters to a policy, and where it comes
// from. It is the hook's to keep.
type SessionRequest struct {
	// Metadata is the initiator's handshake metadata (an auth token, a
	// client name and version).
	Metadata Metadata
	// LocalAddr and RemoteAddr are the link's addresses.
	LocalAddr, RemoteAddr net.Addr
	// TLS is the connection's TLS state (the client's verified
	// certificates under mutual TLS), nil on a connection without TLS.
	TLS *tls.ConnectionState
}

// Reject returns the error an AcceptSessionFunc returns to refuse a
// session with a reason the peer is told. Any other error refuses it too,
// but the peer is told only "session refused": an error's text may say
// more than a stranger should read.
func Reject(reason string) error { return &RejectError{Reason: reason} }

// RejectError is a refusal with a reason for the peer; see Reject.
type RejectError struct {
	Reason string
}

func (e *RejectError) Error() string { return "rove: session refused: " + e.Reason }
