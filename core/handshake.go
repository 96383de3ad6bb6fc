package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// Handshake (rule 2). The initiator sends Hello first; the acceptor answers
// HelloAck or Reject. Nothing else may come first.

// hello sends the initiator's Hello.
func (s *session) hello(ctx context.Context) error {
	return s.send(ctx, &wire.Message{
		Kind: wire.KindHello, MinVersion: wire.MinVersion, Version: wire.MaxVersion,
		Parity: s.parity, Settings: s.localSettings(), Metadata: s.opts.Metadata.toWire(),
	})
}

func (s *session) localSettings() wire.Settings {
	return wire.Settings{
		MaxConcurrentRequests: uint64(s.opts.MaxConcurrentRequests),
		MaxFrameSize:          uint64(s.linkMaxFrame()),
		MaxMetadataEntries:    uint64(s.opts.MaxMetadataEntries),
		MaxMetadataBytes:      uint64(s.opts.MaxMetadataBytes),
		MaxChannels:           uint64(s.opts.MaxChannels),
		MaxChannelsPerCall:    MaxChannelsPerCall,
		ByteBudget:            uint64(s.opts.ByteBudget),
		ChannelByteWindow:     uint64(max(s.opts.ChannelByteWindow, 0)),
	}
}

// linkMaxFrame is the largest frame body our link accepts.
func (s *session) linkMaxFrame() int {
	if l := s.link.Load(); l != nil {
		return l.MaxFrameSize()
	}
	return netpoll.DefaultMaxFrameSize
}

// handshake handles the first message in each direction, on the reading
// goroutine. It returns false if the session was torn down.
func (s *session) handshake(link *netpoll.Conn, m *wire.Message) bool {
	if s.initiator {
		return s.handleHelloReply(m)
	}
	if s.vetting.Load() {
		// The initiator must wait for HelloAck before anything else.
		s.reject(link, wire.CodeUnexpected, m.Kind.String()+" before HelloAck")
		return false
	}
	if m.Kind != wire.KindHello {
		s.reject(link, wire.CodeNone, "expected Hello, got "+m.Kind.String())
		return false
	}
	version := min(m.Version, wire.MaxVersion)
	if m.MinVersion > m.Version || version < max(m.MinVersion, wire.MinVersion) {
		s.reject(link, wire.CodeVersion, "no common protocol version (we speak 1..1)")
		return false
	}
	if reason := checkPeerFrameSize(m.Settings); reason != "" {
		s.reject(link, wire.CodeSettings, reason)
		return false
	}
	if err := metadataFits(&m.Settings, s.opts.Metadata); err != nil {
		s.reject(link, wire.CodeSettings, "our HelloAck: "+err.Error())
		return false
	}
	hello := helloSeen{parity: m.Parity, version: version, settings: m.Settings, meta: metadataFromWire(m.Metadata)}
	if s.opts.AcceptSession != nil {
		s.vet(link, hello)
		return true
	}
	return s.acceptHello(link, hello)
}

// helloSeen is what the acceptor keeps of a valid Hello (copied out of the
// frame, so it may outlive it).
type helloSeen struct {
	parity   wire.Parity
	version  uint64
	settings wire.Settings
	meta     Metadata
}

// vet runs the AcceptSession hook on a goroutine of its own (it may
// block), then answers HelloAck or Reject from there. Meanwhile the
// reading goroutine refuses anything else the initiator sends.
func (s *session) vet(link *netpoll.Conn, hello helloSeen) {
	s.vetting.Store(true)
	req := SessionRequest{Metadata: hello.meta, LocalAddr: link.LocalAddr(), RemoteAddr: link.RemoteAddr(), TLS: link.TLS()}
	s.goTracked(func() {
		ctx, cancel := context.WithTimeout(s.opts.Context, s.opts.HandshakeTimeout)
		err := runAcceptHook(ctx, s.opts.AcceptSession, req)
		cancel()
		if s.Err() != nil {
			return // timed out, or the initiator broke the rules meanwhile
		}
		if err != nil {
			reason := "session refused"
			var re *RejectError
			if errors.As(err, &re) {
				reason = re.Reason
			}
			s.reject(link, wire.CodeRefused, reason)
			return
		}
		s.acceptHello(link, hello)
	})
}

// runAcceptHook calls hook, turning a panic into a refusal.
func runAcceptHook(ctx context.Context, hook func(context.Context, SessionRequest) error, req SessionRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("AcceptSession panicked: %v", p)
		}
	}()
	return hook(ctx, req)
}

