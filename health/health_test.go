package health

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/internal/testwait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

func serve(t *testing.T, hs *Server) *core.Caller {
	t.Helper()
	r := core.NewRouter()
	hs.Register(r)
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	cl := client.Caller()
	t.Cleanup(func() { cl.Close(); client.Close(); server.Close() })
	return cl
}

func (s *Server) watcherCount(service string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers[service])
}

// Check answers the status set, SERVICE_UNKNOWN for a service with none.
func TestCheck(t *testing.T) {
	hs := NewServer()
	hs.SetStatus("kv", NotServing)
	cl := serve(t, hs)
	ctx := context.Background()
	for service, want := range map[string]Status{"": Serving, "kv": NotServing, "nope": ServiceUnknown} {
		if got, err := CheckStatus(ctx, cl, service); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", service, got, err, want)
		}
	}
	hs.Shutdown()
	if got, _ := CheckStatus(ctx, cl, ""); got != NotServing {
		t.Errorf("after Shutdown: %v", got)
	}
}

// Watch sends the status now and each change; when the watcher stops,
// the server lets go of it without waiting for another change.
func TestWatch(t *testing.T) {
	hs := NewServer()
	cl := serve(t, hs)
	// No deadline: it would travel to the handler and end the watch on
	// its own. WatchStatus returns when fn says stop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []Status
	err := WatchStatus(ctx, cl, "kv", func(st Status) bool {
		seen = append(seen, st)
		switch len(seen) {
		case 1:
			hs.SetStatus("kv", Serving)
		case 2:
			hs.SetStatus("kv", NotServing)
		}
		return len(seen) < 3
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != ServiceUnknown || seen[1] != Serving || seen[2] != NotServing {
		t.Fatalf("saw %v", seen)
	}
	testwait.For(t, "the server to drop the watcher", func() bool { return hs.watcherCount("kv") == 0 })
}

// A watch of a service that has no status holds nothing once it ends: the
// name is the peer's, so each name left behind would let a peer grow the
// server's memory by watching names that do not exist.
func TestWatchesLeaveNothingBehind(t *testing.T) {
	hs := NewServer()
	cl := serve(t, hs)
	ctx := context.Background()
	for _, service := range []string{"a", "b", "a", "c"} {
		err := WatchStatus(ctx, cl, service, func(st Status) bool { return st != ServiceUnknown })
		if err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, "every watch let go", func() bool {
		hs.mu.Lock()
		defer hs.mu.Unlock()
		return len(hs.watchers) == 0
	})
}
