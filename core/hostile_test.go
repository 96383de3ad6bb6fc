package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// The hostile-peer battery: a Rove server on gnet, a peer that writes raw
// bytes over TCP, and for every bad input what docs/PROTOCOL.md promises
// (ProtocolError with its code, Reject, the link closed, the input
// ignored, or backpressure). After each case another client is still
// served and the hostile session has left nothing behind.

// hostileServer is a server with small limits and handlers to abuse.
type hostileServer struct {
	srv   *Server
	good  *Caller // a well-behaved client, checked after every case
	addr  string
	block chan struct{} // mBlock's handlers wait on it
}

var (
	mHostileBlock  = NewMethod("hostile", "block")
	mHostileInline = NewMethod("hostile", "inline")
)

func newHostileServer(t *testing.T) *hostileServer {
	h := &hostileServer{block: make(chan struct{})}
	r := testbedRouter()
	r.Handle(mEcho, echo)
	r.HandleInline(mHostileInline, echo)
	r.Handle(mHostileBlock, func(ctx context.Context, req *Request) error {
		select {
		case <-h.block:
		case <-ctx.Done():
		}
		return req.Reply(nil, nil)
	})
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	t.Cleanup(func() { tr.Close() })
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", Options{
		Router: r, MaxConcurrentRequests: 4, MaxChannels: 8, MaxMetadataEntries: 8,
		MaxMetadataBytes: 1024, ByteBudget: 4 << 20, HandshakeTimeout: 300 * time.Millisecond,
		AcceptConn: acceptWith(echoRouter(), nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(h.block); srv.Close() })
	h.srv, h.addr = srv, srv.Addr().String()
	good, err := Dial(context.Background(), tr, "tcp", h.addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { good.Close() })
	h.good = good.Caller()
	return h
}

// stillServes checks the well-behaved client and that only its session is
// left on the server.
func (h *hostileServer) stillServes(t *testing.T) {
	t.Helper()
	if got, err := call(context.Background(), h.good, mEcho, []byte("still here")); err != nil || string(got) != "still here" {
		t.Fatalf("the other client: %q %v", got, err)
	}
	testwait.For(t, "the hostile session to be gone", func() bool { return len(h.srv.snapshot()) == 1 })
}

// rawClient is the hostile peer: bytes out, decoded frames in.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	in []byte
}

func (h *hostileServer) dialRaw(t *testing.T) *rawClient {
	nc, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc}
}

// serveRawClient serves opts over gnet TCP (one event loop) and dials a
// raw client to it, past the handshake.
func serveRawClient(t *testing.T, opts Options) *rawClient {
	t.Helper()
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	t.Cleanup(func() { tr.Close() })
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	c.hello(wire.Settings{})
	return c
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(m wire.Message) {
	c.write(netpoll.AppendFrame(nil, wire.AppendMessage(nil, &m)))
}

// hello completes the handshake as the initiator (odd ids).
func (c *rawClient) hello(settings wire.Settings) {
	c.t.Helper()
	c.send(wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: settings})
	if m, ok := c.next(); !ok || m.Kind != wire.KindHelloAck {
		c.t.Fatalf("got %v (ok %v), want HelloAck", m.Kind, ok)
	}
}

