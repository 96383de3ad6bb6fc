package core

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// The soak: a realistic mix of work over a transport that fails on
// purpose, with its invariants checked all the time. CI runs the short
// mode; a long run is
//
//	go test -run TestSoak -soak.duration 30m -soak.report soak.txt ./core
var (
	soakDuration = flag.Duration("soak.duration", 0, "TestSoak: how long to run (0: the short mode, a few seconds)")
	soakReport   = flag.String("soak.report", "", "TestSoak: also write the report to this file")
)

var (
	mSoakSlow    = NewMethod("soak", "slow")
	mSoakReverse = NewMethod("soak", "reverse")
)

// soakStats counts what happened; violations must stay 0.
type soakStats struct {
	mu         sync.Mutex
	outcomes   map[string]int64
	faults     map[string]int64
	violations []string
	items      atomic.Int64
	started    atomic.Int64
	finished   atomic.Int64
	okRecent   atomic.Int64 // ok outcomes since the last check
}

func (s *soakStats) outcome(op string, err error) {
	s.finished.Add(1)
	kind := "ok"
	switch {
	case err == nil:
		s.okRecent.Add(1)
	case errors.Is(err, ErrCancelled):
		kind = "cancelled"
	case errors.Is(err, ErrConnectionClosed), errors.Is(err, ErrSessionClosed):
		kind = "connection closed"
	case errors.Is(err, ErrUnavailable):
		kind = "unavailable (draining)"
	case errors.Is(err, ErrSendFailed):
		kind = "send failed"
	case errors.Is(err, ErrProtocol):
		s.violation("%s: a protocol error between conforming peers: %v", op, err)
		kind = "protocol error"
	default:
		kind = "other: " + err.Error()
	}
	s.mu.Lock()
	s.outcomes[op+": "+kind]++
	s.mu.Unlock()
}

func (s *soakStats) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.violations) < 100 {
		s.violations = append(s.violations, fmt.Sprintf(format, args...))
	}
}

func (s *soakStats) fault(kind string) {
	s.mu.Lock()
	s.faults[kind]++
	s.mu.Unlock()
}

// faultProxy sits between the clients and the server and breaks links on
// request: cut (mid-frame: half of what it holds goes through), freeze
// (nothing goes through for a while), slow (a trickle).
type faultProxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	mu     sync.Mutex
	links  map[*proxyLink]struct{}
	wg     sync.WaitGroup
}

type proxyLink struct {
	a, b   net.Conn
	cut    atomic.Bool
	frozen atomic.Int64 // unix nanos until which nothing passes
	slow   atomic.Int64 // unix nanos until which bytes trickle
}

func newFaultProxy(t *testing.T) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, links: map[*proxyLink]struct{}{}}
	p.wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", *p.target.Load())
			if err != nil {
				a.Close()
				continue
			}
			l := &proxyLink{a: a, b: b}
			p.mu.Lock()
			p.links[l] = struct{}{}
			p.mu.Unlock()
			var both sync.WaitGroup
			both.Go(func() { p.pipe(l, a, b) })
			both.Go(func() { p.pipe(l, b, a) })
			p.wg.Go(func() {
				both.Wait()
				p.mu.Lock()
				delete(p.links, l)
				p.mu.Unlock()
			})
		}
	})
	return p
}

