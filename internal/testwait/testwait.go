// Package testwait holds the waits Rove's tests use for states that no
// channel announces, so that no test sleeps and hopes: each wait checks a
// condition until it holds, and fails the test if it does not within 10 s.
package testwait

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Timeout is how long a wait lasts before it fails the test.
const Timeout = 10 * time.Second

// For waits until cond holds, checking it after short pauses.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Until(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Until waits until cond holds and reports whether it did within Timeout.
// It is For for goroutines other than the test's, which must not call
// t.Fatal.
func Until(cond func() bool) bool {
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

// Recv receives from ch, failing the test if nothing comes within
// Timeout: for a result that a hang would never send.
func Recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// Blocked waits until at least n goroutines are parked (in a select, a
// channel operation or a lock) with fn on their stack: fn is a function
// name as runtime.Stack prints it, e.g. "core.(*chanState).takeCredit".
// It is how a test knows that goroutines really wait before it releases
// them, so that it tests the wake-up and not a race it happened to win.
func Blocked(t testing.TB, fn string, n int) {
	t.Helper()
	For(t, "goroutines blocked in "+fn, func() bool { return Parked(fn) >= n })
}

// Parked counts the goroutines parked (in a select, a channel operation or
// a lock) with every one of fns on their stack, named as for Blocked: with
// two, a test can tell where in a call of its own a goroutine waits.
func Parked(fns ...string) int {
	count := 0
	for _, g := range strings.Split(string(allStacks()), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		parked := strings.Contains(header, "[select") || strings.Contains(header, "[chan ") ||
			strings.Contains(header, "[sync.Mutex") || strings.Contains(header, "[sync.Cond")
		if parked && containsAll(g, fns) {
			count++
		}
	}
	return count
}

func containsAll(stack string, fns []string) bool {
	for _, fn := range fns {
		if !strings.Contains(stack, fn+"(") {
			return false
		}
	}
	return true
}

// Goroutines counts the goroutines with any of match on their stack (a
// package path such as "github.com/rove-rpc/rove/", or a function),
// leaving out the test's own goroutine: what a library started, not what
// the runtime or an unrelated dependency keeps.
func Goroutines(match ...string) int {
	count := 0
	for _, g := range strings.Split(string(allStacks()), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue
		}
		for _, m := range match {
			if strings.Contains(g, m) {
				count++
				break
			}
		}
	}
	return count
}

func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		k := runtime.Stack(buf, true)
		if k < len(buf) {
			return buf[:k]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// OpenFDs counts this process's open file descriptors (Linux: from
// /proc/self/fd), skipping the test where that cannot be read.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}