// next returns the next message, or false at the end of the stream.
func (c *rawClient) next() (wire.Message, bool) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64<<10)
	for {
		if rest, body, ok, err := netpoll.ParseFrame(c.in, netpoll.DefaultMaxFrameSize); err != nil {
			c.t.Fatalf("the server sent a bad frame: %v", err)
		} else if ok {
			m, err := wire.ParseMessage(body)
			if err != nil {
				c.t.Fatalf("the server sent a bad message: %v", err)
			}
			m.Payload = append([]byte(nil), m.Payload...)
			c.in = append([]byte(nil), rest...)
			return m, true
		}
		n, err := c.nc.Read(buf)
		c.in = append(c.in, buf[:n]...)
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			if n == 0 {
				return wire.Message{}, false
			}
		} else if err != nil {
			c.t.Fatalf("read: %v", err)
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// expectViolation waits for a ProtocolError with code, then the close.
func (c *rawClient) expectViolation(code wire.Code) {
	c.t.Helper()
	for {
		m, ok := c.next()
		if !ok {
			c.t.Fatalf("the link closed without a ProtocolError (%v)", code)
		}
		if m.Kind == wire.KindProtocolError {
			if m.Code != code {
				c.t.Fatalf("ProtocolError %v %q, want %v", m.Code, m.Payload, code)
			}
			c.expectClose()
			return
		}
		if m.Kind == wire.KindPong && m.ID == pingAfterViolation {
			c.t.Fatal("the Ping sent after the violation was answered: a message after it was handled")
		}
	}
}

// pingAfterViolation is the id of a Ping a case sends after its violation,
// which must never be answered.
const pingAfterViolation = 9

// expectReject waits for a Reject with code, then the close.
func (c *rawClient) expectReject(code wire.Code) {
	c.t.Helper()
	m, ok := c.next()
	if !ok || m.Kind != wire.KindReject || m.Code != code {
		c.t.Fatalf("got %v %v %q (ok %v), want Reject %v", m.Kind, m.Code, m.Payload, ok, code)
	}
	c.expectClose()
}

// expectClose waits for the end of the stream, with nothing before it but
// what a closing session may still send, and closes our side as a peer
// would (the server waits for that, up to its close timeout).
func (c *rawClient) expectClose() {
	c.t.Helper()
	for {
		m, ok := c.next()
		if !ok {
			c.nc.Close()
			return
		}
		if m.Kind == wire.KindProtocolError || m.Kind == wire.KindReject {
			c.t.Fatalf("unexpected %v %v %q before the close", m.Kind, m.Code, m.Payload)
		}
	}
}

// alive checks that the session still answers: a Ping gets its Pong.
func (c *rawClient) alive() {
	c.t.Helper()
	c.send(wire.Message{Kind: wire.KindPing, ID: 77})
	for {
		m, ok := c.next()
		if !ok {
			c.t.Fatal("the link closed: the input was not ignored")
		}
		if m.Kind == wire.KindProtocolError {
			c.t.Fatalf("ProtocolError %v %q: the input was not ignored", m.Code, m.Payload)
		}
		if m.Kind == wire.KindPong && m.ID == 77 {
			return
		}
	}
}

func req(id uint64, m Method, payload []byte) wire.Message {
	return wire.Message{Kind: wire.KindRequest, ID: id, Method: m.ID, Payload: payload}
}

// frames encodes msgs as one byte stream, for a single write.
func frames(msgs ...wire.Message) []byte {
	var raw []byte
	for _, m := range msgs {
		raw = netpoll.AppendFrame(raw, wire.AppendMessage(nil, &m))
	}
	return raw
}

func binds(bs ...wire.ChannelBinding) wire.ChannelList {
	var raw []byte
	for _, b := range bs {
		raw = wire.AppendChannel(raw, b)
	}
	return wire.MakeChannelList(raw)
}

// spec:5,29 every violation in docs/PROTOCOL.md's list: ProtocolError with
// its code, then the close; the server goes on serving others.
func TestHostileViolations(t *testing.T) {
	h := newHostileServer(t)
	item := func(id uint64) wire.Message {
		return wire.Message{Kind: wire.KindChannelItem, ID: id, Payload: []byte("x")}
	}
	cases := []struct {
		name string
		code wire.Code
		msgs []wire.Message
		raw  []byte // sent after msgs
	}{
		{"empty body", wire.CodeMalformed, nil, netpoll.AppendFrame(nil, nil)},
		{"unknown kind", wire.CodeMalformed, nil, netpoll.AppendFrame(nil, []byte{0x7f})},
		{"overflowing varint", wire.CodeMalformed, nil,
			netpoll.AppendFrame(nil, append([]byte{byte(wire.KindRequest), 0}, bytes.Repeat([]byte{0xff}, 11)...))},
		{"truncated body", wire.CodeMalformed, nil, netpoll.AppendFrame(nil, []byte{byte(wire.KindRequest), 0})},
		{"wrong parity request", wire.CodeWrongParity, []wire.Message{req(2, mEcho, nil)}, nil},
		{"duplicate in-flight id", wire.CodeIDInUse, []wire.Message{req(1, mHostileBlock, nil), req(1, mHostileBlock, nil)}, nil},
		// An inline request is served out of the inbound table (solo),
		// but its id is looked up there first.
		{"inline request with an in-flight id", wire.CodeIDInUse, []wire.Message{req(1, mHostileBlock, nil), req(1, mHostileInline, nil)}, nil},
		{"over the request limit", wire.CodeTooManyRequests, []wire.Message{
			req(1, mHostileBlock, nil), req(3, mHostileBlock, nil), req(5, mHostileBlock, nil), req(7, mHostileBlock, nil), req(9, mHostileBlock, nil)}, nil},
		{"second Hello", wire.CodeUnexpected, []wire.Message{{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd}}, nil},
		{"HelloAck from the initiator", wire.CodeUnexpected, []wire.Message{{Kind: wire.KindHelloAck, Version: 1, Parity: wire.ParityOdd}}, nil},
		{"CloseConn for the root", wire.CodeRootClose, []wire.Message{{Kind: wire.KindCloseConn, Conn: 0}}, nil},
		{"request on an unknown connection", wire.CodeUnknownConn, []wire.Message{{Kind: wire.KindRequest, Conn: 9, ID: 1, Method: mEcho.ID}}, nil},
		{"OpenConn of the acceptor's parity", wire.CodeWrongParity, []wire.Message{{Kind: wire.KindOpenConn, Conn: 2, Parity: wire.ParityOdd}}, nil},
		{"item on an unknown channel", wire.CodeUnknownChannel, []wire.Message{item(1)}, nil},
		{"close of an unknown channel", wire.CodeUnknownChannel, []wire.Message{{Kind: wire.KindChannelClose, ID: 5}}, nil},
		{"item beyond credit", wire.CodeCreditExceeded, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})},
			item(1), item(1)}, nil},
		// The close frees the id at once, though the item before it still
		// waits unread: the item after it names no channel.
		{"item after its channel's close", wire.CodeUnknownChannel, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 4})},
			item(1), {Kind: wire.KindChannelClose, ID: 1}, item(1)}, nil},
		// In one read: the run over the credit is ended by the Ping after
		// it, which must not be handled.
		{"a run beyond credit, then another message", wire.CodeCreditExceeded, nil, frames(
			wire.Message{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})},
			item(1), item(1), wire.Message{Kind: wire.KindPing, ID: pingAfterViolation})},
		// GrantCredit and ChannelReset come from a channel's receiver only.
		{"reset from the channel's sender", wire.CodeUnexpected, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})},
			{Kind: wire.KindChannelReset, ID: 1}}, nil},
		{"credit from the channel's sender", wire.CodeUnexpected, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})},
			{Kind: wire.KindGrantCredit, ID: 1, Credit: 1}}, nil},
		{"channel of the acceptor's parity", wire.CodeWrongParity, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Channels: binds(wire.ChannelBinding{ID: 2, Dir: wire.CallerSends, Window: 1})}}, nil},
		{"a channel bound twice", wire.CodeIDInUse, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})},
			{Kind: wire.KindRequest, ID: 3, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 1})}}, nil},
		{"too many channels", wire.CodeTooManyChannels, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Channels: func() wire.ChannelList {
				var bs []wire.ChannelBinding
				for i := range 9 {
					bs = append(bs, wire.ChannelBinding{ID: uint64(2*i + 1), Dir: wire.CallerSends, Window: 1})
				}
				return binds(bs...)
			}()}}, nil},
		{"cancel of the callee's parity", wire.CodeWrongParity, []wire.Message{{Kind: wire.KindCancel, ID: 2}}, nil},
		{"channel id 0", wire.CodeMalformed, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Channels: binds(wire.ChannelBinding{ID: 0, Dir: wire.CallerSends, Window: 1})}}, nil},
		{"window over the maximum", wire.CodeMalformed, []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: wire.MaxWindow + 1})}}, nil},
		{"metadata over the entries limit", wire.CodeMetadataTooLarge, []wire.Message{{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Metadata: manyEntries(9)}}, nil},
		{"metadata over the bytes limit", wire.CodeMetadataTooLarge, []wire.Message{{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Metadata: bigEntry(2000)}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := h.dialRaw(t)
			p.hello(wire.Settings{})
			for _, m := range c.msgs {
				p.send(m)
			}
			if c.raw != nil {
				p.write(c.raw)
			}
			p.expectViolation(c.code)
			h.stillServes(t)
		})
	}
}

