package wire

// Magic opens every Hello. A first frame without it is not Rove.
const Magic = "ROVE"

// Protocol versions this codec speaks. A peer advertises the range it
// supports in Hello; the acceptor picks the highest common version in
// HelloAck or sends Reject with CodeVersion (docs/PROTOCOL.md).
const (
	MinVersion = 1
	MaxVersion = 1
)

// Request and Response flag bits: which optional fields are present.
const (
	flagTimeout  = 1 << 0
	flagChannels = 1 << 1
	flagMetadata = 1 << 2
	flagsKnown   = flagTimeout | flagChannels | flagMetadata
)

// Message is the decoded form of one frame body: a tagged union whose Kind
// says which fields are meaningful (see the table in docs/PROTOCOL.md).
//
// A Message from ParseMessage holds views (Payload, Metadata, Channels) into
// the body it was parsed from; it is valid for as long as that body is, and
// copying the struct does not copy them.
type Message struct {
	Kind Kind

	// Conn is the connection id of connection-scoped kinds (0 = root). For
	// OpenConn/AcceptConn/RejectConn/CloseConn it is the virtual connection
	// being opened, accepted, rejected or closed.
	Conn uint64
	// ID is the request id (Request, Response, Cancel), the channel id
	// (ChannelItem, ChannelClose, ChannelReset, GrantCredit) or the nonce
	// (Ping, Pong).
	ID uint64

	Method        uint64 // Request: 64-bit method id
	TimeoutMicros uint64 // Request: time the caller still waits, in µs; 0 = no deadline
	Status        Status // Response
	Credit        uint64 // GrantCredit: credits added (additive, never revoked)
	// Bytes is, in a GrantCredit, the payload bytes of the items the
	// grant gives back, sent only to a peer that advertised
	// ChannelByteWindow; 0 (absent) otherwise, and in grants ahead of
	// consumption (RawRx.Grant).
	Bytes uint64
	Code  Code // Reject, RejectConn, GoAway, ProtocolError: reason code

	MinVersion uint64   // Hello: lowest version the initiator speaks
	Version    uint64   // Hello: highest version spoken; HelloAck: the chosen one
	Parity     Parity   // Hello, HelloAck, OpenConn, AcceptConn: the sender's parity
	Settings   Settings // Hello, HelloAck, OpenConn, AcceptConn

	Channels ChannelList // Request, Response: channel ids bound by the call
	Metadata Metadata    // Hello, HelloAck, OpenConn, AcceptConn, RejectConn, CloseConn, Request, Response, ChannelClose, ChannelReset

	// Payload is the trailing bytes: the arguments (Request), the result or
	// error value (Response), the item (ChannelItem), or human-readable
	// reason text (Reject, RejectConn, GoAway, ProtocolError).
	Payload []byte
}

// ParseMessage decodes one complete frame body. Unlike a stream parser it has
// no "need more bytes" case: the frame is whole, so a short body is
// malformed. Errors wrap ErrMalformed (errors.Is) and are *ParseError
// (errors.As). ParseMessage never allocates on success.
func ParseMessage(body []byte) (Message, error) {
	var m Message
	if err := ParseMessageInto(&m, body); err != nil {
		return Message{}, err
	}
	return m, nil
}

