package wire

import "strconv"

// Code is the reason code carried by Reject, RejectConn, GoAway and
// ProtocolError. The reason text in the payload is for people; the code is
// for programs. Codes this version does not know are kept as numbers.
type Code uint64

// Reason codes, part of the wire format.
const (
	CodeNone Code = 0 // no particular reason (normal GoAway, plain rejection)

	// Handshake and connection refusals.
	CodeVersion  Code = 1 // no protocol version in common
	CodeParity   Code = 2 // the parity in Hello/OpenConn is unusable
	CodeRefused  Code = 3 // policy: no acceptor, over the local limit, or refused by the application
	CodeSettings Code = 4 // the peer's settings are unusable (a limit under its floor)

	// Protocol violations (ProtocolError).
	CodeMalformed        Code = 16 // a frame or message that does not decode
	CodeFrameTooLarge    Code = 17 // a frame over the advertised maximum
	CodeUnexpected       Code = 18 // a message that is not allowed in this state (e.g. before the handshake)
	CodeWrongParity      Code = 19 // an id allocated with the sender's opposite parity
	CodeIDInUse          Code = 20 // a request, channel or connection id already in use
	CodeUnknownConn      Code = 21 // a message for a connection that is not open
	CodeUnknownChannel   Code = 22 // a channel message for an id that is not bound
	CodeCreditExceeded   Code = 23 // more channel items than credit granted
	CodeTooManyRequests  Code = 24 // more requests in flight than advertised
	CodeRootClose        Code = 25 // CloseConn for connection 0
	CodeKeepalive        Code = 26 // the peer stopped answering pings (local teardown reason)
	CodeTooManyChannels  Code = 27 // a request binding more channels than the receiver holds
	CodeMetadataTooLarge Code = 28 // metadata over the receiver's advertised limits
)

var codeNames = map[Code]string{
	CodeNone: "none", CodeVersion: "version", CodeParity: "parity", CodeRefused: "refused", CodeSettings: "settings",
	CodeMalformed: "malformed", CodeFrameTooLarge: "frame too large", CodeUnexpected: "unexpected message",
	CodeWrongParity: "wrong parity", CodeIDInUse: "id in use", CodeUnknownConn: "unknown connection",
	CodeUnknownChannel: "unknown channel", CodeCreditExceeded: "credit exceeded",
	CodeTooManyRequests: "too many requests", CodeRootClose: "close of root connection",
	CodeKeepalive: "keepalive timeout", CodeTooManyChannels: "too many channels",
	CodeMetadataTooLarge: "metadata too large",
}

// String returns the code's name, or its number if this version does not
// define it.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return "code " + strconv.FormatUint(uint64(c), 10)
}
