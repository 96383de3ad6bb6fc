package core

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/puzpuzpuz/xsync/v3"
)

// The claim protocol: exactly one of response, abandon and teardown wins
// each call, and a stale id never claims a newer call.
func TestPendingTableClaims(t *testing.T) {
	var tb pendingTable
	tb.init(4, 1)
	a := &outCall{}
	id := tb.insert(a)
	if id != 1 {
		t.Fatalf("first id %d", id)
	}
	if !tb.abandon(a) {
		t.Fatal("abandon of a pending call failed")
	}
	if got, k := tb.take(id); got != a || k != claimAbandoned {
		t.Fatal("the late response did not find the abandoned call")
	}
	if got, _ := tb.take(id); got != nil {
		t.Fatal("claimed twice")
	}
	// Reuse the same object for a new id: the old id must not claim it.
	id2 := tb.insert(a)
	if got, _ := tb.take(id); got != nil {
		t.Fatal("a stale id claimed a newer call")
	}
	if tb.abandon(&outCall{id: id2, key: tb.key(id2)}) {
		t.Fatal("abandon by a different object")
	}
	n := 0
	tb.drain(func(*outCall, claimKind) { n++ })
	if n != 1 {
		t.Fatalf("drain claimed %d", n)
	}
	if got, _ := tb.take(id2); got != nil {
		t.Fatal("claimed after drain")
	}
}

// A table claims only its own calls: an outCall comes from a
// process-wide pool, so a pointer a table loaded may by now be live on
// another connection, with the same request id. Neither teardown's claim
// nor a response for that id may take it there.
func TestPendingTableClaimsOnlyItsOwn(t *testing.T) {
	var t1, t2 pendingTable
	t1.init(4, 1)
	t2.init(4, 1)
	oc := &outCall{}
	id := t2.insert(oc) // live on the other connection...
	if id != 1 {
		t.Fatalf("first id %d", id)
	}
	if ok, _ := t1.claim(oc); ok { // ...as a stale pointer of this one sees it
		t.Fatal("a table claimed another table's call")
	}
	id1 := t1.insert(&outCall{}) // the same id, live here too
	if id1 != id {
		t.Fatalf("ids %d and %d", id1, id)
	}
	if got, _ := t2.take(id); got != oc {
		t.Fatal("the other table lost its call")
	}
}

// A long call holding a slot makes the allocator skip its slot, never
// overwrite it.
func TestPendingTableSkipsBusySlot(t *testing.T) {
	var tb pendingTable
	tb.init(2, 2) // 4 slots, even ids
	long := &outCall{}
	longID := tb.insert(long)
	for range 20 {
		c := &outCall{}
		id := tb.insert(c)
		if got, _ := tb.take(id); got != c {
			t.Fatal("lost a short call")
		}
	}
	if got, _ := tb.take(longID); got != long {
		t.Fatal("the long call was overwritten")
	}
}

// BenchmarkPendingTable: register and complete one pending call, from
// parallel callers, in the slot table Rove uses and in the alternatives
// DESIGN.md names. Run with -cpu 1,2 to see scaling.
func BenchmarkPendingTable(b *testing.B) {
	b.Run("slots", func(b *testing.B) {
		var tb pendingTable
		tb.init(4096, 1)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := &outCall{}
			for pb.Next() {
				id := tb.insert(c)
				if got, _ := tb.take(id); got != c {
					b.Fatal("lost")
				}
			}
		})
	})
	// The alternatives: register with store, complete with take.
	mapBench := func(name string, store func(uint64, *outCall), take func(uint64) (*outCall, bool)) {
		b.Run(name, func(b *testing.B) {
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := &outCall{}
				for pb.Next() {
					id := next.Add(2)
					store(id, c)
					if got, ok := take(id); !ok || got != c {
						b.Fatal("lost")
					}
				}
			})
		})
	}
	xm := xsync.NewMapOf[uint64, *outCall]()
	mapBench("xsync.MapOf", xm.Store, xm.LoadAndDelete)
	var sm sync.Map
	mapBench("sync.Map", func(id uint64, c *outCall) { sm.Store(id, c) }, func(id uint64) (*outCall, bool) {
		v, ok := sm.LoadAndDelete(id)
		c, _ := v.(*outCall)
		return c, ok
	})
	var mu sync.Mutex
	m := make(map[uint64]*outCall)
	mapBench("mutex+map", func(id uint64, c *outCall) {
		mu.Lock()
		m[id] = c
		mu.Unlock()
	}, func(id uint64) (*outCall, bool) {
		mu.Lock()
		defer mu.Unlock()
		c, ok := m[id]
		delete(m, id)
		return c, ok
	})
}

