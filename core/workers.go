package core

import (
	"sync"
	"time"
)

// workerExpiry is how long a parked worker waits for work before it ends,
// so that a session that stops serving goes back to no goroutines.
const workerExpiry = 10 * time.Second

// workers runs blocking handlers on goroutines that take requests from one
// queue. The reading goroutine pushes a request and, only when no worker
// is free to take it, wakes a parked worker or starts one; a worker that
// finishes a handler takes the next request itself, without parking. So
// under load a handful of workers run request after request with no
// wake-up between them, where a pool that hands each request to a parked
// goroutine (ants, or a goroutine per request) pays a wake-up per call.
//
// Rule 17 (a slow handler never delays another) holds by one invariant:
// while the queue is not empty, at least one worker is searching (awake
// and not running a handler), so a queued request never waits for a
// handler to finish. A searching worker that takes a request and leaves
// others queued first makes sure another worker searches. Workers are
// therefore not bounded by size when handlers block; size bounds the
// parked ones, and a parked worker ends after workerExpiry idle.
//
// The queue holds requests and sessions' owed flushes (task), and is
// intrusive (each task is part of its request or session): pushing
// allocates nothing.
// Nothing starts before the first blocking handler: a session that never
// serves one (most dialled ones) has no worker goroutine.
type workers struct {
	size    int              // most parked workers kept
	run     func(r *Request) // (*Request).run; tests replace it
	idleFor time.Duration    // workerExpiry; tests shorten it

	mu        sync.Mutex
	queue     taskList    // queued requests and flushes
	searching int         // workers awake and not running a handler
	parked    []*parker   // LIFO: the most recently parked first to wake
	purge     *time.Timer // armed while workers are parked
	released  bool
	alive     int            // worker goroutines (tests watch it)
	wg        sync.WaitGroup // every worker goroutine
}

// parker is one parked worker: a wake-up channel (true: look for work,
// false: end) and when it parked.
type parker struct {
	wake  chan bool
	since time.Time
}

func newWorkers(size int) (*workers, error) {
	return &workers{size: size, run: (*Request).run, idleFor: workerExpiry}, nil
}

// submitList queues the tasks linked from head to tail through next
// (the reading goroutine's batch of requests, see session.hold, or one
// owed flush) under one lock: the workers' lock, taken once per request,
// was contended by the workers taking them. Never blocks.
func (w *workers) submitList(head, tail *task) {
	w.mu.Lock()
	if w.released { // cannot happen while handlers are counted; stay safe
		w.mu.Unlock()
		for t := head; t != nil; {
			next := t.next
			t.next = nil
			go w.do(t)
			t = next
		}
		return
	}
	w.pushLocked(head, tail)
	w.mu.Unlock()
}

// pushLocked queues the tasks linked from head to tail and keeps the
// invariant: someone searches. One searcher is enough for many queued:
// whoever takes one and leaves others makes sure another searches (next).
func (w *workers) pushLocked(head, tail *task) {
	w.queue.push(head, tail)
	if w.searching == 0 {
		w.wakeLocked()
	}
}

// wakeLocked makes one more worker search: the most recently parked one
// if any (its stack is warm), else a new goroutine.
func (w *workers) wakeLocked() {
	w.searching++
	if n := len(w.parked); n > 0 {
		p := w.parked[n-1]
		w.parked[n-1] = nil
		w.parked = w.parked[:n-1]
		p.wake <- true // buffered: never blocks
		return
	}
	w.wg.Add(1)
	w.alive++
	go w.loop()
}

// loop is one worker goroutine; it starts searching (counted by whoever
// started it).
func (w *workers) loop() {
	defer w.wg.Done()
	var p *parker
	ran := false // back from a handler: next counts us as searching again, under the lock it takes anyway
	for {
		t := w.next(&p, ran)
		if t == nil {
			return
		}
		w.do(t)
		ran = true
	}
}

// do runs one task: a request's handler, or a session's owed flush.
func (w *workers) do(t *task) {
	if t.req != nil {
		w.run(t.req) // t is part of the request's served: gone after this
		return
	}
	t.s.flushOwed()
}

