package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// ClientState is where a Client's session stands.
type ClientState int32

const (
	// ClientConnecting: no usable session; the Client is dialling (or
	// waiting out its back-off before the next attempt).
	ClientConnecting ClientState = iota
	// ClientReady: calls go to an established session.
	ClientReady
	// ClientDraining: the server sent GoAway; the Client is dialling a
	// new session while the old one finishes its calls.
	ClientDraining
	// ClientClosed: Close was called.
	ClientClosed
)

func (s ClientState) String() string {
	switch s {
	case ClientConnecting:
		return "connecting"
	case ClientReady:
		return "ready"
	case ClientDraining:
		return "draining"
	case ClientClosed:
		return "closed"
	}
	return "unknown"
}

// ErrClientClosed is returned by calls on a closed Client.
var ErrClientClosed = errors.New("rove: client closed")

// ClientOptions configure a Client. The zero value means the defaults.
type ClientOptions struct {
	// Backoff between failed dials: the first wait is BackoffMin, each
	// next one BackoffFactor times longer, up to BackoffMax, each with
	// ±20% jitter so that clients of a restarted server do not redial in
	// step. Defaults 100 ms, 1.6, 10 s.
	BackoffMin, BackoffMax time.Duration
	BackoffFactor          float64
	// Attempts bounds the tries of a call the Client may repeat
	// (including the first). Default 4.
	Attempts int
	// PerTry bounds each try of a retried call; 0: only the call's own
	// context bounds it.
	PerTry time.Duration
	// OnState, if set, is told each state change, on the Client's
	// goroutine (it must not block).
	OnState func(ClientState)
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 10 * time.Second
	}
	if o.BackoffFactor < 1 {
		o.BackoffFactor = 1.6
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	return o
}

// Client keeps a session to one peer: it dials, redials with exponential
// back-off and jitter when the session ends, and opens a new session as
// soon as the server sends GoAway (so calls keep flowing while a server
// drains). Its Call retries what is safe to retry: any call that provably
// did not run (refused Unavailable by a draining server, never sent),
// and a call marked Idempotent that failed as retryable.
//
// A Client runs one goroutine of its own until Close. Its methods are
// safe from any goroutine.
type Client struct {
	dial func(ctx context.Context) (*Session, error)
	opts ClientOptions

	mu       sync.Mutex
	cur      *Session      // the session new calls go to; nil while connecting
	ready    chan struct{} // closed when cur is set; replaced when it is cleared
	gone     chan struct{} // closed when cur is cleared; replaced when it is set
	state    ClientState
	waiters  sync.WaitGroup        // goroutines closing drained sessions
	draining map[*Session]struct{} // sessions that got GoAway and still finish calls (under mu)
	closed   bool
	cancel   context.CancelFunc
	ctx      context.Context
	stopped  chan struct{} // closed when the goroutine has ended
}

// NewClient starts a Client that makes its sessions with dial, typically
// a closure over Dial or DialConn with the transport, address and
// Options. The first dial starts at once; calls wait for a session.
func NewClient(dial func(ctx context.Context) (*Session, error), opts ClientOptions) *Client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{dial: dial, opts: opts.withDefaults(), ready: make(chan struct{}), draining: map[*Session]struct{}{},
		ctx: ctx, cancel: cancel, stopped: make(chan struct{})}
	go c.run()
	return c
}

// State returns the Client's state now.
func (c *Client) State() ClientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Client) setState(s ClientState) {
	c.mu.Lock()
	changed := c.state != s && c.state != ClientClosed
	if changed {
		c.state = s
	}
	c.mu.Unlock()
	if changed && c.opts.OnState != nil {
		c.opts.OnState(s)
	}
}

