package core

import (
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"
)

// idMap is an xsync map from ids to V, made on its first store: most
// connections never hold a virtual connection, a channel or a colliding
// request id, and an empty xsync map still costs a few KiB, which an idle
// session should not pay. Every method is safe from any goroutine.
type idMap[V any] struct {
	p atomic.Pointer[xsync.MapOf[uint64, V]]
}

func (m *idMap[V]) made() *xsync.MapOf[uint64, V] {
	if t := m.p.Load(); t != nil {
		return t
	}
	t := xsync.NewMapOf[uint64, V]()
	if m.p.CompareAndSwap(nil, t) {
		return t
	}
	return m.p.Load()
}

// Load returns the value stored under id.
func (m *idMap[V]) Load(id uint64) (v V, ok bool) {
	if t := m.p.Load(); t != nil {
		return t.Load(id)
	}
	return v, false
}

// Store sets the value under id.
func (m *idMap[V]) Store(id uint64, v V) { m.made().Store(id, v) }

// LoadOrStore returns the value under id if there is one (loaded true),
// else stores v.
func (m *idMap[V]) LoadOrStore(id uint64, v V) (V, bool) { return m.made().LoadOrStore(id, v) }

// Delete removes id.
func (m *idMap[V]) Delete(id uint64) {
	if t := m.p.Load(); t != nil {
		t.Delete(id)
	}
}

// Size counts the entries.
func (m *idMap[V]) Size() int {
	if t := m.p.Load(); t != nil {
		return t.Size()
	}
	return 0
}

// Range calls f for each entry until it returns false.
func (m *idMap[V]) Range(f func(id uint64, v V) bool) {
	if t := m.p.Load(); t != nil {
		t.Range(f)
	}
}
