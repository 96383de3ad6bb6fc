package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/bytedance/sonic"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// Code is a canonical error code: what kind of failure an application
// error is, for programs (retry, map to HTTP, alert). The values and
// meanings are gRPC's, so that teams and tools that know those know these.
type Code uint32

// Canonical codes.
const (
	OK                 Code = 0  // not an error
	Canceled           Code = 1  // the caller cancelled
	Unknown            Code = 2  // an error with no better code
	InvalidArgument    Code = 3  // the request is wrong, whatever the state
	DeadlineExceeded   Code = 4  // the deadline passed first
	NotFound           Code = 5  // the entity asked for does not exist
	AlreadyExists      Code = 6  // the entity to create exists
	PermissionDenied   Code = 7  // the caller may not do this
	ResourceExhausted  Code = 8  // a quota or limit ran out
	FailedPrecondition Code = 9  // the system is not in the state the call needs
	Aborted            Code = 10 // a conflict (a transaction aborted); retry at a higher level
	OutOfRange         Code = 11 // past the valid range (read past the end)
	Unimplemented      Code = 12 // not implemented or not enabled here
	Internal           Code = 13 // an invariant broke
	Unavailable        Code = 14 // transient: retry with back-off
	DataLoss           Code = 15 // unrecoverable data loss or corruption
	Unauthenticated    Code = 16 // no valid credentials
	codeCount               = 17
)

var codeNames = [codeCount]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
	"PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}

// String returns the code's name, as gRPC spells it ("NotFound").
func (c Code) String() string {
	if c < codeCount {
		return codeNames[c]
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Error is an application error with a canonical code: what a handler
// returns to fail a call with a code, a message and optional details,
// and what the caller gets back (errors.As with a **Error, or CodeOf).
// It travels as status Error (docs/PROTOCOL.md).
type Error struct {
	Code    Code
	Message string
	// Details are opaque bytes for programs; WithDetails and DetailsAs
	// carry a typed value as JSON.
	Details []byte
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "rove: " + e.Code.String()
	}
	return "rove: " + e.Code.String() + ": " + e.Message
}

// Is matches another *Error with the same code and, if the target has
// one, the same message: errors.Is(err, &core.Error{Code: core.NotFound}).
// It also matches ErrApplication.
func (e *Error) Is(target error) bool {
	if target == ErrApplication {
		return true
	}
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// WithDetails returns a copy of e carrying v, encoded as JSON with sonic,
// as its details.
func (e *Error) WithDetails(v any) (*Error, error) {
	b, err := sonic.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: details: %v", ErrEncoding, err)
	}
	cp := *e
	cp.Details = b
	return &cp, nil
}

// DetailsAs decodes the details of the *Error in err's chain into a T;
// false if there is no *Error, no details, or they do not decode as T.
func DetailsAs[T any](err error) (T, bool) {
	var v T
	var e *Error
	if !errors.As(err, &e) || len(e.Details) == 0 {
		return v, false
	}
	if sonic.Unmarshal(e.Details, &v) != nil {
		return v, false
	}
	return v, true
}

// CodeOf returns the canonical code of a call's outcome: OK for nil, the
// code of an *Error in err's chain, else the code that fits how the call
// failed (a deadline: DeadlineExceeded; no such method: Unimplemented; a
// draining peer or a closed connection: Unavailable; ...). Unknown for
// anything else.
func CodeOf(err error) Code {
	var e *Error
	var ce *CallError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return Canceled
	case !errors.As(err, &ce):
		return Unknown
	}
	switch ce.Kind {
	case ErrCancelled:
		return Canceled
	case ErrUnknownMethod:
		return Unimplemented
	case ErrInvalidPayload:
		return InvalidArgument
	case ErrUnavailable, ErrConnectionClosed:
		return Unavailable
	case ErrTooManyRequests:
		return ResourceExhausted
	case ErrInternal, ErrProtocol:
		return Internal
	case ErrSendFailed:
		if ce.Retryable() {
			return Unavailable
		}
		return InvalidArgument
	}
	return Unknown
}

// appendErrorPayload encodes e for a StatusError response.
func appendErrorPayload(dst []byte, e *Error) []byte {
	return wire.AppendErrorPayload(dst, wire.ErrorPayload{Code: uint64(e.Code), Message: []byte(e.Message), Details: e.Details})
}

// errorFromPayload decodes a StatusError payload into the caller's
// *Error (a copy: the payload is a view). A payload that does not decode
// is reported as Internal with its size, not as a protocol violation.
func errorFromPayload(p []byte) *Error {
	ep, err := wire.ParseErrorPayload(p)
	if err != nil || ep.Code > uint64(^uint32(0)) {
		return &Error{Code: Internal, Message: fmt.Sprintf("undecodable error payload (%d bytes)", len(p))}
	}
	e := &Error{Code: Code(ep.Code), Message: string(ep.Message)}
	if len(ep.Details) > 0 {
		e.Details = append([]byte(nil), ep.Details...)
	}
	return e
}
