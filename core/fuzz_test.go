package core

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// FuzzSession drives an acceptor session with a program of frames from a
// hostile peer, after a valid Hello: each frame is one length byte and
// that many bytes of body. Whatever arrives, the session must not panic,
// must end (if it ends) with a protocol, handshake or connection error,
// and must close cleanly without hanging.
func FuzzSession(f *testing.F) {
	for _, prog := range fuzzSeeds() {
		f.Add(prog)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		r := testbedRouter()
		r.Handle(mEcho, echo)
		r.HandleInline(mSlow, echo)
		s, p := newRawPeer(t, false, Options{Router: r, AcceptConn: acceptWith(echoRouter(), nil), MaxConcurrentRequests: 8})
		// The peer advertises a byte window: the session's senders count
		// bytes, and its grants carry them.
		p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: wire.Settings{ChannelByteWindow: 64 << 10}})
		p.playProgram(prog)
		// The session read every byte sent, then saw the link close.
		// Whatever it made of them, it ends with one of the errors the
		// document promises, and closes without hanging.
		endsWith(t, s, ErrProtocol, ErrHandshake, ErrConnectionClosed)
	})
}

// playProgram feeds the session a program of frames (each one length byte
// and that many bytes of body), then closes the peer's side of the link.
// Nobody reads what the session sends meanwhile: it is dropped, or a
// program that makes the session send more than the peer's queue holds
// (a large grant to a long stream) would stall the peer's reading and
// the link's Close.
func (p *rawPeer) playProgram(prog []byte) {
	go func() {
		for {
			select {
			case <-p.msgs:
			case <-p.eof:
				return
			}
		}
	}()
	for len(prog) > 0 {
		n := min(int(prog[0]), len(prog)-1)
		body := prog[1 : 1+n]
		prog = prog[1+n:]
		if err := p.link.WriteFrame(context.Background(), body); err != nil {
			break // the session already closed the link
		}
	}
	p.link.Close()
}

// programFrame is m as one step of a program for playProgram: its length
// byte, then its encoding.
func programFrame(m wire.Message) []byte {
	b := wire.AppendMessage(nil, &m)
	if len(b) > 255 {
		panic("a seed frame longer than a program's length byte allows")
	}
	return append([]byte{byte(len(b))}, b...)
}

// endsWith waits for s to end after its link closed, checks that it ended
// with one of errs, and that its Close returns.
func endsWith(t *testing.T, s *Session, errs ...error) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session never saw its link close")
	}
	if err := s.Err(); !slices.ContainsFunc(errs, func(e error) bool { return errors.Is(err, e) }) {
		t.Fatalf("session ended with %v", err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("close hung")
	}
}

// fuzzSeeds are programs of well-formed traffic to start from.
func fuzzSeeds() [][]byte {
	frame, cat := programFrame, slices.Concat[[]byte]
	in := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: 2}))
	in5 := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 5, Dir: wire.CallerSends, Window: 2}))
	out := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 3, Dir: wire.CalleeSends, Window: 2}))
	wide := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 7, Dir: wire.CalleeSends, Window: 64}))
	wide9 := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 9, Dir: wire.CalleeSends, Window: 64}))
	return [][]byte{
		frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mEcho.ID, Payload: []byte("hi")}),
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mBlock.ID}), frame(wire.Message{Kind: wire.KindCancel, ID: 1})),
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: in}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("2")}),
			frame(wire.Message{Kind: wire.KindChannelClose, ID: 1})),
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mGenerate.ID, Payload: []byte("5"), Channels: out}),
			frame(wire.Message{Kind: wire.KindGrantCredit, ID: 3, Credit: 3}),
			frame(wire.Message{Kind: wire.KindChannelReset, ID: 3})),
		cat(frame(wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd}),
			frame(wire.Message{Kind: wire.KindRequest, Conn: 1, ID: 1, Method: mEcho.ID}),
			frame(wire.Message{Kind: wire.KindCloseConn, Conn: 1})),
		cat(frame(wire.Message{Kind: wire.KindPing, ID: 7}), frame(wire.Message{Kind: wire.KindGoAway}),
			frame(wire.Message{Kind: wire.KindResponse, ID: 2, Payload: []byte("late")})),
		frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSlow.ID, TimeoutMicros: 1}),
		// Item runs (itemRun): past the credit within one run, and two
		// channels' runs interleaved before their closes.
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: in}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("2")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("3")})),
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: in}),
			frame(wire.Message{Kind: wire.KindRequest, ID: 3, Method: mSum.ID, Channels: in5}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 5, Payload: []byte("2")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 5, Payload: []byte("3")}),
			frame(wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("4")}),
			frame(wire.Message{Kind: wire.KindChannelClose, ID: 5}),
			frame(wire.Message{Kind: wire.KindChannelClose, ID: 1})),
		// A reset while the handler sends items as fast as credit allows
		// (the acknowledgement's gate against items being committed, and
		// our Close racing it), then a second stream started at once.
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mGenerate.ID, Payload: []byte("1000"), Channels: wide}),
			frame(wire.Message{Kind: wire.KindChannelReset, ID: 7}),
			frame(wire.Message{Kind: wire.KindRequest, ID: 3, Method: mGenerate.ID, Payload: []byte("3"), Channels: wide9}),
			frame(wire.Message{Kind: wire.KindGrantCredit, ID: 9, Credit: 1}),
			frame(wire.Message{Kind: wire.KindChannelReset, ID: 9})),
		// Grants that count bytes: more than were ever sent (the sender
		// only frees its window), and a zero-credit grant with bytes.
		cat(frame(wire.Message{Kind: wire.KindRequest, ID: 1, Method: mGenerate.ID, Payload: []byte("100"), Channels: out}),
			frame(wire.Message{Kind: wire.KindGrantCredit, ID: 3, Credit: 3, Bytes: 1 << 40}),
			frame(wire.Message{Kind: wire.KindGrantCredit, ID: 3, Bytes: 7})),
	}
}