// run dials, serves calls through the session until it ends or the
// server sends GoAway, and dials again, until Close.
func (c *Client) run() {
	defer close(c.stopped)
	defer func() {
		c.mu.Lock()
		old := make([]*Session, 0, len(c.draining))
		for s := range c.draining {
			old = append(old, s)
		}
		c.mu.Unlock()
		for _, s := range old {
			s.Close()
		}
		c.waiters.Wait()
	}()
	for c.ctx.Err() == nil {
		s := c.dialWithBackoff()
		if s == nil {
			return // closed
		}
		c.mu.Lock()
		c.cur, c.gone = s, make(chan struct{})
		close(c.ready)
		c.mu.Unlock()
		c.setState(ClientReady)
		select {
		case <-s.Done():
		case <-s.goAway:
			// Keep the old session until the server ends it: its calls
			// in flight finish there. New calls wait for the next one.
			c.mu.Lock()
			c.draining[s] = struct{}{}
			c.mu.Unlock()
			c.waiters.Go(func() {
				<-s.Done()
				s.Close()
				c.mu.Lock()
				delete(c.draining, s)
				c.mu.Unlock()
			})
			c.setState(ClientDraining)
		case <-c.ctx.Done():
		}
		c.mu.Lock()
		c.cur, c.ready = nil, make(chan struct{})
		close(c.gone)
		c.mu.Unlock()
		switch {
		case c.ctx.Err() != nil:
			s.Close() // Close won the race with anything else: no session outlives it
		case !s.peerGoAway.Load():
			c.setState(ClientConnecting)
			s.Close()
		}
	}
}

// dialWithBackoff dials until a session is established or Close; nil
// then.
func (c *Client) dialWithBackoff() *Session {
	wait := c.opts.BackoffMin
	for {
		s, err := c.dial(c.ctx)
		if err == nil {
			return s
		}
		if c.ctx.Err() != nil {
			return nil
		}
		c.setState(ClientConnecting) // also after a drain: the old session is on its way out
		jittered := time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(jittered)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil
		}
		wait = min(time.Duration(float64(wait)*c.opts.BackoffFactor), c.opts.BackoffMax)
	}
}

// session waits for a usable session, within ctx.
func (c *Client) session(ctx context.Context) (*Session, error) {
	for {
		c.mu.Lock()
		s, ready, gone, closed := c.cur, c.ready, c.gone, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClientClosed
		}
		if s != nil {
			if s.Err() == nil && !s.peerGoAway.Load() {
				return s, nil
			}
			ready = gone // ending: wait for the Client to let go of it
		}
		select {
		case <-ready:
		case <-c.stopped:
		case <-ctx.Done():
			return nil, &CallError{Kind: ErrCancelled, Cause: ctx.Err(), Message: "no session to the peer yet"}
		}
	}
}

// ClientCallOptions are the per-call options of Client.Call.
type ClientCallOptions struct {
	CallOptions
	// Idempotent says the call may run more than once with the same
	// effect: the Client then retries it after any retryable failure,
	// including a session that ended after the request was sent. A call
	// not marked so is retried only when it provably did not run.
	Idempotent bool
}

// Call is Caller.Call on the Client's current session, waiting for one
// within ctx, and retried (up to Attempts, each try bounded by PerTry)
// as ClientCallOptions allow. The error is the last try's. opts may be
// nil; channels cannot be bound through a Client (they belong to one
// session). opts.While, if set, runs once per try whose request went out.
func (c *Client) Call(ctx context.Context, m Method, req []byte, opts *ClientCallOptions, fn func(Reply) error) error {
	var co *CallOptions
	idempotent := false
	if opts != nil {
		co, idempotent = &opts.CallOptions, opts.Idempotent
	}
	var err error
	for try := 0; try < c.opts.Attempts; try++ {
		var s *Session
		if s, err = c.session(ctx); err != nil {
			return err
		}
		err = c.try(ctx, s, m, req, co, fn)
		if err == nil || !retrySafe(err, idempotent) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (c *Client) try(ctx context.Context, s *Session, m Method, req []byte, opts *CallOptions, fn func(Reply) error) error {
	if c.opts.PerTry > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.PerTry)
		defer cancel()
	}
	return s.root.invoke(ctx, m, req, opts, fn)
}

// retrySafe says whether a failed call may be tried again: it did not
// run (a draining server refused it, or it was never sent), or it is
// idempotent and the failure is retryable.
func retrySafe(err error, idempotent bool) bool {
	var ce *CallError
	if !errors.As(err, &ce) || !ce.Retryable() {
		return false
	}
	// Unavailable: a draining peer refused it without running it.
	notRun := ce.Unsent || ce.Kind == ErrUnavailable || ce.Kind == ErrSendFailed
	return notRun || idempotent
}

// Close stops redialling, closes the Client's sessions (calls in flight
// fail) and waits for its goroutine.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.setState(ClientClosed)
	c.cancel()
	<-c.stopped
	return nil
}