// next takes a queued task, parking while there is none; nil when
// the worker should end. The caller is counted as searching; on return
// with a task it is not. *p is the worker's parker, made on its first
// park and reused. ran: the caller comes back from running a handler and
// is not counted as searching yet.
func (w *workers) next(p **parker, ran bool) *task {
	w.mu.Lock()
	if ran {
		w.searching++
	}
	for {
		if t := w.queue.head; t != nil {
			w.queue.head, t.next = t.next, nil
			if w.queue.head == nil {
				w.queue.tail = nil
			}
			w.searching--
			if w.queue.head != nil && w.searching == 0 {
				w.wakeLocked() // others are queued: keep someone free for them
			}
			w.mu.Unlock()
			return t
		}
		w.searching--
		if w.released || len(w.parked) >= w.size {
			w.alive--
			w.mu.Unlock()
			return nil
		}
		if *p == nil {
			*p = &parker{wake: make(chan bool, 1)}
		}
		(*p).since = time.Now()
		w.parked = append(w.parked, *p)
		if w.purge == nil {
			w.purge = time.AfterFunc(w.idleFor, w.expire)
		} else if len(w.parked) == 1 {
			w.purge.Reset(w.idleFor)
		}
		w.mu.Unlock()
		if !<-(*p).wake {
			return nil // expired or released; not counted as searching
		}
		w.mu.Lock() // the waker counted us as searching
	}
}

// expire ends the workers parked for longer than idleFor, oldest
// first, and re-arms for the next one. It runs on the timer's goroutine.
func (w *workers) expire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	n := 0 // parked is LIFO: the oldest are at the front
	for n < len(w.parked) && now.Sub(w.parked[n].since) >= w.idleFor {
		w.parked[n].wake <- false
		w.alive--
		n++
	}
	w.parked = append(w.parked[:0], w.parked[n:]...)
	if len(w.parked) > 0 && !w.released {
		w.purge.Reset(w.idleFor - now.Sub(w.parked[0].since))
	}
}

// release ends every worker and waits for them. Called once the handlers
// are done (the session or server has waited for them); a worker still
// finishing a handler ends when it returns.
func (w *workers) release() {
	w.mu.Lock()
	w.released = true
	for _, p := range w.parked {
		p.wake <- false
		w.alive--
	}
	w.parked = nil
	if w.purge != nil {
		w.purge.Stop()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// task is one entry of the workers' queue: a request whose handler to
// run, or a session's owed flush (req nil). It is part of what it stands
// for (served.task, session.flush), so queueing allocates nothing; a
// task is in at most one list at a time.
type task struct {
	next *task
	req  *Request // the request; nil for a flush
	s    *session // the flush's session
}

// taskList is an intrusive list of tasks, linked through next: the
// workers' queue, and the requests a batch of frames holds (session.held).
type taskList struct {
	head, tail *task
}

// push appends the tasks linked from head to tail.
func (l *taskList) push(head, tail *task) {
	if l.tail == nil {
		l.head = head
	} else {
		l.tail.next = head
	}
	l.tail = tail
}

// hold adds r to the requests for blocking handlers that this batch of
// frames admitted (reading goroutine). They are queued for the workers at
// once when the batch ends (submitList): a handler starts at most one
// batch's parsing later, and never behind anything that may block the
// reading goroutine.
func (s *session) hold(r *Request) {
	r.task.req = r
	s.held.push(&r.task, &r.task)
}

// submitHeld queues the batch's requests for the workers (reading
// goroutine).
func (s *session) submitHeld() {
	b := s.held
	if b.head == nil {
		return
	}
	s.held = taskList{}
	s.workers.submitList(b.head, b.tail)
}

// endBatch ends a batch of frames, on every way out of it: the run of
// items is queued and the held requests are submitted.
func (s *session) endBatch() {
	s.endRun()
	s.submitHeld()
}

// oweFlush queues the session's owed flush for the workers: a response
// written with WriteFrameOwed said one is owed. It runs behind the
// requests queued now, once they have all started (not finished: a
// searching worker takes it, rule 17), so the responses of a batch's
// handlers leave together, as an inline batch's do at its end; and
// without a writer goroutine, whose start and yield each wait for a P.
func (s *session) oweFlush() { s.workers.submitList(&s.flush, &s.flush) }

// flushOwed is the owed flush, on a worker.
func (s *session) flushOwed() {
	if l := s.link.Load(); l != nil {
		l.FlushOwed()
	}
}
