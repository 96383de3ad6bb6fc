package main

import (
	"bytes"
	"runtime/trace"
	"strings"
	"sync"
	"testing"
)

// A trace of goroutines that block and wake one another is read back:
// every wake-up counted, each followed by a wait for a P, the writer
// goroutines told apart by who started them.
func TestAnalyzeCountsWakeUps(t *testing.T) {
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Skipf("tracing unavailable: %v", err)
	}
	const rounds = 200
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := range ping {
			pong <- v
		}
	}()
	for i := range rounds {
		ping <- i
		<-pong
	}
	close(ping)
	wg.Wait()
	wg.Add(1)
	go writer(&wg)
	wg.Wait()
	trace.Stop()

	st, err := analyze(&buf, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Each round wakes the echo goroutine and then this one (at least
	// one of the two each round, whichever blocked first).
	if st.wakes < rounds || len(st.latency) < rounds {
		t.Fatalf("%d wake-ups, %d waits for a P; want at least %d", st.wakes, len(st.latency), rounds)
	}
	if st.window <= 0 || st.waiting > st.window || st.idle > st.window {
		t.Fatalf("shares outside the window: %+v", st)
	}
	started := 0
	for k, n := range st.writers {
		if strings.Contains(k, "TestAnalyzeCountsWakeUps") {
			started += n
		}
	}
	if started != 1 {
		t.Fatalf("writer goroutines by creator %v, want one by the test", st.writers)
	}
	var out bytes.Buffer
	st.print(&out)
	if !strings.Contains(out.String(), "wake-ups") {
		t.Fatalf("report without wake-ups:\n%s", out.String())
	}
}

// writer stands for a writer goroutine: tracestat recognises them by name.
func writer(wg *sync.WaitGroup) { wg.Done() }