// An inline handler's Request is reused only on its own connection: a
// pooled Request shared between connections could be cancelled by the
// teardown of a connection it no longer belongs to.
func TestInlineRequestStaysOnItsConnection(t *testing.T) {
	var mu sync.Mutex
	owner := map[*Request]*Conn{}
	moved := 0
	r := NewRouter()
	r.HandleInline(mEcho, func(ctx context.Context, req *Request) error {
		mu.Lock()
		if c, ok := owner[req]; ok && c != req.Conn() {
			moved++
		}
		owner[req] = req.Conn()
		mu.Unlock()
		return req.Reply(nil, nil)
	})
	a, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	b, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	ca, cb := a.Caller(), b.Caller()
	defer ca.Close()
	defer cb.Close()
	for range 200 {
		for _, cl := range []*Caller{ca, cb} {
			if _, err := call(context.Background(), cl, mEcho, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if moved > 0 {
		t.Fatalf("a Request served calls of two connections %d times", moved)
	}
}

// Teardown's drain may claim a call while its caller abandons it: neither
// may write what the other reads (the race detector checks; a claim once
// recorded its result in the call's key, which abandon reads).
func TestDrainWhileAbandoning(t *testing.T) {
	for range 100 {
		var tab pendingTable
		tab.init(8, 1)
		oc := &outCall{}
		tab.insert(oc)
		start := make(chan struct{})
		done := make(chan bool, 1)
		go func() {
			<-start
			done <- tab.abandon(oc)
		}()
		close(start)
		drained := 0
		tab.drain(func(*outCall, claimKind) { drained++ })
		if abandoned := <-done; drained != 1 {
			t.Fatalf("drained %d calls (abandoned first: %v), want the one", drained, abandoned)
		}
	}
}

// A connection that has used every request id of its parity fails each
// further call at once (ConnectionClosed: open a new connection), and
// gives back the call's slot under the peer's limit: an id is never
// reused, which would let a late response complete another call.
func TestRequestIDsExhausted(t *testing.T) {
	r := NewRouter()
	r.HandleInline(mEcho, echo)
	client, _ := transports()[0].pair(t, Options{}, Options{Router: r})
	root := client.root
	root.pending.next.Store((maxOwnID - root.pending.first) / 2) // the last id
	cl := client.Caller()
	defer cl.Close()
	if got, err := call(context.Background(), cl, mEcho, []byte("last")); err != nil || string(got) != "last" {
		t.Fatalf("the last id's call: %q, %v", got, err)
	}
	for range 2 { // the second finds its slot given back, or it would wait
		_, err := call(context.Background(), cl, mEcho, []byte("one too many"))
		var ce *CallError
		if !errors.Is(err, ErrConnectionClosed) || !errors.As(err, &ce) || ce.Message != errIDsExhausted.Message {
			t.Fatalf("a call past the last id: %v", err)
		}
	}
	if n := root.slots.inUse(); n != 0 {
		t.Fatalf("%d slots still taken", n)
	}
}

// spec:18 the inbound table keeps a request whose id collides with a
// live one in its slot array in its overflow map: found there, refused
// as a duplicate there, and gone from there once removed; the lookups
// skip the map only while nothing is in it.
func TestInboundTableOverflow(t *testing.T) {
	var tab inboundTable
	tab.init(4) // 8 slots: ids 1 and 17 share slot 0
	first, second := &Request{id: 1}, &Request{id: 17}
	if !tab.insert(first) || !tab.insert(second) {
		t.Fatal("a fresh id was refused")
	}
	if n := tab.spilled.Load(); n != 1 {
		t.Fatalf("%d requests in the overflow map, want 1", n)
	}
	if tab.lookup(17) != second || tab.lookup(1) != first {
		t.Fatal("a live request was not found")
	}
	if tab.insert(&Request{id: 17}) {
		t.Fatal("the id of a request in the overflow map was taken twice")
	}
	tab.remove(second)
	if tab.lookup(17) != nil || tab.spilled.Load() != 0 || tab.live.Load() != 1 {
		t.Fatalf("after the remove: lookup %p, spilled %d, live %d", tab.lookup(17), tab.spilled.Load(), tab.live.Load())
	}
	if !tab.insert(&Request{id: 17}) {
		t.Fatal("a removed id could not be reused")
	}
}
