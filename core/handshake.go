package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/rove-rpc/rove/core/wire"
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
	// The parity is valid (the codec checks); ours is the opposite one.
	s.parity = m.Parity.Opposite()
	s.root.setParity(s.parity)
	ack := &wire.Message{
		Kind: wire.KindHelloAck, Version: version, Parity: s.parity,
		Settings: s.localSettings(), Metadata: s.opts.Metadata.toWire(),
	}
	buf := getBuf()
	defer putBuf(buf)
	*buf = wire.AppendMessage((*buf)[:0], ack)
	if limit := min(peerMaxFrame(m.Settings), s.linkMaxFrame()); len(*buf) > limit {
		// Our metadata does not fit the initiator's frames (rule 35).
		s.reject(link, wire.CodeSettings, fmt.Sprintf("our HelloAck (%d bytes) is over your maximum frame size of %d", len(*buf), limit))
		return false
	}
	s.open(m)
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
		s.fail(&HandshakeError{Code: m.Code, Reason: string(m.Payload), Rejected: true})
		return false
	case m.Kind != wire.KindHelloAck:
		s.fail(&HandshakeError{Code: wire.CodeUnexpected, Reason: "expected HelloAck, got " + m.Kind.String()})
		return false
	case m.Version < wire.MinVersion || m.Version > wire.MaxVersion:
		s.fail(&HandshakeError{Code: wire.CodeVersion, Reason: "peer chose a version we did not offer"})
		return false
	case m.Parity != s.parity.Opposite():
		s.fail(&HandshakeError{Code: wire.CodeParity, Reason: "peer did not take the opposite parity"})
		return false
	}
	if reason := checkPeerFrameSize(m.Settings); reason != "" {
		s.fail(&HandshakeError{Code: wire.CodeSettings, Reason: reason})
		return false
	}
	s.open(m)
	return true
}

// open records the peer's settings and starts the session.
func (s *session) open(m *wire.Message) {
	s.peer = m.Settings
	s.peerMeta = metadataFromWire(m.Metadata)
	s.maxFrame.Store(int64(min(s.linkMaxFrame(), peerMaxFrame(m.Settings))))
	s.root.setPeerLimit(m.Settings.MaxConcurrentRequests)
	s.closeMu.Lock()
	s.hsTimer.Stop()
	if s.state.CompareAndSwap(stateHandshake, stateOpen) {
		close(s.hsDone)
		s.startKeepaliveLocked()
	}
	s.closeMu.Unlock()
}

// refuseHello answers an undecodable first frame.
func (s *session) refuseHello(link *netpoll.Conn, err error) {
	if s.initiator {
		s.fail(&HandshakeError{Code: wire.CodeMalformed, Reason: err.Error()})
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
	_ = s.queue(link, &wire.Message{Kind: wire.KindReject, Code: code, Payload: []byte(reason)})
	s.fail(&HandshakeError{Code: code, Reason: reason})
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