// What the document says is ignored is ignored: the session stays up.
func TestHostileIgnored(t *testing.T) {
	h := newHostileServer(t)
	cases := []struct {
		name string
		msgs []wire.Message
	}{
		{"stray response (rule 21)", []wire.Message{{Kind: wire.KindResponse, ID: 2, Status: wire.StatusOK}}},
		{"cancel of an unknown request", []wire.Message{{Kind: wire.KindCancel, ID: 11}}},
		{"grant for a channel never bound", []wire.Message{{Kind: wire.KindGrantCredit, ID: 2, Credit: 5}}},
		{"reset of a channel never bound", []wire.Message{{Kind: wire.KindChannelReset, ID: 2}}},
		{"pong nobody asked for", []wire.Message{{Kind: wire.KindPong, ID: 12345}}},
		{"credit past the ceiling", []wire.Message{
			{Kind: wire.KindRequest, ID: 1, Method: mHostileBlock.ID, Channels: binds(wire.ChannelBinding{ID: 1, Dir: wire.CalleeSends, Window: 1})},
			{Kind: wire.KindGrantCredit, ID: 1, Credit: 1 << 62}, {Kind: wire.KindGrantCredit, ID: 1, Credit: 1 << 62}}},
		{"a plain request (the control case)", []wire.Message{req(1, mEcho, nil)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := h.dialRaw(t)
			p.hello(wire.Settings{})
			for _, m := range c.msgs {
				p.send(m)
			}
			p.alive()
			p.nc.Close()
			h.stillServes(t)
		})
	}
}

