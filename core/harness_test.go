package core

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// transport connects two sessions: the initiator (client) and the
// acceptor (server).
type transport struct {
	name string
	pair func(t testing.TB, client, server Options) (*Session, *Session)
}

func transports() []transport {
	return []transport{
		{"pipe", func(t testing.TB, co, so Options) (*Session, *Session) {
			c, s, err := Pipe(context.Background(), co, so)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			return c, s
		}},
		{"gnet", func(t testing.TB, co, so Options) (*Session, *Session) {
			tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 2})
			accepted := make(chan *Session, 1)
			so.OnSession = func(s *Session) { accepted <- s }
			srv, err := Serve(tr, "tcp", "127.0.0.1:0", so)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, tr, "tcp", srv.Addr().String(), co)
			if err != nil {
				t.Fatal(err)
			}
			s := <-accepted
			t.Cleanup(func() { c.Close(); srv.Close(); tr.Close() })
			return c, s
		}},
	}
}

// eachTransport runs f over the pipe and over gnet TCP.
func eachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

// echo is a raw echo handler.
func echo(_ context.Context, req *Request) error { return req.Reply(req.Payload(), nil) }

var (
	mEcho  = NewMethod("test", "echo")
	mSlow  = NewMethod("test", "slow")
	mBlock = NewMethod("test", "block")
)

// call makes one raw call and returns a copy of the reply. opts is
// optional.
func call(ctx context.Context, cl *Caller, m Method, req []byte, opts ...*CallOptions) ([]byte, error) {
	var out []byte
	var o *CallOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	err := cl.Call(ctx, m, req, o, func(r Reply) error {
		out = append([]byte{}, r.Payload...)
		return nil
	})
	return out, err
}

// rawPeer is the other end of a session's link driven by hand: the test
// writes raw frames and reads what the session sends.
type rawPeer struct {
	link   *netpoll.Conn
	msgs   chan rawMsg
	eof    chan struct{} // closed after the last message
	eofErr error
	gate   atomic.Pointer[chan struct{}] // while set, the peer reads nothing (pause)
	silent atomic.Bool                   // do not answer Pings (a conforming peer does)
}

// pause stops the peer from reading what the session sends, so that the
// session's outbound buffer fills; the returned func resumes reading.
func (p *rawPeer) pause() (resume func()) {
	ch := make(chan struct{})
	p.gate.Store(&ch)
	return func() {
		p.gate.Store(nil)
		close(ch)
	}
}

type rawMsg struct {
	m    wire.Message
	body []byte
}

func (p *rawPeer) HandleFrames(_ *netpoll.Conn, frames []netpoll.Frame) {
	if g := p.gate.Load(); g != nil {
		<-*g
	}
	for _, f := range frames {
		body := append([]byte{}, f.Body...)
		f.Release()
		m, err := wire.ParseMessage(body)
		if err != nil {
			panic(err)
		}
		if m.Kind == wire.KindPing && !p.silent.Load() {
			_ = p.link.QueueFrame(wire.AppendMessage(nil, &wire.Message{Kind: wire.KindPong, ID: m.ID}))
		}
		p.msgs <- rawMsg{m, body}
	}
}

func (p *rawPeer) HandleClose(_ *netpoll.Conn, err error) {
	p.eofErr = err
	close(p.eof)
}

// newRawPeer joins a raw peer to a session over a pipe. initiator says
// which side the session plays; opts.Link configures both ends.
func newRawPeer(t *testing.T, sessionIsInitiator bool, opts Options) (*Session, *rawPeer) {
	p := &rawPeer{msgs: make(chan rawMsg, 1024), eof: make(chan struct{})}
	pool, err := newWorkers(opts.withDefaults().Workers)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(sessionIsInitiator, opts, pool)
	s.ownPool = true
	ls, lp := netpoll.Pipe(s.events(), p, opts.Link)
	s.attach(ls)
	p.link = lp
	t.Cleanup(func() { s.Close(); lp.Close() })
	return s.pub, p
}

func (p *rawPeer) send(t *testing.T, m wire.Message) {
	t.Helper()
	if err := p.link.WriteFrame(context.Background(), wire.AppendMessage(nil, &m)); err != nil {
		t.Fatal(err)
	}
}

func (p *rawPeer) sendRaw(t *testing.T, body []byte) {
	t.Helper()
	if err := p.link.WriteFrame(context.Background(), body); err != nil {
		t.Fatal(err)
	}
}

// next waits for the next message the session sent.
func (p *rawPeer) next(t *testing.T) wire.Message {
	t.Helper()
	select {
	case m := <-p.msgs:
		return m.m
	case <-p.eof:
		select { // every message was queued before the close
		case m := <-p.msgs:
			return m.m
		default:
		}
		t.Fatalf("link closed (%v) while waiting for a message", p.eofErr)
	case <-time.After(10 * time.Second):
		t.Fatal("no message from the session")
	}
	return wire.Message{}
}

// expectEnd waits for the session to close the link.
func (p *rawPeer) expectEnd(t *testing.T) { t.Helper(); p.expectEndWithout(t) }

// expectEndWithout is expectEnd that fails on a message of any of kinds.
func (p *rawPeer) expectEndWithout(t *testing.T, kinds ...wire.Kind) {
	t.Helper()
	for {
		select {
		case m := <-p.msgs:
			if slices.Contains(kinds, m.m.Kind) {
				t.Fatalf("got %v before the link closed", m.m.Kind)
			}
		case <-p.eof:
			return
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not close the link")
		}
	}
}

// openAsAcceptor completes the handshake of a raw initiator with s.
func (p *rawPeer) hello(t *testing.T, settings wire.Settings) wire.Message {
	t.Helper()
	p.send(t, wire.Message{Kind: wire.KindHello, MinVersion: 1, Version: 1, Parity: wire.ParityOdd, Settings: settings})
	ack := p.next(t)
	if ack.Kind != wire.KindHelloAck {
		t.Fatalf("got %v, want HelloAck", ack.Kind)
	}
	return ack
}

func waitDone(t *testing.T, s *Session) {
	t.Helper()
	testwait.Recv(t, "the session to end", s.Done())
}

// acceptHello completes the handshake of s (the initiator) with the raw
// peer as acceptor, advertising settings.
func (p *rawPeer) acceptHello(t *testing.T, s *Session, settings wire.Settings) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.start(context.Background()) }()
	if m := p.next(t); m.Kind != wire.KindHello {
		t.Fatalf("got %v, want Hello", m.Kind)
	}
	p.send(t, wire.Message{Kind: wire.KindHelloAck, Version: 1, Parity: wire.ParityEven, Settings: settings})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// nextKind skips messages until one of kind k, and returns it.
func (p *rawPeer) nextKind(t *testing.T, k wire.Kind) wire.Message {
	t.Helper()
	for {
		if m := p.next(t); m.Kind == k {
			return m
		}
	}
}

// blockRouter serves mBlock: a handler that waits for its ctx to end.
func blockRouter() *Router {
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		<-ctx.Done()
		return ctx.Err()
	})
	return r
}

// waitInflight waits until c serves n of the peer's requests.
func waitInflight(t *testing.T, c *conn, n int64) {
	t.Helper()
	testwait.For(t, "requests in flight", func() bool { return c.inflight.live.Load() == n })
}