// acceptHello completes the acceptor's handshake: HelloAck, and the
// session opens. Called on the reading goroutine, or on vet's goroutine.
func (s *session) acceptHello(link *netpoll.Conn, hello helloSeen) bool {
	// The parity is valid (the codec checks); ours is the opposite one.
	s.parity = hello.parity.Opposite()
	s.root.setParity(s.parity)
	ack := &wire.Message{
		Kind: wire.KindHelloAck, Version: hello.version, Parity: s.parity,
		Settings: s.localSettings(), Metadata: s.opts.Metadata.toWire(),
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = wire.AppendMessage((*buf)[:0], ack)
	if limit := min(peerMaxFrame(hello.settings), s.linkMaxFrame()); len(*buf) > limit {
		// Our metadata does not fit the initiator's frames (rule 35).
		s.reject(link, wire.CodeSettings, fmt.Sprintf("our HelloAck (%d bytes) is over your maximum frame size of %d", len(*buf), limit))
		return false
	}
	if !s.open(hello.settings, hello.meta) {
		return false
	}
	err := link.QueueFrame(*buf)
	if err != nil {
		s.fail(&HandshakeError{Reason: "sending HelloAck: " + err.Error()})
		return false
	}
	if s.opts.OnSession != nil {
		s.opts.OnSession(s.pub)
	}
	return true
}

// handleHelloReply is the initiator's side: HelloAck or Reject.
func (s *session) handleHelloReply(m *wire.Message) bool {
	switch {
	case m.Kind == wire.KindReject:
		s.fail(&HandshakeError{Code: ReasonCode(m.Code), Reason: string(m.Payload), Rejected: true})
		return false
	case m.Kind != wire.KindHelloAck:
		s.fail(&HandshakeError{Code: ReasonUnexpected, Reason: "expected HelloAck, got " + m.Kind.String()})
		return false
	case m.Version < wire.MinVersion || m.Version > wire.MaxVersion:
		s.fail(&HandshakeError{Code: ReasonVersion, Reason: "peer chose a version we did not offer"})
		return false
	case m.Parity != s.parity.Opposite():
		s.fail(&HandshakeError{Code: ReasonParity, Reason: "peer did not take the opposite parity"})
		return false
	}
	if reason := checkPeerFrameSize(m.Settings); reason != "" {
		s.fail(&HandshakeError{Code: ReasonSettings, Reason: reason})
		return false
	}
	return s.open(m.Settings, metadataFromWire(m.Metadata))
}

// open records the peer's settings and starts the session; false if it
// was torn down first.
func (s *session) open(settings wire.Settings, meta Metadata) bool {
	s.peer = settings
	s.peerMeta = meta
	s.maxFrame.Store(int64(min(s.linkMaxFrame(), peerMaxFrame(settings))))
	s.root.setPeerLimit(settings.MaxConcurrentRequests)
	s.closeMu.Lock()
	if !s.state.CompareAndSwap(stateHandshake, stateOpen) {
		s.closeMu.Unlock()
		return false
	}
	s.hsTimer.Stop()
	close(s.hsDone)
	s.startKeepaliveLocked()
	s.closeMu.Unlock()
	s.reportOpen()
	return true
}

// refuseHello answers an undecodable first frame.
func (s *session) refuseHello(link *netpoll.Conn, err error) {
	if s.initiator {
		s.fail(&HandshakeError{Code: ReasonMalformed, Reason: err.Error()})
		return
	}
	code := wire.CodeMalformed
	if errors.Is(err, wire.ErrBadMagic) {
		code = wire.CodeVersion
	}
	s.reject(link, code, err.Error())
}

// reject refuses the initiator and ends the session.
func (s *session) reject(link *netpoll.Conn, code wire.Code, reason string) {
	_ = s.queueLast(link, &wire.Message{Kind: wire.KindReject, Code: code, Payload: []byte(reason)})
	s.fail(&HandshakeError{Code: ReasonCode(code), Reason: reason})
}

// waitHandshake blocks until the handshake ends, ctx ends, or it times out.
func (s *session) waitHandshake(ctx context.Context) error {
	select {
	case <-s.hsDone:
	case <-ctx.Done():
		s.fail(&HandshakeError{Reason: ctx.Err().Error()})
		<-s.hsDone
	}
	if s.state.Load() == stateHandshake || s.Err() != nil {
		err := s.Err()
		var he *HandshakeError
		if !errors.As(err, &he) {
			err = &HandshakeError{Reason: err.Error()}
		}
		return err
	}
	return nil
}
