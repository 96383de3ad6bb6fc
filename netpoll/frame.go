package netpoll

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// DefaultMaxFrameSize is the largest frame body accepted or sent when
// Options.MaxFrameSize is zero.
const DefaultMaxFrameSize = 4 << 20

// MaxFrameSizeLimit is the largest Options.MaxFrameSize allowed.
const MaxFrameSizeLimit = 1 << 30

// MinMaxFrameSize is the smallest Options.MaxFrameSize: a smaller one is
// raised to it. Rove's protocol promises every peer accepts frames this
// large, so its control messages always fit.
const MinMaxFrameSize = 4096

// MaxHeaderLen is the largest length prefix: a uvarint of a 32-bit length.
const MaxHeaderLen = 5

// ErrFrameTooLarge is returned by WriteFrame for a body over the maximum
// (nothing is sent and the connection stays usable), and is the terminal
// error of a connection whose peer announced a frame over the maximum.
var ErrFrameTooLarge = errors.New("netpoll: frame too large")

// ErrTruncated is the terminal error of a connection whose byte stream
// ended in the middle of a frame.
var ErrTruncated = errors.New("netpoll: stream ended mid-frame")

// ErrClosed is returned by operations on a connection that was closed
// locally, and is its terminal error.
var ErrClosed = errors.New("netpoll: connection closed")

// FrameError describes a frame header that could not be accepted. It wraps
// ErrFrameTooLarge or ErrMalformedHeader.
type FrameError struct {
	Size  uint64 // the announced body size, if known
	Limit int    // the maximum in force
	err   error
}

func (e *FrameError) Error() string {
	if e.err == ErrFrameTooLarge {
		return fmt.Sprintf("netpoll: frame of %d bytes over the %d byte maximum", e.Size, e.Limit)
	}
	return e.err.Error()
}

// Unwrap returns ErrFrameTooLarge or ErrMalformedHeader.
func (e *FrameError) Unwrap() error { return e.err }

// ErrMalformedHeader is wrapped by the error for a length prefix that is not
// a valid uvarint of at most MaxHeaderLen bytes.
var ErrMalformedHeader = errors.New("netpoll: malformed frame header")

// AppendFrame appends body with its length prefix. It does not check the
// size; Conn.WriteFrame does that before anything is queued.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...)
}

// FrameLen is the encoded size of a frame with a body of n bytes.
func FrameLen(n int) int {
	h := 1
	for v := uint(n); v >= 0x80; v >>= 7 {
		h++
	}
	return h + n
}

// ParseFrame cuts the first frame off buf. ok is false when buf holds only
// part of a frame (read more and call again); err is non-nil when the header
// is malformed or announces more than max bytes, which is decided from the
// header alone, before the body has arrived or anything is allocated. body
// is a view into buf.
func ParseFrame(buf []byte, max int) (rest, body []byte, ok bool, err error) {
	size, n := binary.Uvarint(buf)
	switch {
	case n < 0 || (n == 0 && len(buf) >= MaxHeaderLen) || n > MaxHeaderLen:
		return buf, nil, false, &FrameError{Limit: max, err: ErrMalformedHeader}
	case n == 0:
		return buf, nil, false, nil
	case size > uint64(max):
		return buf, nil, false, &FrameError{Size: size, Limit: max, err: ErrFrameTooLarge}
	case uint64(len(buf)-n) < size:
		return buf, nil, false, nil
	}
	end := n + int(size)
	return buf[end:], buf[n:end:end], true, nil
}

// pendingFrameSize returns the total size of the frame at the front of buf if
// its header is complete, or 0.
func pendingFrameSize(buf []byte) int {
	size, n := binary.Uvarint(buf)
	if n <= 0 {
		return 0
	}
	return n + int(size)
}
