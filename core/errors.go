package core

import (
	"errors"
	"fmt"

	"github.com/rove-rpc/rove/core/wire"
)

// Sentinel errors. Every call ends with exactly one outcome; when it is an
// error, errors.Is matches one of these (spec rule 16), and errors.As gives
// a *CallError with the details.
var (
	// ErrUser: the handler returned its own error; CallError.Payload holds
	// its encoded value.
	ErrUser = errors.New("rove: handler error")
	// ErrUnknownMethod: the peer has no handler for the method.
	ErrUnknownMethod = errors.New("rove: unknown method")
	// ErrInvalidPayload: the handler could not decode the arguments.
	ErrInvalidPayload = errors.New("rove: invalid payload")
	// ErrCancelled: the call was cancelled (context, deadline, CancelRequest,
	// or its connection closing a handler).
	ErrCancelled = errors.New("rove: cancelled")
	// ErrInternal: the handler panicked or returned without replying.
	ErrInternal = errors.New("rove: internal error in handler")
	// ErrUnavailable: the peer is draining and did not run the call.
	// Retryable.
	ErrUnavailable = errors.New("rove: peer unavailable (draining)")
	// ErrConnectionClosed: the connection or session ended before the call
	// completed. Retryable.
	ErrConnectionClosed = errors.New("rove: connection closed")
	// ErrProtocol: a protocol violation tore the session down.
	ErrProtocol = errors.New("rove: protocol error")
	// ErrSendFailed: the request could not be sent (local). Retryable.
	ErrSendFailed = errors.New("rove: send failed")
	// ErrTooManyRequests: a fail-fast call found the peer's concurrency
	// limit reached. Retryable.
	ErrTooManyRequests = errors.New("rove: too many requests in flight")
	// ErrHandshake: the session could not be established.
	ErrHandshake = errors.New("rove: handshake failed")
	// ErrSessionClosed is the terminal error of a session closed locally.
	ErrSessionClosed = errors.New("rove: session closed")
	// ErrKeepalive is the terminal error of a session whose peer stopped
	// answering within the keepalive timeout.
	ErrKeepalive = errors.New("rove: peer stopped answering keepalive pings")
)

// CallError is the error of a call that did not succeed.
type CallError struct {
	// Kind is one of the sentinel errors above; errors.Is matches it.
	Kind error
	// Message is human-readable detail (the peer's reason text, or the
	// local cause). Never holds SENSITIVE metadata.
	Message string
	// Payload is the handler's encoded error value (Kind == ErrUser). It is
	// a copy, owned by the caller.
	Payload []byte
	// Metadata is the response metadata, if any came back.
	Metadata Metadata
	// Cause is the underlying error for local failures (a session's
	// terminal error, a write error), or nil.
	Cause error
}

func (e *CallError) Error() string {
	s := e.Kind.Error()
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Is matches the Kind sentinel.
func (e *CallError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the Cause.
func (e *CallError) Unwrap() error { return e.Cause }

// Retryable reports whether the call may be retried as is: the callee did
// not run it, or the link failed (rule 16 marks ConnectionClosed and
// SendFailed).
func (e *CallError) Retryable() bool {
	switch e.Kind {
	case ErrConnectionClosed, ErrSendFailed, ErrUnavailable, ErrTooManyRequests:
		return true
	}
	return false
}

// IsRetryable reports whether err is a *CallError marked retryable.
func IsRetryable(err error) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.Retryable()
}

// statusError maps a non-OK response status to its sentinel.
func statusError(s wire.Status) error {
	switch s {
	case wire.StatusUserError:
		return ErrUser
	case wire.StatusUnknownMethod:
		return ErrUnknownMethod
	case wire.StatusInvalidPayload:
		return ErrInvalidPayload
	case wire.StatusCancelled:
		return ErrCancelled
	case wire.StatusUnavailable:
		return ErrUnavailable
	}
	return ErrInternal
}

// UserError is what a handler returns to send its own error value to the
// caller (status UserError). Any other error a handler returns is sent as
// an internal error with its text.
type UserError struct {
	// Payload is the encoded error value, sent as the response payload.
	Payload []byte
}

func (e *UserError) Error() string { return fmt.Sprintf("rove: user error (%d bytes)", len(e.Payload)) }

// InvalidPayloadError is what a handler returns when the arguments do not
// decode; the caller sees ErrInvalidPayload.
type InvalidPayloadError struct{ Err error }

func (e *InvalidPayloadError) Error() string { return "rove: invalid payload: " + e.Err.Error() }

// Unwrap returns the decoding error.
func (e *InvalidPayloadError) Unwrap() error { return e.Err }

// ProtocolError is a session's terminal error after a protocol violation,
// by the peer (Remote false: we detected it and told the peer) or reported
// by the peer (Remote true: it sent us ProtocolError).
type ProtocolError struct {
	Code   wire.Code
	Reason string
	Remote bool
}

func (e *ProtocolError) Error() string {
	who := "peer violated the protocol"
	if e.Remote {
		who = "peer reported a protocol error"
	}
	return fmt.Sprintf("rove: %s (%s): %s", who, e.Code, e.Reason)
}

// Is matches ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// HandshakeError says why a session could not be established.
type HandshakeError struct {
	// Code is the peer's Reject code, or the reason we refused.
	Code   wire.Code
	Reason string
	// Rejected is true when the peer refused us with Reject.
	Rejected bool
}

func (e *HandshakeError) Error() string {
	if e.Rejected {
		return fmt.Sprintf("rove: handshake rejected by peer (%s): %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("rove: handshake failed (%s): %s", e.Code, e.Reason)
}

// Is matches ErrHandshake.
func (e *HandshakeError) Is(target error) bool { return target == ErrHandshake }
