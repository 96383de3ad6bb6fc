package core

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// Observability. The library is silent by default: Options.Logger and
// Options.Stats turn on logging of lifecycle events and a report per call
// and per session. With neither set nothing is measured or formatted.

// StatsHandler is told of every call a session serves or makes, and of
// each session's start and end. Its methods run on the goroutines that
// serve and make the calls (a gnet event loop for inline handlers): they
// must be quick and must not block; keep what they are given, it is
// theirs.
type StatsHandler interface {
	// SessionStart: the handshake is done.
	SessionStart(SessionInfo)
	// SessionEnd: the session has ended, with its terminal error.
	SessionEnd(info SessionInfo, err error)
	// CallEnd: a call ended, served by this peer or made by it.
	CallEnd(CallStats)
}

// SessionInfo identifies a session in StatsHandler reports.
type SessionInfo struct {
	Initiator  bool
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	// PeerMetadata is the peer's handshake metadata.
	PeerMetadata Metadata
}

// CallStats describes one call.
type CallStats struct {
	Method Method
	// Served: this peer ran the handler; otherwise it made the call.
	Served bool
	// Code is the outcome's canonical code (OK on success). Err is the
	// error the caller got, or the one the handler returned (nil when
	// it returned none, as for a call refused without running).
	Code Code
	Err  error
	// Start is when the call was made, or when the request arrived;
	// Duration how long until its outcome (for a served call, until the
	// handler returned).
	Start    time.Time
	Duration time.Duration
	// RequestBytes and ResponseBytes are the payload sizes (not counting
	// metadata and framing); ResponseBytes is 0 when no response came.
	RequestBytes, ResponseBytes int
}

// sessionInfo describes s for the stats handler.
func (s *session) sessionInfo() SessionInfo {
	info := SessionInfo{Initiator: s.initiator, PeerMetadata: s.peerMeta}
	if l := s.link.Load(); l != nil {
		info.LocalAddr, info.RemoteAddr = l.LocalAddr(), l.RemoteAddr()
	}
	return info
}

// reportOpen tells the logger and the stats handler that s is open.
func (s *session) reportOpen() {
	s.opened.Store(true)
	if lg := s.opts.Logger; lg != nil {
		lg.Debug("rove: session open", "initiator", s.initiator, "remote", s.RemoteAddr())
	}
	if st := s.opts.Stats; st != nil {
		st.SessionStart(s.sessionInfo())
	}
}

// reportEnd tells them that s has ended, and why.
func (s *session) reportEnd() {
	err := s.Err()
	if lg := s.opts.Logger; lg != nil {
		level := slog.LevelInfo
		switch {
		case errors.Is(err, ErrSessionClosed):
			level = slog.LevelDebug
		case errors.Is(err, ErrProtocol):
			level = slog.LevelWarn
		}
		lg.Log(context.Background(), level, "rove: session ended", "initiator", s.initiator, "remote", s.RemoteAddr(), "cause", err)
	}
	// Only a session SessionStart saw ends: a failed handshake is
	// neither (its Dial or accept fails), so starts and ends pair up.
	if st := s.opts.Stats; st != nil && s.opened.Load() {
		st.SessionEnd(s.sessionInfo(), err)
	}
}

// statusCode maps a response status this peer sent to its code; err is
// what the handler returned (an *Error's code for StatusError).
func statusCode(status wire.Status, err error) Code {
	switch status {
	case wire.StatusOK:
		return OK
	case wire.StatusError:
		return CodeOf(err)
	case wire.StatusUnknownMethod:
		return Unimplemented
	case wire.StatusInvalidPayload:
		return InvalidArgument
	case wire.StatusCancelled:
		return Canceled
	case wire.StatusUnavailable:
		return Unavailable
	case wire.StatusUserError:
		return Unknown
	}
	return Internal
}

// invokeMeasured is invoke with a CallEnd report.
func (c *conn) invokeMeasured(ctx context.Context, st StatsHandler, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	start := time.Now()
	respBytes := 0
	measured := func(r Reply) error {
		respBytes = len(r.Payload)
		if fn == nil {
			return nil
		}
		return fn(r)
	}
	err := c.invokeChain(ctx, c.s.opts.CallInterceptors, m, req, opts, measured)
	st.CallEnd(CallStats{Method: m, Code: CodeOf(err), Err: err, Start: start, Duration: time.Since(start),
		RequestBytes: len(req), ResponseBytes: respBytes})
	return err
}

// reportServed sends the CallEnd of a served call; r's response is sent
// (or owed to no one) by now.
func (r *Request) reportServed(st StatsHandler, start time.Time, err error) {
	r.mu.Lock()
	respLen, status, sent := r.respLen, r.respStatus, r.respSent
	r.mu.Unlock()
	cs := CallStats{Method: r.Method(), Served: true, Start: start, Duration: time.Since(start),
		RequestBytes: len(r.frame.Body), ResponseBytes: int(respLen)}
	if sent {
		cs.Code = statusCode(status, err)
	} else {
		cs.Code = Unavailable // torn down before a response: the caller sees the link end
	}
	if cs.Code != OK {
		cs.Err = err
	}
	st.CallEnd(cs)
}
