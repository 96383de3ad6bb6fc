package core

import (
	"context"
	"runtime"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// An idle session on gnet costs no goroutine, one descriptor per side and
// under 8 KiB of heap per side: buffers, tables, maps and the handler pool
// are made on first use, and the read buffer goes back to its pool between
// reads. Both sides run in this process, so the bound is checked on their
// sum (bench/idle measures each side in its own process).
func TestIdleSessionCost(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	testwait.OpenFDs(t) // skips where descriptors cannot be counted
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	defer tr.Close()
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", Options{Router: echoRouter()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dial := func() *Session {
		s, err := Dial(context.Background(), tr, "tcp", srv.Addr().String(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	warm := dial() // starts the client engine and warms the pools
	defer warm.Close()
	cl := warm.Caller()
	if _, err := call(context.Background(), cl, mEcho, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	fds := func() int { return testwait.OpenFDs(t) }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// Ours, and the goroutines each ants pool keeps (gnet's dial pool has
	// two as well, already running before the baseline).
	ours := []string{"github.com/rove-rpc/rove/", "ants/v2.(*poolCommon).goPurge", "ants/v2.(*poolCommon).goTicktock"}
	fd0, g0 := fds(), testwait.Goroutines(ours...)
	const n = 200
	sessions := make([]*Session, n)
	for i := range sessions {
		sessions[i] = dial()
	}
	if !testwait.Until(func() bool { return len(srv.snapshot()) == n+1 }) {
		for i, s := range append(sessions, warm) {
			if s.Err() != nil {
				t.Log(i, s.Err())
			}
		}
		t.Fatalf("%d sessions on the server, want %d", len(srv.snapshot()), n+1)
	}
	// A writer or teardown goroutine may still be finishing: wait for the
	// count to settle (it never would with a goroutine per session).
	settled := testwait.Until(func() bool { return testwait.Goroutines(ours...) <= g0 })
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSession := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	goroutines, descriptors := testwait.Goroutines(ours...)-g0, fds()-fd0
	for _, s := range sessions {
		s.Close()
	}
	// Descriptors of the sessions a previous run closed may still be
	// closing: a few either way, but not two per side.
	if !settled || descriptors < 2*n-4 || descriptors > 2*n+4 {
		t.Errorf("%d idle sessions: %d more goroutines, %d more descriptors (want 0 and %d)", n, goroutines, descriptors, 2*n)
	}
	if perSession > 2*8<<10 {
		t.Errorf("an idle session costs %d bytes of heap on both sides together, want at most 16 KiB", perSession)
	}
	t.Logf("per idle session, both sides: %d B heap", perSession)
}
