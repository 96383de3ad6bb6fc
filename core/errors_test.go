package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/netpoll"
)

// spec:16 a request too large for the peer, or one that cannot be
// encoded, fails the same way every time: not retryable, and matchable
// with errors.Is (netpoll.ErrFrameTooLarge, ErrEncoding).
func TestTooLargeAndUnencodableAreNotRetryable(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{MaxFrameSize: wire.MinMaxFrameSize})
	cl := s.Caller()
	defer cl.Close()
	_, err := call(context.Background(), cl, mEcho, make([]byte, wire.MinMaxFrameSize))
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, netpoll.ErrFrameTooLarge) || IsRetryable(err) {
		t.Fatalf("oversized request: %v (retryable %v)", err, IsRetryable(err))
	}
	bad := NewTypedMethod[chan int, string]("test", "bad")
	_, err = bad.Call(context.Background(), cl, make(chan int))
	if !errors.Is(err, ErrSendFailed) || !errors.Is(err, ErrEncoding) || IsRetryable(err) {
		t.Fatalf("unencodable request: %v (retryable %v)", err, IsRetryable(err))
	}
	// A link failure is still retryable.
	linkErr := &CallError{Kind: ErrSendFailed, Cause: netpoll.ErrClosed}
	if !IsRetryable(linkErr) {
		t.Fatal("a send that failed with the link is retryable")
	}
	if s.Err() != nil {
		t.Fatalf("session ended: %v", s.Err())
	}
}

// Error text names each part once, and a user error shows its message.
func TestErrorText(t *testing.T) {
	linkDown := &CallError{Kind: ErrConnectionClosed, Message: "link closed", Cause: errors.New("EOF")}
	pending := &CallError{Kind: ErrConnectionClosed, Cause: linkDown}
	if got := pending.Error(); strings.Count(got, "connection closed") != 1 || !strings.Contains(got, "link closed: EOF") {
		t.Fatalf("got %q", got)
	}
	user := &CallError{Kind: ErrUser, Payload: []byte(`{"code":7,"msg":"no such key"}`)}
	if got := user.Error(); !strings.Contains(got, `no such key`) {
		t.Fatalf("got %q", got)
	}
	binary := &CallError{Kind: ErrUser, Payload: []byte{0, 1, 2}}
	if got := binary.Error(); !strings.Contains(got, "(3 bytes)") {
		t.Fatalf("got %q", got)
	}
	if got := (&UserError{Payload: []byte("quota exceeded")}).Error(); !strings.Contains(got, "quota exceeded") {
		t.Fatalf("got %q", got)
	}
}

// A pending call failed by the session's end names the cause once.
func TestSessionEndErrorText(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		client, server := tr.pair(t, Options{}, Options{Router: blockRouter()})
		cl := client.Caller()
		defer cl.Close()
		errc := make(chan error, 1)
		go func() { _, err := call(context.Background(), cl, mBlock, nil); errc <- err }()
		waitInflight(t, server.root, 1)
		server.Close()
		err := <-errc
		if !errors.Is(err, ErrConnectionClosed) || strings.Count(err.Error(), "connection closed") != 1 {
			t.Fatalf("got %q", err)
		}
	})
}

// A handshake error names its code only when there is one: "(none)" says
// nothing to a user.
func TestHandshakeErrorText(t *testing.T) {
	for _, c := range []struct {
		err  *HandshakeError
		want string
	}{
		{&HandshakeError{Reason: "dial: connection refused"}, "rove: handshake failed: dial: connection refused"},
		{&HandshakeError{Code: ReasonVersion, Reason: "no common version", Rejected: true}, "rove: handshake rejected by peer (version): no common version"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

// core's own names for wire values carry the wire's numbers: core/internal/wire
// stays internal, and the two cannot drift apart.
func TestCoreTypesMatchTheWire(t *testing.T) {
	reasons := map[ReasonCode]wire.Code{
		ReasonNone: wire.CodeNone, ReasonVersion: wire.CodeVersion, ReasonParity: wire.CodeParity,
		ReasonRefused: wire.CodeRefused, ReasonSettings: wire.CodeSettings, ReasonMalformed: wire.CodeMalformed,
		ReasonFrameTooLarge: wire.CodeFrameTooLarge, ReasonUnexpected: wire.CodeUnexpected,
		ReasonWrongParity: wire.CodeWrongParity, ReasonIDInUse: wire.CodeIDInUse, ReasonUnknownConn: wire.CodeUnknownConn,
		ReasonUnknownChannel: wire.CodeUnknownChannel, ReasonCreditExceeded: wire.CodeCreditExceeded,
		ReasonTooManyRequests: wire.CodeTooManyRequests, ReasonRootClose: wire.CodeRootClose,
		ReasonKeepalive: wire.CodeKeepalive, ReasonTooManyChannels: wire.CodeTooManyChannels,
		ReasonMetadataTooLarge: wire.CodeMetadataTooLarge,
	}
	for r, w := range reasons {
		if uint64(r) != uint64(w) || r.String() != w.String() {
			t.Errorf("%v is %d, the wire's %v %d", r, r, w, w)
		}
	}
	if ParityOdd != Parity(wire.ParityOdd) || ParityEven != Parity(wire.ParityEven) || ParityOdd.String() != wire.ParityOdd.String() {
		t.Error("parities")
	}
	if Sensitive != MetaFlags(wire.FlagSensitive) || NoPropagate != MetaFlags(wire.FlagNoPropagate) {
		t.Error("metadata flags")
	}
	if StringType != ValueType(wire.ValueString) || BytesType != ValueType(wire.ValueBytes) || U64Type != ValueType(wire.ValueU64) {
		t.Error("value types")
	}
}

// ParseMethod reads service/name and service.name (split at the last dot).
func TestParseMethod(t *testing.T) {
	for in, want := range map[string]Method{
		"kv/Get":               NewMethod("kv", "Get"),
		"kv.v1.Get":            NewMethod("kv.v1", "Get"),
		"rove.health.v1/Check": NewMethod("rove.health.v1", "Check"),
	} {
		if got, err := ParseMethod(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"nodot", "/Get", "kv/", "a/b/c", "kv."} {
		if _, err := ParseMethod(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// An InvalidPayloadError without a cause still reads as one; a handler
// that returns it answers InvalidPayload with no text, and the caller's
// error names the kind once.
func TestInvalidPayloadErrorWithoutCause(t *testing.T) {
	if got := (&InvalidPayloadError{}).Error(); got != "rove: invalid payload" {
		t.Fatalf("text %q", got)
	}
	mBad := NewMethod("test", "bad")
	r := NewRouter()
	r.Handle(mBad, func(ctx context.Context, req *Request) error { return &InvalidPayloadError{} })
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	cl := client.Caller()
	defer cl.Close()
	_, err := call(context.Background(), cl, mBad, nil)
	if !errors.Is(err, ErrInvalidPayload) || err.Error() != "rove: invalid payload" {
		t.Fatalf("got %q", err)
	}
}