// ParseMessageInto is ParseMessage into *m, which it overwrites whole
// (fields the kind does not carry are zeroed; on error *m is undefined).
// A reader that parses many frames reuses one Message: the 216-byte value
// is then neither copied out of the parser nor into the caller per frame.
func ParseMessageInto(m *Message, body []byte) error {
	*m = Message{}
	if len(body) == 0 {
		return malformed(0, "empty body")
	}
	m.Kind = Kind(body[0])
	c := cursor{buf: body[1:], kind: m.Kind}
	if m.Kind.ConnScoped() {
		m.Conn = c.uvarint("connection id")
	}
	switch m.Kind {
	case KindHello:
		if len(c.buf) < len(Magic) || string(c.buf[:len(Magic)]) != Magic {
			return &ParseError{Kind: m.Kind, Field: "magic", cause: ErrBadMagic}
		}
		c.buf = c.buf[len(Magic):]
		m.MinVersion = c.uvarint("min version")
		m.Version = c.uvarint("version")
		m.Parity = c.parity()
		m.Settings = c.settings()
		m.Metadata = c.metadata()
	case KindHelloAck:
		m.Version = c.uvarint("version")
		m.Parity = c.parity()
		m.Settings = c.settings()
		m.Metadata = c.metadata()
	case KindReject, KindGoAway, KindProtocolError:
		m.Code = Code(c.uvarint("code"))
		m.Payload = c.rest()
	case KindPing, KindPong:
		m.ID = c.u64("nonce")
	case KindOpenConn, KindAcceptConn:
		m.Parity = c.parity()
		m.Settings = c.settings()
		m.Metadata = c.metadata()
	case KindRejectConn:
		m.Code = Code(c.uvarint("code"))
		m.Metadata = c.metadata()
		m.Payload = c.rest()
	case KindCloseConn:
		m.Metadata = c.metadata()
	case KindRequest:
		m.ID = c.uvarint("request id")
		m.Method = c.u64("method id")
		flags := c.flags()
		if flags&flagTimeout != 0 {
			m.TimeoutMicros = c.uvarint("timeout")
			if m.TimeoutMicros == 0 {
				c.fail("timeout: zero with flag set")
			}
		}
		m.Channels, m.Metadata = c.optionalLists(flags)
		m.Payload = c.rest()
	case KindResponse:
		m.ID = c.uvarint("request id")
		m.Status = Status(c.byte1("status"))
		if m.Status >= statusCount {
			c.fail("status")
		}
		flags := c.flags()
		if flags&flagTimeout != 0 {
			c.fail("flags: timeout on a response")
		}
		m.Channels, m.Metadata = c.optionalLists(flags)
		m.Payload = c.rest()
	case KindCancel:
		m.ID = c.uvarint("request id")
	case KindChannelItem:
		m.ID = c.uvarint("channel id")
		m.Payload = c.rest()
	case KindChannelClose, KindChannelReset:
		m.ID = c.uvarint("channel id")
		m.Metadata = c.metadata()
	case KindGrantCredit:
		m.ID = c.uvarint("channel id")
		m.Credit = c.uvarint("credit")
		if len(c.buf) > 0 { // optional: absent means 0, never encoded as 0
			if m.Bytes = c.uvarint("bytes"); m.Bytes == 0 {
				c.fail("bytes")
			}
		}
	default:
		return malformed(m.Kind, "unknown kind")
	}
	c.end()
	if !c.ok() {
		return malformed(m.Kind, c.field)
	}
	return nil
}

func (c *cursor) parity() Parity {
	p := Parity(c.byte1("parity"))
	if c.ok() && !p.Valid() {
		c.fail("parity")
	}
	return p
}

func (c *cursor) flags() byte {
	f := c.byte1("flags")
	if f&^flagsKnown != 0 {
		c.fail("flags: unknown bits")
	}
	return f
}

func (c *cursor) metadata() Metadata {
	raw := c.bytes("metadata")
	if !c.ok() {
		return Metadata{}
	}
	md, err := ParseMetadata(raw)
	if err != nil {
		c.fail(err.(*ParseError).Field)
	}
	return md
}

func (c *cursor) optionalLists(flags byte) (ChannelList, Metadata) {
	var l ChannelList
	var md Metadata
	if flags&flagChannels != 0 {
		l.raw = c.bytes("channels")
		if c.ok() && (len(l.raw) == 0 || !validChannelList(l.raw)) {
			c.fail("channels")
		}
	}
	if flags&flagMetadata != 0 {
		md = c.metadata()
		if c.ok() && md.Empty() {
			c.fail("metadata: empty with flag set")
		}
	}
	return l, md
}

