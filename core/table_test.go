package core

import (
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
	if got, gaveUp := tb.take(id); got != a || !gaveUp {
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
	if tb.abandon(&outCall{id: id2}) {
		t.Fatal("abandon by a different object")
	}
	n := 0
	tb.drain(func(c *outCall, gaveUp bool) { n++ })
	if n != 1 {
		t.Fatalf("drain claimed %d", n)
	}
	if got, _ := tb.take(id2); got != nil {
		t.Fatal("claimed after drain")
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
