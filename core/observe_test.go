package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recordingStats keeps every report.
type recordingStats struct {
	mu       sync.Mutex
	calls    []CallStats
	starts   []SessionInfo
	ends     []error
	endInfos []SessionInfo
}

func (r *recordingStats) SessionStart(i SessionInfo) {
	r.mu.Lock()
	r.starts = append(r.starts, i)
	r.mu.Unlock()
}
func (r *recordingStats) SessionEnd(i SessionInfo, err error) {
	r.mu.Lock()
	r.ends, r.endInfos = append(r.ends, err), append(r.endInfos, i)
	r.mu.Unlock()
}
func (r *recordingStats) CallEnd(c CallStats) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recordingStats) snapshot() ([]CallStats, int, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CallStats(nil), r.calls...), len(r.starts), append([]error(nil), r.ends...)
}

// Options.Stats reports each call on both sides (method, code, sizes),
// and each session's start and end with its cause.
func TestStatsReports(t *testing.T) {
	clientStats, serverStats := &recordingStats{}, &recordingStats{}
	get := NewMethod("kv", "Get")
	r := NewRouter()
	r.Handle(get, func(ctx context.Context, req *Request) error {
		if string(req.Payload()) == "missing" {
			return Errorf(NotFound, "no key")
		}
		return req.Reply([]byte("value!"), nil)
	})
	client, server := transports()[0].pair(t,
		Options{Stats: clientStats, Metadata: Metadata{}.Add("app", StringValue("test"), 0)},
		Options{Stats: serverStats, Router: r})
	cl := client.Caller()
	if _, err := call(context.Background(), cl, get, []byte("key")); err != nil {
		t.Fatal(err)
	}
	if _, err := call(context.Background(), cl, get, []byte("missing")); CodeOf(err) != NotFound {
		t.Fatal(err)
	}
	if _, err := call(context.Background(), cl, mSlow, nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatal(err)
	}
	cl.Close()
	client.Close()
	waitDone(t, server)

	calls, starts, ends := clientStats.snapshot()
	if starts != 1 || len(ends) != 1 || !errors.Is(ends[0], ErrSessionClosed) {
		t.Fatalf("client sessions: %d starts, ends %v", starts, ends)
	}
	want := []struct {
		name      string
		code      Code
		req, resp int
	}{{"Get", OK, 3, 6}, {"Get", NotFound, 7, 0}, {"slow", Unimplemented, 0, 0}}
	check := func(side string, calls []CallStats, served bool) {
		t.Helper()
		if len(calls) != len(want) {
			t.Fatalf("%s: %d calls reported: %+v", side, len(calls), calls)
		}
		for i, w := range want {
			c := calls[i]
			if c.Served != served || c.Code != w.code || c.RequestBytes != w.req || c.ResponseBytes != w.resp || c.Duration < 0 || c.Start.IsZero() {
				t.Errorf("%s call %d: %+v, want %+v", side, i, c, w)
			}
			if served && w.name == "Get" && c.Method.Name != "Get" {
				t.Errorf("%s call %d: method %+v", side, i, c.Method)
			}
			if !served && c.Method.Name != w.name {
				t.Errorf("%s call %d: method %+v", side, i, c.Method)
			}
			if (c.Code == OK && c.Err != nil) || (!served && c.Code != OK && c.Err == nil) {
				t.Errorf("%s call %d: code %v with error %v", side, i, c.Code, c.Err)
			}
		}
	}
	check("client", calls, false)
	scalls, sstarts, sends := serverStats.snapshot()
	// The server's response payloads: the encoded error, the reason text.
	want[1].resp = len(appendErrorPayload(nil, Errorf(NotFound, "no key")))
	want[2].resp = len(fmt.Sprintf("no method with id %#x", mSlow.ID))
	// A served call is reported once its response is out, so the next
	// call (refused at once on the reading goroutine) may be reported
	// first: take them in the order they started.
	slices.SortFunc(scalls, func(a, b CallStats) int { return a.Start.Compare(b.Start) })
	check("server", scalls, true)
	if sstarts != 1 || len(sends) != 1 {
		t.Fatalf("server sessions: %d starts, %d ends", sstarts, len(sends))
	}
	serverStats.mu.Lock()
	if v, ok := serverStats.starts[0].PeerMetadata.Get("app"); !ok || v.Str() != "test" {
		t.Errorf("server's SessionInfo lacks the peer's metadata: %+v", serverStats.starts[0])
	}
	serverStats.mu.Unlock()
}

// Options.Logger hears of sessions ending with their cause and of handler
// panics; a session without one logs nothing (nothing to check: there is
// no logger to write to).
func TestLoggerLifecycle(t *testing.T) {
	var buf syncBuffer
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boom := NewMethod("test", "boom")
	r := NewRouter()
	r.Handle(boom, func(ctx context.Context, req *Request) error { panic("kaboom") })
	client, server := transports()[0].pair(t, Options{}, Options{Router: r, Logger: lg})
	cl := client.Caller()
	if _, err := call(context.Background(), cl, boom, nil); !errors.Is(err, ErrInternal) {
		t.Fatal(err)
	}
	cl.Close()
	client.Close()
	waitDone(t, server)
	out := buf.String()
	for _, want := range []string{"rove: session open", "rove: handler panicked", "kaboom", "rove: session ended", "cause="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A session whose handshake fails is reported neither started nor ended:
// starts and ends pair up (a gauge of open sessions stays true).
func TestStatsFailedHandshakeNotReported(t *testing.T) {
	st := &recordingStats{}
	_, err := pairErrOpts(t, Options{Metadata: Metadata{}.Add("token", StringValue("bad"), 0)},
		Options{Stats: st, AcceptSession: requireToken})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("dial: %v", err)
	}
	_, starts, ends := st.snapshot()
	if starts != 0 || len(ends) != 0 {
		t.Fatalf("%d starts, %d ends for a refused session", starts, len(ends))
	}
}

// pairErrOpts is pairErr over the pipe listener, waiting for the server's
// sessions to end before returning.
func pairErrOpts(t *testing.T, co, so Options) (*Session, error) {
	t.Helper()
	ln := newPipeListener()
	srv, _ := ServeListener(ln, so)
	nc, err := ln.dial()
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialConn(context.Background(), nc, co)
	if c != nil {
		c.Close()
	}
	srv.Close() // waits for every session it accepted
	return c, err
}
