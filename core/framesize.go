package core

import (
	"fmt"
	"unicode/utf8"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Frame sizes (rule 35): nothing we send is larger than the peer's
// advertised maximum. Requests and items over it fail locally
// (tooLarge); responses and control messages are made to fit here.

// sendMax is the largest frame body we may send: the peer's maximum and
// our link's, once the handshake has told us the peer's; before that the
// protocol floor, which every peer accepts.
func (s *session) sendMax() int {
	if m := s.maxFrame.Load(); m > 0 {
		return int(m)
	}
	return wire.MinMaxFrameSize
}

// peerMaxFrame is the maximum a peer's settings advertise: the protocol
// default when they say nothing.
func peerMaxFrame(st wire.Settings) int {
	if st.MaxFrameSize == 0 {
		return wire.DefaultMaxFrameSize
	}
	return int(min(st.MaxFrameSize, netpoll.MaxFrameSizeLimit))
}

// checkPeerFrameSize refuses a maximum under the floor: with it the
// peer could not receive our control messages.
func checkPeerFrameSize(st wire.Settings) string {
	if st.MaxFrameSize != 0 && st.MaxFrameSize < wire.MinMaxFrameSize {
		return fmt.Sprintf("max frame size %d is under the protocol's floor of %d", st.MaxFrameSize, wire.MinMaxFrameSize)
	}
	return ""
}

// appendControl encodes a control message. Those with a reason text
// (Reject, RejectConn, GoAway, ProtocolError) get it cut to fit the peer's
// maximum; the others are small by construction.
func (s *session) appendControl(dst []byte, m *wire.Message) []byte {
	out := wire.AppendMessage(dst, m)
	if limit := s.sendMax(); len(out)-len(dst) > limit && hasReasonText(m.Kind) {
		out = appendCut(dst, m, limit)
	}
	return out
}

func hasReasonText(k wire.Kind) bool {
	switch k {
	case wire.KindReject, wire.KindRejectConn, wire.KindGoAway, wire.KindProtocolError:
		return true
	}
	return false
}

// appendCut encodes m with its payload, a reason text, cut (on a UTF-8
// boundary) and its metadata dropped so that the frame fits limit. The
// cut can only shorten the payload's length prefix, so cutting exactly the
// excess is enough.
func appendCut(dst []byte, m *wire.Message, limit int) []byte {
	cut := *m
	cut.Metadata = wire.Metadata{}
	out := wire.AppendMessage(dst, &cut)
	if over := len(out) - len(dst) - limit; over > 0 {
		keep := max(len(cut.Payload)-over, 0)
		for keep > 0 && keep < len(cut.Payload) && !utf8.RuneStart(cut.Payload[keep]) {
			keep--
		}
		cut.Payload = cut.Payload[:keep]
		out = wire.AppendMessage(dst, &cut)
	}
	return out
}

// appendFittingResponse encodes a response that was over limit (rule 35).
// A payload the caller decodes (a result, a user error) cannot be cut
// without corrupting it, so the caller gets an Internal error saying why;
// an error's reason text is cut to fit.
func appendFittingResponse(dst []byte, m *wire.Message, limit int) []byte {
	if m.Status == wire.StatusOK || m.Status == wire.StatusUserError || m.Status == wire.StatusError {
		// Values whose bytes a cut would corrupt: say what happened instead.
		size := len(wire.AppendMessage(dst, m)) - len(dst)
		m = &wire.Message{Kind: wire.KindResponse, Conn: m.Conn, ID: m.ID, Status: wire.StatusInternal,
			Payload: fmt.Appendf(nil, "the response (%d bytes) is over the caller's maximum frame size of %d", size, limit)}
	}
	return appendCut(dst, m, limit)
}
