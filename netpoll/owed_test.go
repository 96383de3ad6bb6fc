package netpoll

import (
	"context"
	"fmt"
	"testing"
)

// putOwed is write as WriteFrameOwed calls it.
func (o *outbound) putOwed(t *testing.T, body string) bool {
	t.Helper()
	owed, err := o.write(context.Background(), []byte(body), nil, modeOwed)
	if err != nil {
		t.Fatal(err)
	}
	return owed
}

// frames is the wire bytes of bodies, each framed.
func frames(bodies ...string) string {
	var b []byte
	for _, x := range bodies {
		b = AppendFrame(b, []byte(x))
	}
	return string(b)
}

// Frames written owed start no flush: the first says a flush is owed, the
// next do not, and one flushOwed writes them all, with one write on its
// caller's goroutine. After it, the next owed frame owes a flush again.
func TestWriteOwedWaitsForFlushOwed(t *testing.T) {
	o, s, wg := newTakeOutbound(t)
	if !o.putOwed(t, "a") {
		t.Fatal("the first owed frame did not say a flush is owed")
	}
	if o.putOwed(t, "b") {
		t.Fatal("a second owed frame said a flush is owed: it would be queued twice")
	}
	wg.Wait() // a writer goroutine, had one started, has written by now
	if got := s.all(); len(got) != 0 {
		t.Fatalf("owed frames were written before flushOwed: %q", got)
	}
	o.flushOwed()
	if got, want := string(s.all()), frames("a", "b"); got != want || s.tries != 1 || len(s.full) != 0 {
		t.Fatalf("flushOwed wrote %q in %d tries (by a writer: %q), want %q in one try on its caller", got, s.tries, s.full, want)
	}
	if !o.putOwed(t, "c") {
		t.Fatal("an owed frame after flushOwed did not say a flush is owed")
	}
	o.flushOwed()
	wg.Wait()
	if got, want := string(s.all()), frames("a", "b", "c"); got != want {
		t.Fatalf("wire %q, want %q", got, want)
	}
}

// An owed frame written while a flush is under way owes nothing: the
// flush takes it, and flushOwed's caller writes what came during its
// write itself rather than hand it to a writer goroutine, up to owedTries
// writes; frames that keep coming after that go to a writer.
func TestWriteOwedDuringAFlushIsTaken(t *testing.T) {
	o, s, wg := newTakeOutbound(t)
	o.putOwed(t, "a")
	want := []string{"a"}
	var during func()
	during = func() { // during each try, for twice as many tries as flushOwed makes
		if len(want) > 2*owedTries {
			return
		}
		late := fmt.Sprintf("late%d", len(want))
		want = append(want, late)
		if o.putOwed(t, late) {
			t.Error("an owed frame written during a flush said a flush is owed")
		}
		s.mu.Lock()
		s.during = during
		s.mu.Unlock()
	}
	s.during = during
	o.flushOwed()
	s.mu.Lock()
	s.during = nil
	s.mu.Unlock()
	wg.Wait()
	if got := string(s.all()); got != frames(want...) {
		t.Fatalf("wire %q, want %q", got, frames(want...))
	}
	if s.tries != owedTries || len(s.full) == 0 {
		t.Fatalf("%d tries by flushOwed's caller, then %q by a writer; want %d tries, then a writer", s.tries, s.full, owedTries)
	}
}

// A frame written alone takes the owed frames before it along, at once
// on its caller: they wait for no flush, and the owed flush then finds
// nothing to write.
func TestWriteAloneTakesOwedFrames(t *testing.T) {
	o, s, wg := newTakeOutbound(t)
	if !o.putOwed(t, "a") {
		t.Fatal("the first owed frame did not say a flush is owed")
	}
	if err := o.putAlone(context.Background(), []byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got, want := string(s.all()), frames("a", "b"); got != want || s.tries != 1 || len(s.full) != 0 {
		t.Fatalf("wire %q in %d tries (by a writer: %q), want %q in one try by the alone frame's caller", got, s.tries, s.full, want)
	}
	o.flushOwed()
	if s.tries != 1 {
		t.Fatalf("the owed flush wrote again (%d tries) with nothing queued", s.tries)
	}
}

// A socket that takes only part of an owed flush is full: the rest goes to
// a writer goroutine, which waits for room, at once, not after more
// non-blocking tries that would find it full again.
func TestFlushOwedHandsAFullSocketToAWriter(t *testing.T) {
	o, s, wg := newTakeOutbound(t)
	s.max = 3
	o.putOwed(t, "abcdef")
	o.flushOwed()
	wg.Wait()
	if got, want := string(s.all()), frames("abcdef"); got != want {
		t.Fatalf("wire %q, want %q", got, want)
	}
	if s.tries != 1 || len(s.full) == 0 {
		t.Fatalf("%d tries, then %q by a writer; want 1 try, then the rest by a writer", s.tries, s.full)
	}
}