// AppendMessage appends the body of m to dst. Only the fields the kind
// uses are written; an undefined kind appends nothing and returns dst.
// AppendMessage never fails: it encodes what it is given, and keeping
// values in range (a valid Parity, a known Status) is the caller's part.
func AppendMessage(dst []byte, m *Message) []byte {
	if !m.Kind.Valid() {
		return dst
	}
	dst = append(dst, byte(m.Kind))
	if m.Kind.ConnScoped() {
		dst = AppendUvarint(dst, m.Conn)
	}
	switch m.Kind {
	case KindHello:
		dst = append(dst, Magic...)
		dst = AppendUvarint(dst, m.MinVersion)
		dst = AppendUvarint(dst, m.Version)
		dst = append(dst, byte(m.Parity))
		dst = appendSettings(dst, m.Settings)
		dst = appendBytes(dst, m.Metadata.raw)
	case KindHelloAck:
		dst = AppendUvarint(dst, m.Version)
		dst = append(dst, byte(m.Parity))
		dst = appendSettings(dst, m.Settings)
		dst = appendBytes(dst, m.Metadata.raw)
	case KindReject, KindGoAway, KindProtocolError:
		dst = AppendUvarint(dst, uint64(m.Code))
		dst = append(dst, m.Payload...)
	case KindPing, KindPong:
		dst = appendU64(dst, m.ID)
	case KindOpenConn, KindAcceptConn:
		dst = append(dst, byte(m.Parity))
		dst = appendSettings(dst, m.Settings)
		dst = appendBytes(dst, m.Metadata.raw)
	case KindRejectConn:
		dst = AppendUvarint(dst, uint64(m.Code))
		dst = appendBytes(dst, m.Metadata.raw)
		dst = append(dst, m.Payload...)
	case KindCloseConn:
		dst = appendBytes(dst, m.Metadata.raw)
	case KindRequest:
		dst = appendRequestBody(dst, m.ID, m.Method, m.TimeoutMicros, m.Channels, m.Metadata, m.Payload)
	case KindResponse:
		dst = appendResponseBody(dst, m.ID, m.Status, m.Channels, m.Metadata, m.Payload)
	case KindCancel:
		dst = AppendUvarint(dst, m.ID)
	case KindChannelItem:
		dst = AppendUvarint(dst, m.ID)
		dst = append(dst, m.Payload...)
	case KindChannelClose, KindChannelReset:
		dst = AppendUvarint(dst, m.ID)
		dst = appendBytes(dst, m.Metadata.raw)
	case KindGrantCredit:
		dst = AppendUvarint(dst, m.ID)
		dst = AppendUvarint(dst, m.Credit)
		if m.Bytes != 0 {
			dst = AppendUvarint(dst, m.Bytes)
		}
	}
	return dst
}

// AppendRequest appends a Request frame body: the bytes AppendMessage
// writes for Message{Kind: KindRequest, Conn: conn, ID: id, Method:
// method, TimeoutMicros: timeout, Channels: ch, Metadata: md, Payload:
// payload}, without building the Message. The hot paths (a call, its
// response, a channel item) use these: a Message is 200 bytes, and
// building one on a goroutine stack that has gone cold since the
// goroutine last ran (a client with a thousand calls in flight) cost 2%
// of the client's CPU.
func AppendRequest(dst []byte, conn, id, method, timeout uint64, ch ChannelList, md Metadata, payload []byte) []byte {
	dst = append(dst, byte(KindRequest))
	dst = AppendUvarint(dst, conn)
	return appendRequestBody(dst, id, method, timeout, ch, md, payload)
}

// AppendResponse appends a Response frame body, as AppendMessage would
// (see AppendRequest).
func AppendResponse(dst []byte, conn, id uint64, status Status, ch ChannelList, md Metadata, payload []byte) []byte {
	dst = append(dst, byte(KindResponse))
	dst = AppendUvarint(dst, conn)
	return appendResponseBody(dst, id, status, ch, md, payload)
}

// AppendChannelItem appends a ChannelItem frame body, as AppendMessage
// would (see AppendRequest).
func AppendChannelItem(dst []byte, conn, id uint64, payload []byte) []byte {
	dst = append(dst, byte(KindChannelItem))
	dst = AppendUvarint(dst, conn)
	dst = AppendUvarint(dst, id)
	return append(dst, payload...)
}

func appendRequestBody(dst []byte, id, method, timeout uint64, ch ChannelList, md Metadata, payload []byte) []byte {
	dst = AppendUvarint(dst, id)
	dst = appendU64(dst, method)
	return appendCallTail(dst, timeout, ch, md, payload)
}

func appendResponseBody(dst []byte, id uint64, status Status, ch ChannelList, md Metadata, payload []byte) []byte {
	dst = AppendUvarint(dst, id)
	dst = append(dst, byte(status))
	return appendCallTail(dst, 0, ch, md, payload)
}

// appendCallTail writes the flags byte, the optional fields and the payload
// shared by Request and Response.
func appendCallTail(dst []byte, timeout uint64, ch ChannelList, md Metadata, payload []byte) []byte {
	var flags byte
	if timeout != 0 {
		flags |= flagTimeout
	}
	if !ch.Empty() {
		flags |= flagChannels
	}
	if !md.Empty() {
		flags |= flagMetadata
	}
	dst = append(dst, flags)
	if timeout != 0 {
		dst = AppendUvarint(dst, timeout)
	}
	if !ch.Empty() {
		dst = appendBytes(dst, ch.raw)
	}
	if !md.Empty() {
		dst = appendBytes(dst, md.raw)
	}
	return append(dst, payload...)
}
