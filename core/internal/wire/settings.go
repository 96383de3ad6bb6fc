package wire

import "strconv"

// Settings are the limits a peer advertises for a session (Hello, HelloAck)
// or a connection (OpenConn, AcceptConn). On the wire they are a
// length-prefixed list of (id, value) uvarint pairs; ids this version does
// not know are skipped, which is how a later version adds settings without a
// version bump. A zero field means "not advertised" and is not encoded; a
// known setting sent with the value zero makes the message malformed.
type Settings struct {
	// MaxConcurrentRequests is how many requests the sender accepts in flight
	// on the connection at once (rule 18). 0: no limit.
	MaxConcurrentRequests uint64
	// MaxFrameSize is the largest frame body the sender accepts. Session
	// level only (Hello, HelloAck). 0: the protocol default
	// (DefaultMaxFrameSize). A value under MinMaxFrameSize is refused in
	// the handshake (rule 35).
	MaxFrameSize uint64
	// MaxMetadataEntries and MaxMetadataBytes bound the metadata of every
	// message the sender receives (entries, and bytes of the encoded
	// field). Session level only. 0: not advertised (no limit but the
	// frame size).
	MaxMetadataEntries uint64
	MaxMetadataBytes   uint64
	// MaxChannels is how many channels the sender holds bound on one
	// connection at once, and MaxChannelsPerCall how many one request may
	// bind. Session level only; they apply to every connection. 0: not
	// advertised.
	MaxChannels        uint64
	MaxChannelsPerCall uint64
	// ByteBudget is how many bytes of the peer's frames the sender holds
	// for its handlers and channels before it stops reading (rule 34).
	// Informational: a peer is never in violation for exceeding it, it is
	// slowed down. Session level only. 0: not advertised.
	ByteBudget uint64
	// ChannelByteWindow is how many payload bytes of one channel's items
	// the sender accepts unacknowledged: a peer that advertises it counts,
	// in each GrantCredit it sends, the payload bytes of the items the
	// grant gives back (GrantCredit's Bytes), and grants as soon as the
	// items taken since its last grant carry 32 KiB. A channel sender
	// whose receiver advertised it keeps its unacknowledged bytes within
	// it, or within 64 KiB if it is smaller (section 7 of
	// docs/PROTOCOL.md). Session level only. 0: not advertised (grants
	// carry no bytes, and items are bounded by count only).
	ChannelByteWindow uint64
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
	settingMaxMetadataEntries    = 3
	settingMaxMetadataBytes      = 4
	settingMaxChannels           = 5
	settingMaxChannelsPerCall    = 6
	settingByteBudget            = 7
	settingChannelByteWindow     = 8
	settingCount                 = 9 // one past the last id this version knows
)

// fields lists the settings by id (index 0 unused).
func (s *Settings) fields() [settingCount]*uint64 {
	return [settingCount]*uint64{
		settingMaxConcurrentRequests: &s.MaxConcurrentRequests,
		settingMaxFrameSize:          &s.MaxFrameSize,
		settingMaxMetadataEntries:    &s.MaxMetadataEntries,
		settingMaxMetadataBytes:      &s.MaxMetadataBytes,
		settingMaxChannels:           &s.MaxChannels,
		settingMaxChannelsPerCall:    &s.MaxChannelsPerCall,
		settingByteBudget:            &s.ByteBudget,
		settingChannelByteWindow:     &s.ChannelByteWindow,
	}
}

func appendSettings(dst []byte, s Settings) []byte {
	var tmp [2 * settingCount * MaxVarintLen]byte
	b := tmp[:0]
	for id, v := range s.fields() {
		if v != nil && *v != 0 {
			b = AppendUvarint(b, uint64(id))
			b = AppendUvarint(b, *v)
		}
	}
	return appendBytes(dst, b)
}

func (c *cursor) settings() Settings {
	var s Settings
	fields := s.fields()
	sc := cursor{buf: c.bytes("settings"), kind: c.kind}
	for c.ok() && sc.ok() && len(sc.buf) > 0 {
		id := sc.uvarint("setting id")
		v := sc.uvarint("setting value")
		if !sc.ok() || id == 0 || id >= settingCount {
			continue // unknown ids are skipped
		}
		if v == 0 {
			// Zero means "not advertised" and is never encoded: a peer
			// that sends it means something this version cannot honour
			// (a zero frame size, say), so it is refused, not defaulted.
			sc.fail("setting " + strconv.FormatUint(id, 10) + " is zero")
			break
		}
		*fields[id] = v
	}
	if !sc.ok() {
		c.fail("settings: " + sc.field)
	}
	return s
}
