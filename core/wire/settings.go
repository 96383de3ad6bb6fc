package wire

import "strconv"

// Settings are the limits a peer advertises for a session (Hello, HelloAck)
// or a connection (OpenConn, AcceptConn). On the wire they are a
// length-prefixed list of (id, value) uvarint pairs; ids this version does
// not know are skipped, which is how a later version adds settings without a
// version bump. A zero field means "not advertised" and is not encoded.
type Settings struct {
	// MaxConcurrentRequests is how many requests the sender accepts in flight
	// on the connection at once (spec rule 18). 0: no limit.
	MaxConcurrentRequests uint64
	// MaxFrameSize is the largest frame body the sender accepts. Session
	// level only (Hello, HelloAck). 0: the protocol default
	// (DefaultMaxFrameSize). A value under MinMaxFrameSize is refused in
	// the handshake (rule 35).
	MaxFrameSize uint64
}

// Frame size bounds, part of the protocol: every peer accepts frames of at
// least MinMaxFrameSize bytes, so control messages and error responses
// (their text cut to fit) always go through.
const (
	DefaultMaxFrameSize = 4 << 20
	MinMaxFrameSize     = 4096
)

// Setting ids, part of the wire format.
const (
	settingMaxConcurrentRequests = 1
	settingMaxFrameSize          = 2
)

func appendSettings(dst []byte, s Settings) []byte {
	var tmp [4 * MaxVarintLen]byte
	b := tmp[:0]
	if s.MaxConcurrentRequests != 0 {
		b = AppendUvarint(b, settingMaxConcurrentRequests)
		b = AppendUvarint(b, s.MaxConcurrentRequests)
	}
	if s.MaxFrameSize != 0 {
		b = AppendUvarint(b, settingMaxFrameSize)
		b = AppendUvarint(b, s.MaxFrameSize)
	}
	return appendBytes(dst, b)
}

func (c *cursor) settings() Settings {
	var s Settings
	sc := cursor{buf: c.bytes("settings"), kind: c.kind}
	for c.ok() && sc.ok() && len(sc.buf) > 0 {
		id := sc.uvarint("setting id")
		v := sc.uvarint("setting value")
		if v == 0 && (id == settingMaxConcurrentRequests || id == settingMaxFrameSize) && sc.ok() {
			// Zero means "not advertised" and is never encoded: a peer
			// that sends it means something this version cannot honour
			// (a zero frame size, say), so it is refused, not defaulted.
			sc.fail("setting " + strconv.FormatUint(id, 10) + " is zero")
			break
		}
		switch id {
		case settingMaxConcurrentRequests:
			s.MaxConcurrentRequests = v
		case settingMaxFrameSize:
			s.MaxFrameSize = v
		}
	}
	if !sc.ok() {
		c.fail("settings: " + sc.field)
	}
	return s
}