// pipe copies one direction, applying the link's faults.
func (p *faultProxy) pipe(l *proxyLink, from, to net.Conn) {
	defer from.Close()
	defer to.Close()
	buf := make([]byte, 8<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			for time.Now().UnixNano() < l.frozen.Load() && !l.cut.Load() {
				time.Sleep(5 * time.Millisecond) // a frozen network: nothing moves
			}
			if l.cut.Load() {
				to.Write(buf[:n/2]) // the link dies mid-frame
				return
			}
			chunk := n
			if time.Now().UnixNano() < l.slow.Load() {
				chunk = 64
			}
			for off := 0; off < n; off += chunk {
				if _, err := to.Write(buf[off:min(off+chunk, n)]); err != nil {
					return
				}
				if chunk < n {
					time.Sleep(200 * time.Microsecond) // a slow network
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) random(rng *rand.Rand) *proxyLink {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.links) == 0 {
		return nil
	}
	i := rng.IntN(len(p.links))
	for l := range p.links {
		if i == 0 {
			return l
		}
		i--
	}
	return nil
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for l := range p.links {
		l.a.Close()
		l.b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// soakRouter serves the mix: echo, slow, the channel testbed, and a call
// back to the caller.
func soakRouter() *Router {
	r := testbedRouter()
	r.Handle(mEcho, echo)
	r.Handle(mSoakSlow, func(ctx context.Context, req *Request) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(rand.IntN(30)) * time.Millisecond):
			return req.Reply(req.Payload(), nil)
		}
	})
	r.Handle(mSoakReverse, func(ctx context.Context, req *Request) error {
		cl := req.Conn().Caller()
		defer cl.Close()
		got, err := call(ctx, cl, mEcho, req.Payload())
		if err != nil {
			return err
		}
		return req.Reply(got, nil)
	})
	return r
}

// TestSoak runs the mix under faults and checks the invariants: every call
// has exactly one outcome and none hangs, no protocol error between
// conforming peers, every payload and every item of a channel that ended
// cleanly comes back exactly, in order, throughput recovers after every
// fault, what the server holds stays under its byte budget, and nothing is
// left behind.
func TestSoak(t *testing.T) {
	duration := *soakDuration
	if duration == 0 {
		duration = 4 * time.Second
		if testing.Short() {
			duration = 2 * time.Second
		}
	}
	stats := &soakStats{outcomes: map[string]int64{}, faults: map[string]int64{}}
	const budget = 4 << 20
	serverOpts := Options{Router: soakRouter(), ByteBudget: budget, KeepaliveInterval: 100 * time.Millisecond,
		KeepaliveTimeout: 400 * time.Millisecond, AcceptConn: acceptWith(echoRouter(), nil)}
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 2})
	defer tr.Close()
	var srvMu sync.Mutex
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", serverOpts)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newFaultProxy(t)
	addr := srv.Addr().String()
	proxy.target.Store(&addr)

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var clients sync.WaitGroup
	for i := range 4 {
		clients.Go(func() { soakClient(ctx, t, tr, proxy.ln.Addr().String(), stats, uint64(i)) })
	}

	// Faults, and the checks that run all the time.
	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(150 * time.Millisecond)
	lastFault, recovered := time.Time{}, true
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
			continue
		case <-tick.C:
		}
		if stats.okRecent.Swap(0) > 0 {
			recovered = true
		} else if !recovered && time.Since(lastFault) > 3*time.Second {
			stats.violation("no call succeeded for 3 s after a fault")
			recovered = true
		}
		srvMu.Lock()
		for _, s := range srv.snapshot() {
			if l := s.link.Load(); l != nil && l.Held() > budget+slack {
				stats.violation("a session holds %d bytes, budget %d", l.Held(), budget)
			}
		}
		srvMu.Unlock()
		switch f := rng.IntN(10); {
		case f < 3:
			if l := proxy.random(rng); l != nil {
				l.cut.Store(true)
				l.a.SetReadDeadline(time.Now()) // wake the copiers
				l.b.SetReadDeadline(time.Now())
				stats.fault("link cut mid-frame")
			}
		case f < 5:
			if l := proxy.random(rng); l != nil {
				l.frozen.Store(time.Now().Add(600 * time.Millisecond).UnixNano()) // longer than the keepalive timeout
				stats.fault("peer frozen past the keepalive timeout")
			}
		case f < 7:
			if l := proxy.random(rng); l != nil {
				l.slow.Store(time.Now().Add(300 * time.Millisecond).UnixNano())
				stats.fault("slow link")
			}
		case f < 8:
			// Drain and restart: new sessions go to the new server.
			old := srv
			next, err := Serve(tr, "tcp", "127.0.0.1:0", serverOpts)
			if err != nil {
				t.Fatal(err)
			}
			a := next.Addr().String()
			proxy.target.Store(&a)
			srvMu.Lock()
			srv = next
			srvMu.Unlock()
			dctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			old.Drain(dctx)
			cancel()
			old.Close()
			if n := len(old.snapshot()); n != 0 {
				stats.violation("a drained server kept %d sessions", n)
			}
			stats.fault("server drained and restarted")
		default:
			stats.fault("burst of cancels") // the clients cancel on their own; this marks the burst
			soakCancelBurst.Store(true)
		}
		lastFault, recovered = time.Now(), false
	}
	tick.Stop()
	clients.Wait()
	if s, f := stats.started.Load(), stats.finished.Load(); s != f {
		stats.violation("%d calls started, %d finished: some had no outcome", s, f)
	}
	proxy.close()
	srv.Close()
	testwait.For(t, "every session of the soak to end", func() bool { return len(srv.snapshot()) == 0 })

	report := soakText(duration, stats)
	t.Log("\n" + report)
	if *soakReport != "" {
		os.WriteFile(*soakReport, []byte(report), 0o644)
	}
	if len(stats.violations) > 0 {
		t.Fatalf("%d invariant violations", len(stats.violations))
	}
}

// soakCancelBurst makes every client cancel its next calls at once.
var soakCancelBurst atomic.Bool

// soakClient keeps a session open through the proxy, redialling when a
// fault ends it, and runs workers on it until ctx ends.
func soakClient(ctx context.Context, t *testing.T, tr netpoll.Transport, addr string, stats *soakStats, seed uint64) {
	for ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := Dial(dctx, tr, "tcp", addr, Options{Router: echoRouter(),
			KeepaliveInterval: 100 * time.Millisecond, KeepaliveTimeout: 400 * time.Millisecond})
		cancel()
		if err != nil {
			continue // the server is restarting, or the dial was cut
		}
		var workers sync.WaitGroup
		for w := range 6 {
			workers.Go(func() { soakWorker(ctx, s, stats, rand.New(rand.NewPCG(seed, uint64(w)))) })
		}
		workers.Wait()
		s.Close()
	}
}

