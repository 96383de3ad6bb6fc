package core

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// runCounter is a service whose handler records how many times each
// request (an 8-byte id) ran.
type runCounter struct {
	mu   sync.Mutex
	runs map[uint64]int
}

func (rc *runCounter) router() *Router {
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		id := binary.LittleEndian.Uint64(req.Payload())
		rc.mu.Lock()
		rc.runs[id]++
		rc.mu.Unlock()
		return req.Reply(req.Payload(), nil)
	})
	return r
}

// A server restarted 10 times through Drain while a Client calls in a
// loop: no call fails, idempotent or not, and no call runs twice.
func TestClientThroughServerRestarts(t *testing.T) {
	rc := &runCounter{runs: map[uint64]int{}}
	tr := netpoll.Std{}
	serve := func(addr string) *Server {
		t.Helper()
		srv, err := Serve(tr, "tcp", addr, Options{Router: rc.router()})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := serve("127.0.0.1:0")
	addr := srv.Addr().String()
	var states sync.Map
	cl := NewClient(func(ctx context.Context) (*Session, error) {
		return Dial(ctx, tr, "tcp", addr, Options{})
	}, ClientOptions{BackoffMin: 2 * time.Millisecond, BackoffMax: 20 * time.Millisecond, Attempts: 50,
		OnState: func(s ClientState) { states.Store(s, true) }})
	defer cl.Close()

	var (
		nextID           atomic.Uint64
		stop             atomic.Bool
		okIdem, okOther  atomic.Int64
		failedIdempotent atomic.Value
		badOther         atomic.Value
		otherFailed      atomic.Int64
		lastOther        atomic.Value
		wg               sync.WaitGroup
	)
	caller := func(idempotent bool) {
		defer wg.Done()
		for !stop.Load() {
			id := nextID.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.Call(ctx, mEcho, binary.LittleEndian.AppendUint64(nil, id), &ClientCallOptions{Idempotent: idempotent}, nil)
			cancel()
			switch {
			case err == nil && idempotent:
				okIdem.Add(1)
			case err == nil:
				okOther.Add(1)
			case idempotent:
				failedIdempotent.Store(err)
			case !IsRetryable(err):
				badOther.Store(err)
			default:
				otherFailed.Add(1)
				lastOther.Store(err)
			}
		}
	}
	for i := range 6 {
		wg.Add(1)
		go caller(i%2 == 0)
	}
	for range 10 {
		before := okIdem.Load()
		testwait.For(t, "calls through the current server", func() bool { return okIdem.Load() > before+20 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := srv.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		srv = serve(addr)
	}
	before := okIdem.Load()
	testwait.For(t, "calls through the last server", func() bool { return okIdem.Load() > before+20 })
	// Drained sessions are let go once they end: a long-lived Client
	// through many restarts holds none of them.
	testwait.For(t, "drained sessions to be let go", func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return len(cl.draining) == 0
	})
	stop.Store(true)
	wg.Wait()
	srv.Close()

	if err := failedIdempotent.Load(); err != nil {
		t.Fatalf("an idempotent call failed: %v", err)
	}
	if err := badOther.Load(); err != nil {
		t.Fatalf("a call failed with a non-retryable error: %v", err)
	}
	rc.mu.Lock()
	for id, n := range rc.runs {
		if n > 1 {
			t.Fatalf("request %d ran %d times", id, n)
		}
	}
	rc.mu.Unlock()
	for _, s := range []ClientState{ClientReady, ClientDraining, ClientConnecting} {
		if _, ok := states.Load(s); !ok {
			t.Errorf("the Client was never %v", s)
		}
	}
	// Drain's barrier (GoAway, Ping, Pong) and the caller's GoAway gate
	// leave no request crossing the server's close: every call not marked
	// idempotent either ran once or was refused unsent and retried.
	if n := otherFailed.Load(); n != 0 {
		t.Fatalf("%d calls not marked idempotent failed, last: %v", n, lastOther.Load())
	}
	cl.Close()
	if cl.State() != ClientClosed {
		t.Fatalf("state %v after Close", cl.State())
	}
	if err := cl.Call(context.Background(), mEcho, make([]byte, 8), nil, nil); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

// A call's error says whether its request left: a call in flight when the
// session ends is not Unsent (it may have run), one made after is.
func TestCallErrorUnsent(t *testing.T) {
	s, p := newRawPeer(t, true, Options{})
	p.acceptHello(t, s, wire.Settings{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := s.Caller()
	defer cl.Close()
	inFlight := make(chan error, 1)
	go func() { _, err := call(ctx, cl, mEcho, nil); inFlight <- err }()
	p.nextKind(t, wire.KindRequest)
	p.link.Close() // the peer goes away with the request unanswered
	var ce *CallError
	if err := <-inFlight; !errors.As(err, &ce) || ce.Unsent || !IsRetryable(err) {
		t.Fatalf("call in flight: %v (Unsent %v)", err, ce != nil && ce.Unsent)
	}
	_, err := call(ctx, cl, mEcho, nil)
	if !errors.As(err, &ce) || !ce.Unsent || !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("call after the end: %v", err)
	}
	if !retrySafe(err, false) {
		t.Fatal("an unsent call is not retried")
	}
}

// A Client that cannot reach its peer makes a call wait for a session
// only as long as the call's context allows: then Cancelled, with the
// context's error beneath, while the Client stays Connecting; after Close
// a call fails with ErrClientClosed at once.
func TestClientCallWithoutASession(t *testing.T) {
	refused := errors.New("connection refused")
	var dials atomic.Int64
	cl := NewClient(func(ctx context.Context) (*Session, error) {
		dials.Add(1)
		return nil, refused
	}, ClientOptions{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	testwait.For(t, "a few dial attempts", func() bool { return dials.Load() >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := cl.Call(ctx, mEcho, []byte("x"), nil, nil)
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call with no session: %v", err)
	}
	if got := cl.State(); got != ClientConnecting || got.String() != "connecting" {
		t.Fatalf("state %v", got)
	}
	cl.Close()
	if err := cl.Call(context.Background(), mEcho, []byte("x"), nil, nil); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("a call after Close: %v", err)
	}
	if got := cl.State().String(); got != "closed" {
		t.Fatalf("state after Close: %q", got)
	}
}

// A call is tried at most Attempts times, and its error is the last
// try's: here every try's session ends under the call (the server's
// handler closes it), which an idempotent call retries on a new session
// and any other call does not (it may have run).
func TestClientAttemptsExhausted(t *testing.T) {
	var runs atomic.Int64
	var servers sync.Map // each server session's root *Conn -> its *Session
	r := NewRouter()
	r.Handle(mEcho, func(ctx context.Context, req *Request) error {
		runs.Add(1)
		if s, ok := servers.Load(req.Conn()); ok {
			go s.(*Session).Close() // Close waits for this handler
		}
		<-ctx.Done()
		return ctx.Err()
	})
	cl := NewClient(func(ctx context.Context) (*Session, error) {
		c, s, err := Pipe(ctx, Options{}, Options{Router: r})
		if err == nil {
			servers.Store(s.Root(), s)
		}
		return c, err
	}, ClientOptions{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, Attempts: 3})
	defer func() {
		cl.Close()
		servers.Range(func(_, s any) bool { s.(*Session).Close(); return true })
	}()
	for _, idempotent := range []bool{true, false} {
		runs.Store(0)
		err := cl.Call(context.Background(), mEcho, nil, &ClientCallOptions{Idempotent: idempotent}, nil)
		if !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("idempotent %v: %v, want the last try's ConnectionClosed", idempotent, err)
		}
		if want := map[bool]int64{true: 3, false: 1}[idempotent]; runs.Load() != want {
			t.Fatalf("idempotent %v: ran %d times, want %d", idempotent, runs.Load(), want)
		}
	}
}

// Close ends a session that is still draining (the server sent GoAway and
// a call on it has not finished): the call fails at once, and Close
// neither waits for the server to finish nor leaves the session behind.
func TestClientCloseEndsADrainingSession(t *testing.T) {
	started := make(chan struct{}, 1)
	r := NewRouter()
	r.Handle(mBlock, func(ctx context.Context, req *Request) error {
		started <- struct{}{}
		<-ctx.Done() // until the session ends
		return ctx.Err()
	})
	var server *Session
	var dials atomic.Int64
	cl := NewClient(func(ctx context.Context) (*Session, error) {
		if dials.Add(1) > 1 {
			return nil, errors.New("the server is draining")
		}
		c, s, err := Pipe(ctx, Options{}, Options{Router: r})
		server = s
		return c, err
	}, ClientOptions{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	inFlight := make(chan error, 1)
	go func() { inFlight <- cl.Call(context.Background(), mBlock, nil, nil, nil) }()
	testwait.Recv(t, "the handler to start", started)
	drained := make(chan error, 1)
	go func() { drained <- server.Drain(context.Background()) }() // waits for the handler
	testwait.For(t, "the Client to see the GoAway", func() bool { return cl.State() == ClientDraining || dials.Load() > 1 })
	closed := make(chan struct{})
	go func() { cl.Close(); close(closed) }()
	testwait.Recv(t, "Close", closed)
	if err := testwait.Recv(t, "the call's end", inFlight); !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("the call on the draining session: %v", err)
	}
	if err := testwait.Recv(t, "the server's Drain", drained); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}
