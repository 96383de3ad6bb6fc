package wire

import "strconv"

// Kind identifies a message. It is the first byte of every frame body.
type Kind uint8

// Message kinds. The values are part of the wire format (docs/PROTOCOL.md);
// never renumber them.
const (
	KindHello         Kind = 0x01 // session: initiator's opening message
	KindHelloAck      Kind = 0x02 // session: acceptor's answer to Hello
	KindReject        Kind = 0x03 // session: acceptor refuses the Hello
	KindPing          Kind = 0x04 // session: liveness probe
	KindPong          Kind = 0x05 // session: answer to Ping, same nonce
	KindGoAway        Kind = 0x06 // session: sender takes no new calls
	KindProtocolError Kind = 0x07 // session: sender saw a violation and tears down

	KindOpenConn   Kind = 0x10 // open a virtual connection
	KindAcceptConn Kind = 0x11 // accept a virtual connection
	KindRejectConn Kind = 0x12 // refuse a virtual connection
	KindCloseConn  Kind = 0x13 // close a virtual connection

	KindRequest  Kind = 0x20 // a call
	KindResponse Kind = 0x21 // the one outcome of a call
	KindCancel   Kind = 0x22 // the caller gave up on a call

	KindChannelItem  Kind = 0x30 // one item on a channel, costs one credit
	KindChannelClose Kind = 0x31 // the sender is done
	KindChannelReset Kind = 0x32 // the receiver asks the sender to stop
	KindGrantCredit  Kind = 0x33 // the receiver grants more credit
)

var kindNames = [...]string{
	KindHello:         "Hello",
	KindHelloAck:      "HelloAck",
	KindReject:        "Reject",
	KindPing:          "Ping",
	KindPong:          "Pong",
	KindGoAway:        "GoAway",
	KindProtocolError: "ProtocolError",
	KindOpenConn:      "OpenConn",
	KindAcceptConn:    "AcceptConn",
	KindRejectConn:    "RejectConn",
	KindCloseConn:     "CloseConn",
	KindRequest:       "Request",
	KindResponse:      "Response",
	KindCancel:        "Cancel",
	KindChannelItem:   "ChannelItem",
	KindChannelClose:  "ChannelClose",
	KindChannelReset:  "ChannelReset",
	KindGrantCredit:   "GrantCredit",
}

// Valid reports whether k is a kind this version of the protocol defines.
func (k Kind) Valid() bool {
	return int(k) < len(kindNames) && kindNames[k] != ""
}

// String returns the kind's name, or "Kind(0xNN)" for an undefined kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "Kind(0x" + strconv.FormatUint(uint64(k), 16) + ")"
}

// ConnScoped reports whether messages of kind k belong to one connection and
// so carry a connection id. Session-level kinds (handshake, ping, GoAway,
// ProtocolError) do not.
func (k Kind) ConnScoped() bool { return k >= KindOpenConn }

// Status is the outcome carried by a Response.
type Status uint8

// Response statuses. The values are part of the wire format.
const (
	StatusOK             Status = 0 // Payload is the handler's result
	StatusUserError      Status = 1 // Payload is the handler's own error value
	StatusUnknownMethod  Status = 2 // no handler for the method id
	StatusInvalidPayload Status = 3 // the handler could not decode the arguments
	StatusCancelled      Status = 4 // cancelled (by the caller, a deadline, or teardown)
	StatusInternal       Status = 5 // the handler panicked or returned without replying
	StatusUnavailable    Status = 6 // the callee is draining (GoAway) and took no action; safe to retry
	StatusError          Status = 7 // Payload is an error payload: code, message, details (see AppendErrorPayload)
	statusCount                 = 8
)

var statusNames = [statusCount]string{
	"OK", "UserError", "UnknownMethod", "InvalidPayload", "Cancelled", "Internal", "Unavailable", "Error",
}

// String returns the status name.
func (s Status) String() string {
	if s < statusCount {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Parity says which request and channel ids a peer allocates on a
// connection, so that the two peers never coordinate (spec rule 10).
type Parity uint8

// Parities. Id 0 is never allocated by either.
const (
	ParityOdd  Parity = 1 // ids 1, 3, 5, ...
	ParityEven Parity = 2 // ids 2, 4, 6, ...
)

// Valid reports whether p is Odd or Even.
func (p Parity) Valid() bool { return p == ParityOdd || p == ParityEven }

// Opposite returns the other parity.
func (p Parity) Opposite() Parity { return 3 - p }

// Owns reports whether id was allocated by the peer with parity p.
// Id 0 belongs to nobody.
func (p Parity) Owns(id uint64) bool {
	if id == 0 {
		return false
	}
	return (id&1 == 1) == (p == ParityOdd)
}

// First returns the first id a peer with parity p allocates.
func (p Parity) First() uint64 { return uint64(2 - p%2) }

// String returns "odd" or "even".
func (p Parity) String() string {
	switch p {
	case ParityOdd:
		return "odd"
	case ParityEven:
		return "even"
	}
	return "Parity(" + strconv.Itoa(int(p)) + ")"
}
