package wire

import "errors"

// ErrMalformed is wrapped by every decoding error: a truncated field, a
// length beyond the bytes present, an overlong varint, trailing bytes, an
// undefined kind or status. Test for it with errors.Is.
var ErrMalformed = errors.New("rove/wire: malformed message")

// ErrBadMagic is returned (wrapped with ErrMalformed) when a Hello does not
// start with the protocol magic: the peer does not speak Rove.
var ErrBadMagic = errors.New("rove/wire: bad magic: peer does not speak Rove")

// ParseError describes where a body failed to decode. It wraps ErrMalformed
// (and ErrBadMagic where that is the cause).
type ParseError struct {
	Kind  Kind   // the kind byte of the body, 0 if the body was empty
	Field string // the field that failed
	cause error
}

func (e *ParseError) Error() string {
	msg := "rove/wire: malformed " + e.Kind.String() + ": " + e.Field
	if e.cause != nil && e.cause != ErrMalformed {
		msg += ": " + e.cause.Error()
	}
	return msg
}

// Unwrap lets errors.Is match ErrMalformed and the specific cause.
func (e *ParseError) Unwrap() []error {
	if e.cause != nil && e.cause != ErrMalformed {
		return []error{ErrMalformed, e.cause}
	}
	return []error{ErrMalformed}
}

func malformed(k Kind, field string) error { return &ParseError{Kind: k, Field: field} }
