package core

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

// workers runs blocking handlers on a bounded ants goroutine pool, so the
// reading goroutine hands a request over without starting a goroutine
// (and without allocating: the pool passes the *Request through a
// channel). When every worker is busy a handler gets a goroutine of its
// own rather than waiting: a slow handler never delays another (rule 17).
//
// The pool starts with the first blocking handler: an ants pool keeps two
// goroutines of its own, which a session that never serves a call (most
// dialled ones) should not pay while idle.
type workers struct {
	size int
	pool atomic.Pointer[ants.PoolWithFuncGeneric[*Request]]

	mu       sync.Mutex // orders start with release
	released bool
}

func newWorkers(size int) (*workers, error) {
	return &workers{size: size}, nil
}

func (w *workers) submit(r *Request) {
	p := w.pool.Load()
	if p == nil {
		p = w.start()
	}
	if p == nil || p.Invoke(r) != nil {
		go r.run()
	}
}

// start makes the pool on first use; nil once released (or if ants
// refuses, in which case every handler gets its own goroutine).
func (w *workers) start() *ants.PoolWithFuncGeneric[*Request] {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.pool.Load(); p != nil || w.released {
		return p
	}
	p, err := ants.NewPoolWithFuncGeneric(w.size, (*Request).run,
		ants.WithNonblocking(true), ants.WithExpiryDuration(10*time.Second), ants.WithLogger(silentAnts{}))
	if err != nil {
		return nil
	}
	w.pool.Store(p)
	return p
}

// release stops the pool, if it started, and waits for its goroutines.
func (w *workers) release() {
	w.mu.Lock()
	w.released = true
	p := w.pool.Load()
	w.mu.Unlock()
	if p != nil {
		_ = p.ReleaseTimeout(10 * time.Second)
	}
}

type silentAnts struct{}

func (silentAnts) Printf(string, ...any) {}
