package core

import "github.com/rove-rpc/rove/core/internal/wire"

// ReasonCode says, for programs, why a session or connection was refused
// or torn down: the code of a Reject, RejectConn, GoAway or ProtocolError
// (docs/PROTOCOL.md, section 3.6), and of HandshakeError, ProtocolError
// and ConnRejectedError.
type ReasonCode uint64

// String returns the code's name as PROTOCOL.md spells it ("refused").
func (c ReasonCode) String() string { return wire.Code(c).String() }

// Reason codes, numbered as on the wire.
const (
	ReasonNone             ReasonCode = 0  // no particular reason
	ReasonVersion          ReasonCode = 1  // no protocol version in common
	ReasonParity           ReasonCode = 2  // an unusable parity
	ReasonRefused          ReasonCode = 3  // policy: an AcceptSession or AcceptConn said no, or a limit
	ReasonSettings         ReasonCode = 4  // unusable settings (a limit under its floor)
	ReasonMalformed        ReasonCode = 16 // a message that does not decode
	ReasonFrameTooLarge    ReasonCode = 17 // a frame over the advertised maximum
	ReasonUnexpected       ReasonCode = 18 // a message not allowed in this state
	ReasonWrongParity      ReasonCode = 19 // an id of the sender's opposite parity
	ReasonIDInUse          ReasonCode = 20 // an id already in use
	ReasonUnknownConn      ReasonCode = 21 // a message for a connection that is not open
	ReasonUnknownChannel   ReasonCode = 22 // a message for a channel that is not bound
	ReasonCreditExceeded   ReasonCode = 23 // more items than credit granted
	ReasonTooManyRequests  ReasonCode = 24 // more requests in flight than advertised
	ReasonRootClose        ReasonCode = 25 // CloseConn for the root connection
	ReasonKeepalive        ReasonCode = 26 // the peer stopped answering pings
	ReasonTooManyChannels  ReasonCode = 27 // more channels than the receiver holds
	ReasonMetadataTooLarge ReasonCode = 28 // metadata over the advertised limits
)

// Parity says which request and channel ids a peer allocates on a
// connection: odd (1, 3, 5, ...) or even (2, 4, 6, ...), so that the two
// peers never coordinate (rule 10).
type Parity uint8

// Parities, numbered as on the wire.
const (
	ParityOdd  Parity = 1
	ParityEven Parity = 2
)

// String returns "odd", "even", or "parity(n)".
func (p Parity) String() string { return wire.Parity(p).String() }
