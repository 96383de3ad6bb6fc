package core

import (
	"math/bits"
	"sync/atomic"
)

// Call tables map request ids to live calls without a lock and without an
// allocation per call. A call is claimed (for completion, cancellation or
// teardown) by a compare-and-swap on its own state word, which holds the
// call's key: its request id tagged with its table's generation. Ids are
// never reused within a table and generations differ between tables, so a
// stale pointer (a call freed to the process-wide pool and live again on
// another connection) can never be claimed by the table that loaded it
// (no ABA). BenchmarkPendingTable compares this with xsync's MapOf,
// sync.Map and a mutex-guarded map.

// abandoned marks an outgoing call whose caller gave up (cancel): the table
// keeps it until the late response, or teardown, frees it.
//
// woken, beside abandoned, marks a call its context's watch cancelled
// (ctxwatch.go) while its caller may not have left yet: the caller clears
// the bit as it leaves, and whichever of the caller and the table's
// claim comes last frees the call.
const (
	abandoned = 1 << 63
	woken     = 1 << 62
)

// A key is a request id (below 1<<genShift) tagged with its table's
// generation in the bits above, up to the woken bit. Generations come
// from a process-wide counter and wrap after 1<<14 tables: a stale
// pointer would have to survive that many connection set-ups between its
// load and its compare-and-swap to collide.
const (
	genShift = 48
	maxOwnID = 1<<genShift - 1 // a table refuses ids above this
	genMask  = 1<<14 - 1
	flagBits = abandoned | woken
)

// claimKind says what a claim found: a call whose caller waits (complete
// it), one whose caller left (free it), or one whose caller was woken by
// its watch and has not left yet (leave it to the caller).
type claimKind uint8

const (
	claimWaiting claimKind = iota
	claimAbandoned
	claimWoken
)

func kindOf(st uint64) claimKind {
	switch st & flagBits {
	case 0:
		return claimWaiting
	case abandoned:
		return claimAbandoned
	}
	return claimWoken
}

var tableGen atomic.Uint64

// errIDsExhausted fails a call on a connection that has used all its
// request ids (2^47 calls): open a new one.
var errIDsExhausted = &CallError{Kind: ErrConnectionClosed, Message: "request ids exhausted on this connection"}

// tableSize returns the power-of-two slot count for up to n live entries:
// at most half full, so probing stays short.
func tableSize(n int) int {
	return 1 << bits.Len(uint(max(2*n-1, 1)))
}

// pendingTable holds our outgoing calls on one connection. We allocate the
// ids, so each id picks its slot directly: slot = n mod size for the n-th
// id. A slot still held by a long call makes the allocator skip that id.
// The caller's in-flight semaphore keeps the table at most half full.
//
// The slots are made on the first call: a connection that never calls out
// (most accepted ones) pays nothing for them.
type pendingTable struct {
	tab   atomic.Pointer[[]atomic.Pointer[outCall]] // nil until the first insert
	mask  uint64
	shift uint   // log2(len(slots)) - spread
	first uint64 // first id of our parity
	gen   uint64 // this table's generation, shifted into place
	next  atomic.Uint64
}

// spread: consecutive ids land spreadSlots apart (a cache line of
// pointers), so callers on different cores do not share a line.
const (
	spread      = 3
	spreadSlots = 1 << spread
)

func (t *pendingTable) init(limit int, first uint64) {
	n := max(tableSize(limit), spreadSlots)
	t.mask = uint64(n - 1)
	t.shift = uint(bits.Len(uint(n))-1) - spread
	t.first = first
	t.gen = (tableGen.Add(1) & genMask) << genShift
}

// slots returns the slot array, making it on the first call.
func (t *pendingTable) slots() []atomic.Pointer[outCall] {
	if p := t.tab.Load(); p != nil {
		return *p
	}
	s := make([]atomic.Pointer[outCall], t.mask+1)
	if t.tab.CompareAndSwap(nil, &s) {
		return s
	}
	return *t.tab.Load()
}

// key tags id with the table's generation.
func (t *pendingTable) key(id uint64) uint64 { return t.gen | id }

// owns reports whether state word st belongs to a call of this table.
func (t *pendingTable) owns(st uint64) bool { return st != 0 && st&^flagBits&^maxOwnID == t.gen }

// index maps the n-th id to its slot: a rotation of n's low bits, a
// bijection on the table.
func (t *pendingTable) index(n uint64) uint64 {
	n &= t.mask
	return (n<<spread | n>>t.shift) & t.mask
}

// insert gives c a fresh id and publishes it; 0 once the ids are
// exhausted.
func (t *pendingTable) insert(c *outCall) uint64 {
	slots := t.slots()
	for {
		n := t.next.Add(1) - 1
		id := t.first + 2*n
		if id > maxOwnID {
			return 0
		}
		c.id, c.key = id, t.key(id)
		c.state.Store(c.key)
		if slots[t.index(n)].CompareAndSwap(nil, c) {
			return id
		}
	}
}

func (t *pendingTable) slot(id uint64) *atomic.Pointer[outCall] {
	p := t.tab.Load()
	if p == nil || id < t.first || (id-t.first)&1 != 0 {
		return nil
	}
	return &(*p)[t.index((id-t.first)/2)]
}

// take claims the call with id for its response. It returns the call and
// what its caller is doing; nil if no call with that id is live (a late
// or unknown response, ignored by rule 21).
func (t *pendingTable) take(id uint64) (*outCall, claimKind) {
	s := t.slot(id)
	if s == nil {
		return nil, 0
	}
	c := s.Load()
	if c == nil || id > maxOwnID {
		return nil, 0
	}
	key := t.key(id)
	for {
		// Its flags may change under us (a caller abandoning it, a woken
		// caller leaving): retry while the call is still this id's.
		st := c.state.Load()
		if st&^flagBits != key {
			return nil, 0
		}
		if c.state.CompareAndSwap(st, 0) {
			s.CompareAndSwap(c, nil)
			return c, kindOf(st)
		}
	}
}

