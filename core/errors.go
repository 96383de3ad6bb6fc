package core

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Sentinel errors. Every call ends with exactly one outcome; when it is an
// error, errors.Is matches one of these (spec rule 16), and errors.As gives
// a *CallError with the details.
var (
	// ErrUser: the handler returned its own error; CallError.Payload holds
	// its encoded value.
	ErrUser = errors.New("rove: handler error")
	// ErrApplication: the handler failed the call with an *Error (a
	// canonical code, a message, details); errors.As gives the *Error,
	// CodeOf its code.
	ErrApplication = errors.New("rove: application error")
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
	// ErrSendFailed: the request or item could not be sent (local).
	// Retryable when the link failed; not when it was too large for the
	// peer or could not be encoded (see CallError.Retryable).
	ErrSendFailed = errors.New("rove: send failed")
	// ErrTooManyRequests: a fail-fast call found the peer's concurrency
	// limit reached. Retryable.
	ErrTooManyRequests = errors.New("rove: too many requests in flight")
	// ErrHandshake: the session could not be established.
	ErrHandshake = errors.New("rove: handshake failed")
	// ErrRejected: the peer refused the session in the handshake (its
	// AcceptSession hook, a version or settings it cannot use). Matched
	// by the *HandshakeError Dial returns; not retryable as it stands.
	ErrRejected = errors.New("rove: session rejected by peer")
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
	// Unsent reports that the request never left this peer (the session
	// ended or the peer sent GoAway before it was written), so it did not
	// run: it is safe to retry whatever the method does. A retryable
	// error without Unsent may come from a call that ran.
	Unsent bool
}

// unsent marks err, a call's error returned before its request was
// written, as Unsent. It copies: a session's teardown error is shared by
// every call it fails.
func unsent(err error) error {
	var ce *CallError
	if !errors.As(err, &ce) || ce.Unsent {
		return err
	}
	cp := *ce
	cp.Unsent = true
	return &cp
}

func (e *CallError) Error() string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	if !errors.Is(e.Cause, e.Kind) { // else the cause's own text names the kind
		add(e.Kind.Error())
	}
	if e.Message != "" {
		add(e.Message)
	}
	if e.Kind == ErrUser && e.Message == "" {
		add(payloadText(e.Payload))
	}
	if e.Cause != nil {
		add(e.Cause.Error())
	}
	return b.String()
}

// maxPayloadText is the longest user error payload shown in error text.
const maxPayloadText = 200

// payloadText shows a user error's payload: its text when it is short,
// printable UTF-8 (a message, or a small JSON value), else its size.
func payloadText(p []byte) string {
	if len(p) == 0 {
		return "(empty)"
	}
	if len(p) > maxPayloadText || !utf8.Valid(p) {
		return fmt.Sprintf("(%d bytes)", len(p))
	}
	for _, r := range string(p) {
		if !unicode.IsPrint(r) && r != ' ' {
			return fmt.Sprintf("(%d bytes)", len(p))
		}
	}
	return string(p)
}

// Is matches the Kind sentinel.
func (e *CallError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the Cause.
func (e *CallError) Unwrap() error { return e.Cause }

// Retryable reports whether the call may be retried as is: the callee did
// not run it, or the link failed (rule 16 marks ConnectionClosed and
// SendFailed). A request or item too large for the peer
// (netpoll.ErrFrameTooLarge), or one that could not be encoded
// (ErrEncoding), fails the same way every time: not retryable.
func (e *CallError) Retryable() bool {
	switch e.Kind {
	case ErrSendFailed:
		return !errors.Is(e.Cause, netpoll.ErrFrameTooLarge) && !errors.Is(e.Cause, ErrEncoding) &&
			!errors.Is(e.Cause, ErrMetadataTooLarge) && !errors.Is(e.Cause, ErrTooManyChannels)
	case ErrConnectionClosed, ErrUnavailable, ErrTooManyRequests:
		return true
	}
	return false
}

// ErrMetadataTooLarge is wrapped by the Cause of a call (Kind
// ErrSendFailed, not retryable) or OpenConn whose metadata is over the
// limits the peer advertised.
var ErrMetadataTooLarge = errors.New("rove: metadata over the peer's limit")

// ErrTooManyChannels is wrapped by the Cause of a call (Kind ErrSendFailed,
// not retryable) binding more channels than the peer advertised it holds,
// per call or in all on the connection.
var ErrTooManyChannels = errors.New("rove: more channels than the peer holds")

// ErrEncoding is wrapped by the Cause of a call or item whose value the
// codec could not encode (Kind ErrSendFailed, not retryable).
var ErrEncoding = errors.New("rove: value could not be encoded")

// ErrRelayWindows is OpenConn's error, and the reason an accepted
// connection is refused, when ConnOptions.Relay joins two sessions of
// which one advertises a channel byte window and the other does not
// (Options.ChannelByteWindow). A relay forwards grants as they come, so a
// sender through it would keep within one session's window while the
// grants that give its bytes back carry none: it would stop for ever.
var ErrRelayWindows = errors.New("rove: a relay's two sessions must both advertise a channel byte window, or neither")

// tooLarge is the Cause of a request or item over the peer's maximum
// frame size: errors.Is matches netpoll.ErrFrameTooLarge.
func tooLarge(what string, size, limit int) error {
	return fmt.Errorf("%s of %d bytes over the peer's %d byte maximum frame size: %w", what, size, limit, netpoll.ErrFrameTooLarge)
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
	case wire.StatusError:
		return ErrApplication
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

func (e *UserError) Error() string { return "rove: user error: " + payloadText(e.Payload) }

// InvalidPayloadError is what a handler returns when the arguments do not
// decode; the caller sees ErrInvalidPayload.
type InvalidPayloadError struct{ Err error }

func (e *InvalidPayloadError) Error() string {
	if e.Err == nil {
		return ErrInvalidPayload.Error()
	}
	return "rove: invalid payload: " + e.Err.Error()
}

// Unwrap returns the decoding error.
func (e *InvalidPayloadError) Unwrap() error { return e.Err }

// ProtocolError is a session's terminal error after a protocol violation,
// by the peer (Remote false: we detected it and told the peer, unless the
// peer broke the framing, which leaves nothing to tell it with) or
// reported by the peer (Remote true: it sent us ProtocolError).
type ProtocolError struct {
	Code   ReasonCode
	Reason string
	Remote bool
	// Err is the local cause, if any: a *netpoll.FrameError when the peer
	// broke the framing (errors.Is then matches netpoll.ErrFrameTooLarge
	// or netpoll.ErrMalformedHeader).
	Err error
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

// Unwrap returns Err.
func (e *ProtocolError) Unwrap() error { return e.Err }

// HandshakeError says why a session could not be established.
type HandshakeError struct {
	// Code is the peer's Reject code, or the reason we refused.
	Code   ReasonCode
	Reason string
	// Rejected is true when the peer refused us with Reject.
	Rejected bool
	// Err is the local cause, if any (as for ProtocolError).
	Err error
}

func (e *HandshakeError) Error() string {
	what := "rove: handshake failed"
	if e.Rejected {
		what = "rove: handshake rejected by peer"
	}
	if e.Code == ReasonNone { // "(none)" would tell the reader nothing
		return what + ": " + e.Reason
	}
	return fmt.Sprintf("%s (%s): %s", what, e.Code, e.Reason)
}

// Is matches ErrHandshake, and ErrRejected when the peer refused us.
func (e *HandshakeError) Is(target error) bool {
	return target == ErrHandshake || (target == ErrRejected && e.Rejected)
}

// Unwrap returns Err.
func (e *HandshakeError) Unwrap() error { return e.Err }
