package core

import (
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// Our channels take fresh ids of our parity; a slot still held by a live
// channel makes the allocator skip its id, and after ownTries taken slots
// the channel goes to overflow. Whichever way it was stored, lookup finds
// it by id, size counts it, each visits it, and remove forgets it.
func TestChannelTableOwnIDs(t *testing.T) {
	var tab channelTable
	p := wire.ParityOdd
	a := &chanState{}
	tab.insertOwn(a, p)
	if a.id != p.First() {
		t.Fatalf("first id %d, want %d", a.id, p.First())
	}
	// Hold the slots the next ownTries ids would take with channels that
	// are not ours (the table does not look at who holds a slot).
	for n := uint64(1); n <= ownTries; n++ {
		tab.slots()[chanIndex(p.First()+2*n)].Store(&chanState{id: 1<<40 + n})
	}
	b := &chanState{}
	tab.insertOwn(b, p)
	if want := p.First() + 2*(ownTries+1); b.id != want {
		t.Fatalf("a channel whose slots were all taken got id %d, want %d (the next after %d skipped)", b.id, want, ownTries)
	}
	if st := tab.slots()[chanIndex(b.id)].Load(); st == b {
		t.Fatal("the channel took a slot after every try failed; want it in overflow")
	}
	if st, _ := tab.overflow.Load(b.id); st != b {
		t.Fatal("the channel is not in overflow")
	}
	c := &chanState{}
	tab.insertOwn(c, p)
	if c.id != b.id+2 || tab.slots()[chanIndex(c.id)].Load() != c {
		t.Fatalf("the next channel got id %d (want %d) or no slot", c.id, b.id+2)
	}
	for _, st := range []*chanState{a, b, c} {
		if !p.Owns(st.id) {
			t.Errorf("id %d is not of our parity", st.id)
		}
		if got := tab.lookup(st.id); got != st {
			t.Errorf("lookup(%d) = %p, want %p", st.id, got, st)
		}
	}
	if got := tab.lookup(b.id + 1000); got != nil {
		t.Errorf("lookup of an id never stored found channel %d", got.id)
	}
	if n := tab.size(); n != 3 {
		t.Errorf("size %d, want 3", n)
	}
	seen := map[*chanState]bool{}
	tab.each(func(st *chanState) { seen[st] = true })
	for _, st := range []*chanState{a, b, c} {
		if !seen[st] {
			t.Errorf("each missed channel %d", st.id)
		}
	}
	for _, st := range []*chanState{a, b, c} {
		tab.remove(st)
		if got := tab.lookup(st.id); got != nil {
			t.Errorf("channel %d found after remove", st.id)
		}
	}
	if n := tab.size(); n != 0 {
		t.Errorf("size %d after removing all, want 0", n)
	}
}

// The peer's ids share the slots with ours, half a table apart: an id of
// either parity whose slot the other holds goes to overflow and is still
// found; a live peer id cannot be stored twice.
func TestChannelTablePeerIDs(t *testing.T) {
	var tab channelTable
	ours := &chanState{}
	tab.insertOwn(ours, wire.ParityEven)
	// The odd id whose slot is ours's: the n-th odd id takes slot n + half.
	clash := 2*((chanIndex(ours.id)+chanSlots/2)%chanSlots) + 1
	if chanIndex(clash) != chanIndex(ours.id) {
		t.Fatalf("test setup: ids %d and %d in slots %d and %d", clash, ours.id, chanIndex(clash), chanIndex(ours.id))
	}
	if chanIndex(1) == chanIndex(0) {
		t.Fatal("the first ids of both parities share a slot")
	}
	peer := &chanState{id: clash}
	if !tab.insertPeer(peer) {
		t.Fatal("insertPeer refused a fresh id")
	}
	if tab.lookup(clash) != peer || tab.lookup(ours.id) != ours {
		t.Fatal("a channel in overflow or the one in its slot is not found")
	}
	if tab.insertPeer(&chanState{id: clash}) {
		t.Fatal("a live peer id in overflow was stored twice")
	}
	first := &chanState{id: 1}
	if !tab.insertPeer(first) || tab.insertPeer(&chanState{id: 1}) {
		t.Fatal("a live peer id in its slot was stored twice, or the first refused")
	}
	tab.remove(peer)
	if !tab.insertPeer(&chanState{id: clash}) {
		t.Fatal("a removed peer id could not be bound again")
	}
}

// Channels stored and removed from many goroutines at once (NewRx and
// forget on callers' goroutines) get distinct ids and stay found while
// live; the table ends empty. Run with -race.
func TestChannelTableConcurrent(t *testing.T) {
	var tab channelTable
	var mu sync.Mutex
	ids := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			live := make([]*chanState, 0, 300)
			for i := range 2000 {
				st := &chanState{}
				tab.insertOwn(st, wire.ParityOdd)
				mu.Lock()
				if ids[st.id] {
					t.Errorf("id %d given twice", st.id)
				}
				ids[st.id] = true
				mu.Unlock()
				live = append(live, st)
				if len(live) == cap(live) || i%(g+2) == 0 { // varied lifetimes: some hold their slots long
					for _, st := range live[:len(live)/2] {
						if got := tab.lookup(st.id); got != st {
							t.Errorf("live channel %d not found", st.id)
						}
						tab.remove(st)
					}
					live = append(live[:0], live[len(live)/2:]...)
				}
			}
			for _, st := range live {
				if got := tab.lookup(st.id); got != st {
					t.Errorf("live channel %d not found", st.id)
				}
				tab.remove(st)
			}
		})
	}
	wg.Wait()
	if n := tab.size(); n != 0 {
		t.Errorf("size %d after every channel was removed", n)
	}
	tab.each(func(st *chanState) { t.Errorf("channel %d left", st.id) })
}
