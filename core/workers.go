package core

import (
	"time"

	"github.com/panjf2000/ants/v2"
)

// workers runs blocking handlers on a bounded ants goroutine pool, so the
// reading goroutine hands a request over without starting a goroutine
// (and without allocating: the pool passes the *Request through a
// channel). When every worker is busy a handler gets a goroutine of its
// own rather than waiting: a slow handler never delays another (rule 17).
type workers struct {
	pool *ants.PoolWithFuncGeneric[*Request]
}

func newWorkers(size int) (*workers, error) {
	p, err := ants.NewPoolWithFuncGeneric(size, (*Request).run,
		ants.WithNonblocking(true), ants.WithExpiryDuration(10*time.Second), ants.WithLogger(silentAnts{}))
	if err != nil {
		return nil, err
	}
	return &workers{pool: p}, nil
}

func (w *workers) submit(r *Request) {
	if w.pool.Invoke(r) != nil {
		go r.run()
	}
}

// release stops the pool and waits for its goroutines.
func (w *workers) release() { _ = w.pool.ReleaseTimeout(10 * time.Second) }

type silentAnts struct{}

func (silentAnts) Printf(string, ...any) {}
