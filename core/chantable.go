package core

import (
	"sync/atomic"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// channelTable is a connection's channels of both directions, looked up
// by id on every channel message, stored by NewTx/NewRx (any goroutine)
// and by bindRequest (the reading goroutine), removed by forget (any
// goroutine).
//
// Both peers allocate channel ids densely, each in its own parity, so the
// fast path is a slot array indexed by id, as for the call tables
// (table.go): our n-th id takes slot n and the peer's n-th slot n + half,
// modulo the size, and an id whose slot is taken goes to an xsync map.
// One compare-and-swap stores or removes a channel; an xsync store
// allocated an entry and took a bucket lock, and with stores, removals
// and the per-call size it was 8% of a 1024-stream client's CPU.
//
// Invariant: a channel is in its slot or in overflow, never both, from
// its store until its removal; st.id is set before it is published and
// never changes after.
type channelTable struct {
	tab      atomic.Pointer[[]atomic.Pointer[chanState]] // nil until the first channel
	overflow idMap[*chanState]
	live     atomic.Int64
	next     atomic.Uint64 // our allocator: the n-th id is first + 2n
}

// chanSlots is the slot count: 8 KiB, made with the connection's first
// channel; beyond about as many live channels most go to overflow.
const chanSlots = 1024

// ownTries is how many fresh ids insertOwn tries for a free slot before
// it takes one more and puts the channel in overflow.
const ownTries = 4

func (t *channelTable) slots() []atomic.Pointer[chanState] {
	if p := t.tab.Load(); p != nil {
		return *p
	}
	s := make([]atomic.Pointer[chanState], chanSlots)
	if t.tab.CompareAndSwap(nil, &s) {
		return s
	}
	return *t.tab.Load()
}

// chanIndex is id's slot: the n-th id of a parity takes slot n, the odd ids
// shifted by half the table.
func chanIndex(id uint64) uint64 { return (id>>1 + (id&1)*(chanSlots/2)) % chanSlots }

// alloc returns a fresh channel id of parity p (a namespace separate from
// request ids: rule 10).
func (t *channelTable) alloc(p wire.Parity) uint64 { return p.First() + 2*(t.next.Add(1)-1) }

// insertOwn gives st a fresh id of our parity p and stores it.
func (t *channelTable) insertOwn(st *chanState, p wire.Parity) {
	slots := t.slots()
	t.live.Add(1)
	for range ownTries {
		st.id = t.alloc(p)
		if slots[chanIndex(st.id)].CompareAndSwap(nil, st) {
			return
		}
	}
	st.id = t.alloc(p)
	t.overflow.Store(st.id, st)
}

// insertPeer stores a channel the peer bound (reading goroutine only, the
// one goroutine that stores the peer's ids); false if its id is live.
func (t *channelTable) insertPeer(st *chanState) bool {
	if t.lookup(st.id) != nil {
		return false
	}
	t.live.Add(1)
	if !t.slots()[chanIndex(st.id)].CompareAndSwap(nil, st) {
		t.overflow.Store(st.id, st)
	}
	return true
}

// lookup returns the live channel with id, or nil.
func (t *channelTable) lookup(id uint64) *chanState {
	if p := t.tab.Load(); p != nil {
		if st := (*p)[chanIndex(id)].Load(); st != nil && st.id == id {
			return st
		}
	}
	st, _ := t.overflow.Load(id)
	return st
}

// remove unstores st (once: forget's guard).
func (t *channelTable) remove(st *chanState) {
	if !(*t.tab.Load())[chanIndex(st.id)].CompareAndSwap(st, nil) { // st was stored: the slots exist
		t.overflow.Delete(st.id)
	}
	t.live.Add(-1)
}

// size counts the live channels.
func (t *channelTable) size() int { return int(t.live.Load()) }

// each calls f for every live channel (teardown).
func (t *channelTable) each(f func(st *chanState)) { eachSlotted(&t.tab, &t.overflow, f) }