// Framing errors end the link at once, with no ProtocolError (the framing
// is lost): an announced length over the maximum, a header longer than 5
// bytes, a stream that ends inside a frame.
func TestHostileFraming(t *testing.T) {
	h := newHostileServer(t)
	cases := []struct {
		name string
		raw  []byte
		eof  bool // close our side after sending
	}{
		{"length over the maximum", binaryUvarint(netpoll.DefaultMaxFrameSize + 1), false},
		{"header longer than 5 bytes", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
		{"stream ends inside a frame", append(binaryUvarint(100), 1, 2, 3), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := h.dialRaw(t)
			p.hello(wire.Settings{})
			p.write(c.raw)
			if c.eof {
				p.nc.(*net.TCPConn).CloseWrite()
			}
			p.expectClose()
			h.stillServes(t)
		})
	}
}

func binaryUvarint(v uint64) []byte { return wire.AppendUvarint(nil, v) }

// spec:2 handshakes gone wrong: anything but a Hello first is rejected; a
// peer that never finishes its Hello (slowloris), or never sends one, is
// dropped after the handshake timeout; many of them at once cost the
// server nothing lasting, and others are served meanwhile.
func TestHostileHandshakes(t *testing.T) {
	h := newHostileServer(t)
	t.Run("request before Hello", func(t *testing.T) {
		p := h.dialRaw(t)
		p.send(req(1, mEcho, nil))
		p.expectReject(wire.CodeNone)
		h.stillServes(t)
	})
	t.Run("request before HelloAck", func(t *testing.T) {
		p := h.dialRaw(t)
		// Hello and a request in one write: served once accepted.
		hello := netpoll.AppendFrame(nil, wire.AppendMessage(nil, &wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd}))
		p.write(netpoll.AppendFrame(hello, wire.AppendMessage(nil, &wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: []byte("early")})))
		if m, ok := p.next(); !ok || m.Kind != wire.KindHelloAck {
			t.Fatalf("got %v, want HelloAck", m.Kind)
		}
		if m, ok := p.next(); !ok || m.Kind != wire.KindResponse || string(m.Payload) != "early" {
			t.Fatalf("got %v %q, want the early request's response", m.Kind, m.Payload)
		}
		p.nc.Close()
		h.stillServes(t)
	})
	t.Run("bad magic", func(t *testing.T) {
		p := h.dialRaw(t)
		p.write(netpoll.AppendFrame(nil, []byte{byte(wire.KindHello), 'N', 'O', 'P', 'E', 1, 1, 1, 0, 0}))
		p.expectReject(wire.CodeVersion)
		h.stillServes(t)
	})
	t.Run("slowloris Hello", func(t *testing.T) {
		p := h.dialRaw(t)
		hello := netpoll.AppendFrame(nil, wire.AppendMessage(nil, &wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd}))
		p.write(hello[:3]) // and nothing more
		start := time.Now()
		p.expectClose()
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("dropped after %v, the handshake timeout is 300ms", waited)
		}
		h.stillServes(t)
	})
	t.Run("a thousand half-open connections", func(t *testing.T) {
		conns := make([]net.Conn, 0, 1000)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 1000 {
			nc, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, nc)
		}
		if got, err := call(context.Background(), h.good, mEcho, []byte("meanwhile")); err != nil || string(got) != "meanwhile" {
			t.Fatalf("while they hang: %q %v", got, err)
		}
		h.stillServes(t) // every one of them was dropped by the timeout
	})
}

// Varints are read whatever their encoding (docs/PROTOCOL.md, section 2):
// a frame whose length prefix, and a message whose fields, are not
// minimal are taken as they mean.
func TestHostileNonMinimalVarints(t *testing.T) {
	h := newHostileServer(t)
	p := h.dialRaw(t)
	p.hello(wire.Settings{})
	ping := wire.AppendMessage(nil, &wire.Message{Kind: wire.KindPing, ID: 5})
	// length as two bytes where one would do: 0x80|n, 0x00
	p.write(append([]byte{0x80 | byte(len(ping)), 0x00}, ping...))
	if m, ok := p.next(); !ok || m.Kind != wire.KindPong || m.ID != 5 {
		t.Fatalf("got %v %d (ok %v), want Pong 5", m.Kind, m.ID, ok)
	}
	// a request whose id (1) is written in two bytes: 0x81 0x00
	body := []byte{byte(wire.KindRequest), 0x00, 0x81, 0x00}
	body = append(body, wire.AppendMessage(nil, &wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: []byte("x")})[3:]...)
	p.write(netpoll.AppendFrame(nil, body))
	if m, ok := p.next(); !ok || m.Kind != wire.KindResponse || m.ID != 1 || string(m.Payload) != "x" {
		t.Fatalf("got %v %d %q (ok %v), want the echo of request 1", m.Kind, m.ID, m.Payload, ok)
	}
	p.nc.Close()
	h.stillServes(t)
}