// abandon marks c as given up by its caller, if it is still pending. After
// true, the caller must not touch c: the table frees it.
func (t *pendingTable) abandon(c *outCall) bool {
	return c.state.CompareAndSwap(c.key, c.key|abandoned)
}

// wake marks every live call that waits on watch w as abandoned and
// woken, and hands each to f with its id (f wakes its caller).
func (t *pendingTable) wake(w *ctxWatch, f func(id uint64, c *outCall)) {
	p := t.tab.Load()
	if p == nil {
		return
	}
	slots := *p
	for i := range slots {
		c := slots[i].Load()
		if c == nil {
			continue
		}
		// The state first: a live call published its watch before it
		// could be seen here with it, and a reused call has another key.
		st := c.state.Load()
		if !t.owns(st) || st&flagBits != 0 || c.watch.Load() != w {
			continue
		}
		if c.state.CompareAndSwap(st, st|abandoned|woken) {
			f(st&maxOwnID, c)
		}
	}
}

// drain claims every live call, for teardown.
func (t *pendingTable) drain(f func(c *outCall, k claimKind)) {
	p := t.tab.Load()
	if p == nil {
		return
	}
	slots := *p
	for i := range slots {
		if c := slots[i].Load(); c != nil {
			if ok, k := t.claim(c); ok {
				slots[i].CompareAndSwap(c, nil)
				f(c, k)
			}
		}
	}
}

// claim takes c, loaded from one of our slots, if it is still a live call
// of this table, and reports what its caller is doing. c may be stale:
// claimed meanwhile, freed, and live on another connection, whose key has
// another generation. (It writes nothing to c but its state: the caller
// may be reading c.key in abandon at the same moment.) As in take, the
// call's flags may change under us (its caller abandoning it, a woken
// caller leaving): it tries again while the call is still this table's,
// or teardown would leave an abandoned call in the table.
func (t *pendingTable) claim(c *outCall) (ok bool, k claimKind) {
	for {
		st := c.state.Load()
		if !t.owns(st) {
			return false, 0
		}
		if c.state.CompareAndSwap(st, 0) {
			return true, kindOf(st)
		}
	}
}

// inboundTable holds the peer's requests being served on one connection,
// for duplicate detection and cancellation. The peer picks the ids; the
// fast path is a slot array indexed by id/2 (Rove peers allocate ids
// densely), and ids that collide there go to an xsync map.
//
// insert and lookup run on the reading goroutine only; remove runs on the
// handler's goroutine. The slots are made on the first request.
type inboundTable struct {
	tab      atomic.Pointer[[]atomic.Pointer[Request]] // nil until the first insert
	mask     uint64
	overflow idMap[*Request]
	// spilled counts the requests in overflow, so that the lookups on
	// every request skip the map's hashing while it is empty (once made,
	// by one collision, it stays). Only the reading goroutine adds to it,
	// so it never reads 0 while its own entry is there; remove subtracts
	// after the Delete.
	spilled atomic.Int64
	live    atomic.Int64
}

func (t *inboundTable) init(limit int) {
	n := tableSize(min(limit, 4096))
	t.mask = uint64(n - 1)
}

// insert publishes r under r.id; false if that id is already live.
func (t *inboundTable) insert(r *Request) bool {
	p := t.tab.Load()
	if p == nil { // only the reading goroutine inserts: no race to make it
		slots := make([]atomic.Pointer[Request], t.mask+1)
		p = &slots
		t.tab.Store(p)
	}
	if t.lookup(r.id) != nil {
		return false
	}
	s := &(*p)[(r.id>>1)&t.mask]
	r.state.Store(r.id)
	t.live.Add(1)
	if !s.CompareAndSwap(nil, r) {
		t.overflow.Store(r.id, r)
		t.spilled.Add(1)
	}
	return true
}

// lookup returns the live request with id, or nil.
func (t *inboundTable) lookup(id uint64) *Request {
	p := t.tab.Load()
	if p == nil {
		return nil
	}
	if r := (*p)[(id>>1)&t.mask].Load(); r != nil && r.state.Load() == id {
		return r
	}
	if t.spilled.Load() == 0 {
		return nil
	}
	r, _ := t.overflow.Load(id)
	return r
}

// remove unpublishes r once its response is sent.
func (t *inboundTable) remove(r *Request) {
	if !(*t.tab.Load())[(r.id>>1)&t.mask].CompareAndSwap(r, nil) { // r was inserted: the slots exist
		t.overflow.Delete(r.id)
		t.spilled.Add(-1)
	}
	r.state.Store(0)
	t.live.Add(-1)
}

// each calls f for every live request (teardown).
func (t *inboundTable) each(f func(r *Request)) { eachSlotted(&t.tab, &t.overflow, f) }

// eachSlotted calls f for every entry of a slot array (nil until made)
// and of its overflow map: the tables that keep most entries in slots
// indexed by id and the ids that collide in an xsync map.
func eachSlotted[T any](tab *atomic.Pointer[[]atomic.Pointer[T]], overflow *idMap[*T], f func(*T)) {
	if p := tab.Load(); p != nil {
		for i := range *p {
			if v := (*p)[i].Load(); v != nil {
				f(v)
			}
		}
	}
	overflow.Range(func(_ uint64, v *T) bool {
		f(v)
		return true
	})
}
