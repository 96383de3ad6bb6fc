package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// testWorkers is a pool whose "handlers" are run, on bare Requests told
// apart by id.
func testWorkers(t *testing.T, size int, run func(r *Request)) *workers {
	t.Helper()
	w, err := newWorkers(size)
	if err != nil {
		t.Fatal(err)
	}
	w.run = run
	t.Cleanup(w.release)
	return w
}

func (w *workers) aliveNow() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alive
}

// spec:17 a request queued behind a blocking handler is not delayed by
// it: both are queued before any worker looks (as a read batch is), the
// one worker that wakes takes the blocking one, and another worker must
// take the second while the first is still blocked.
func TestWorkersQueuedBehindBlockedHandler(t *testing.T) {
	release := make(chan struct{})
	ran := make(chan uint64, 2)
	w := testWorkers(t, 1, func(r *Request) {
		if r.id == 1 {
			<-release
		}
		ran <- r.id
	})
	w.mu.Lock()
	r1, r2 := &Request{id: 1, served: new(served)}, &Request{id: 2, served: new(served)}
	w.pushLocked(taskOf(r1), taskOf(r1))
	w.pushLocked(taskOf(r2), taskOf(r2))
	w.mu.Unlock()
	if id := testwait.Recv(t, "the request behind a blocked handler", ran); id != 2 {
		t.Fatalf("ran %d first", id)
	}
	close(release)
	if id := <-ran; id != 1 {
		t.Fatalf("ran %d, want 1", id)
	}
}

// spec:17 more blocking handlers than the pool's size all run at once:
// size bounds parked workers, not running ones.
func TestWorkersBeyondSize(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	started := make(chan struct{}, n)
	w := testWorkers(t, 2, func(r *Request) {
		started <- struct{}{}
		<-release
	})
	w.idleFor = time.Hour // only the size bound may end workers here
	for i := range n {
		submitOne(w, &Request{id: uint64(i), served: new(served)})
	}
	for i := range n {
		testwait.Recv(t, fmt.Sprintf("blocking handler %d of %d to start", i+1, n), started)
	}
	close(release)
	// Once idle, at most size workers stay parked.
	testwait.For(t, "idle workers to shrink to the pool's size", func() bool { return w.aliveNow() <= 2 })
}

// Requests queued while a worker is searching wake no other: a read
// batch of n requests costs one wake-up, not n.
func TestWorkersOneWakePerBatch(t *testing.T) {
	const n = 100
	done := make(chan struct{}, n)
	w := testWorkers(t, 4, func(r *Request) { done <- struct{}{} })
	w.mu.Lock()
	for i := range n {
		r := &Request{id: uint64(i), served: new(served)}
		w.pushLocked(taskOf(r), taskOf(r))
	}
	alive := w.alive
	w.mu.Unlock()
	for range n {
		<-done
	}
	if alive != 1 {
		t.Fatalf("%d workers started for one batch, want 1", alive)
	}
}

// Parked workers end after idleFor: a pool that stops serving goes back
// to no goroutines without being released.
func TestWorkersExpire(t *testing.T) {
	done := make(chan struct{}, 8)
	w := testWorkers(t, 8, func(r *Request) { done <- struct{}{} })
	w.idleFor = 20 * time.Millisecond
	for i := range 8 {
		submitOne(w, &Request{id: uint64(i), served: new(served)})
	}
	for range 8 {
		<-done
	}
	testwait.For(t, "parked workers to expire", func() bool { return w.aliveNow() == 0 })
	// And the pool still serves afterwards.
	submitOne(w, &Request{id: 9, served: new(served)})
	<-done
}

// submitOne queues r for a worker, as a batch of one.
func submitOne(w *workers, r *Request) { w.submitList(taskOf(r), taskOf(r)) }

// taskOf returns r's task, as session.hold makes it.
func taskOf(r *Request) *task {
	r.task.req = r
	return &r.task
}