// soakWorker runs operations on s until ctx ends or s does.
func soakWorker(ctx context.Context, s *Session, stats *soakStats, rng *rand.Rand) {
	cl := s.Caller()
	defer cl.Close()
	for ctx.Err() == nil && s.Err() == nil {
		op := rng.IntN(7)
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // a guard: nothing may hang
		if soakCancelBurst.Swap(false) || rng.IntN(20) == 0 {
			after := time.Duration(rng.IntN(2000)) * time.Microsecond // rng is this goroutine's
			time.AfterFunc(after, cancel)
		}
		stats.started.Add(1)
		start := time.Now()
		name, err := soakOp(cctx, s, cl, op, rng, stats)
		if time.Since(start) >= 5*time.Second {
			stats.violation("%s hung for 5 s: %v", name, err)
		}
		cancel()
		stats.outcome(name, err)
	}
}

func soakOp(ctx context.Context, s *Session, cl *Caller, op int, rng *rand.Rand, stats *soakStats) (string, error) {
	payload := make([]byte, rng.IntN(4096))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	switch op {
	case 0, 1:
		got, err := call(ctx, cl, mEcho, payload)
		if err == nil && string(got) != string(payload) {
			stats.violation("echo returned another payload")
		}
		return "echo", err
	case 2:
		dctx, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
		defer cancel()
		got, err := call(dctx, cl, mSoakSlow, payload)
		if err == nil && string(got) != string(payload) {
			stats.violation("slow echo returned another payload")
		}
		return "deadline", err
	case 3:
		n := 50 + rng.IntN(200)
		rx := NewRx[int](cl.Conn(), 8)
		defer rx.Close()
		type seq struct {
			items int
			err   error // nil: the channel ended cleanly
		}
		done := make(chan seq, 1)
		go func() { i, err := soakSequence(ctx, rx, stats); done <- seq{i, err} }()
		_, err := call(ctx, cl, mGenerate, fmt.Appendf(nil, "%d", n), &CallOptions{Channels: []Channel{rx}})
		if err != nil {
			// A call that failed (refused while draining, cancelled, cut)
			// may leave its channel short: it did not complete.
			rx.Reset()
			<-done
			return "stream down", err
		}
		got := <-done
		if got.err == nil && got.items != n {
			stats.violation("a channel of a call that succeeded ended cleanly after %d of %d items", got.items, n)
		}
		return "stream down", got.err
	case 4:
		n := 1 + rng.IntN(100)
		tx := NewTx[int](cl.Conn(), 8)
		go func() {
			for i := range n {
				if tx.Send(ctx, i) != nil {
					break
				}
			}
			tx.Close()
		}()
		got, err := call(ctx, cl, mSum, nil, &CallOptions{Channels: []Channel{tx}})
		if err == nil && string(got) != fmt.Sprint(n*(n-1)/2) {
			stats.violation("stream up summed to %s, want %d", got, n*(n-1)/2)
		}
		return "stream up", err
	case 5:
		got, err := call(ctx, cl, mSoakReverse, payload)
		if err == nil && string(got) != string(payload) {
			stats.violation("a call back returned another payload")
		}
		return "call back", err
	default:
		c, err := s.OpenConn(ctx, ConnOptions{})
		if err != nil {
			return "virtual connection", err
		}
		vcl := c.Caller()
		got, err := call(ctx, vcl, mEcho, payload)
		vcl.Close()
		c.Close()
		if err == nil && string(got) != string(payload) {
			stats.violation("echo on a virtual connection returned another payload")
		}
		return "virtual connection", err
	}
}

// soakSequence reads 0, 1, 2, ... until the channel ends: no item may be
// lost, duplicated or reordered. It returns how many came, and the error
// that ended the channel (nil: a clean end).
func soakSequence(ctx context.Context, rx *Rx[int], stats *soakStats) (int, error) {
	for i := 0; ; i++ {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			return i, nil
		}
		if err != nil {
			return i, err // the channel failed: its items up to here were checked
		}
		if v != i {
			stats.violation("item %d of a channel was %d (lost, duplicated or reordered)", i, v)
			return i, nil
		}
		stats.items.Add(1)
	}
}

func soakText(d time.Duration, s *soakStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %v, %d calls (%d finished), %d channel items checked\n", d, s.started.Load(), s.finished.Load(), s.items.Load())
	b.WriteString("faults injected:\n")
	for _, k := range sortedKeys(s.faults) {
		fmt.Fprintf(&b, "  %-42s %d\n", k, s.faults[k])
	}
	b.WriteString("outcomes:\n")
	for _, k := range sortedKeys(s.outcomes) {
		fmt.Fprintf(&b, "  %-42s %d\n", k, s.outcomes[k])
	}
	fmt.Fprintf(&b, "violations: %d\n", len(s.violations))
	for _, v := range s.violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
