// Command tracestat reads an execution trace (bench serve|load -trace, or
// any runtime/trace output) and prints how its goroutines waited for a P:
// the share of the window in which goroutines were runnable while fewer
// than GOMAXPROCS ran (and how much of that while the rest of the Ps were
// held by goroutines in system calls, such as gnet's loops in
// epoll_wait), the latency from runnable to running, which kinds of
// goroutine waited longest, and who started writer goroutines.
//
//	go run ./tracestat [-procs 2] trace.out
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	procs := flag.Int("procs", 2, "GOMAXPROCS of the traced process")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tracestat [-procs N] trace.out")
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	st, err := analyze(f, *procs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st.print(os.Stdout)
}

// stats is what analyze measures. Times are in nanoseconds.
type stats struct {
	window   float64 // from the first event to the last
	waiting  float64 // some goroutine runnable, fewer than procs running
	stranded float64 // the same, while running + in a system call >= procs
	idle     float64 // nothing running or runnable
	full     float64 // procs goroutines running
	wakes    int     // transitions to runnable
	latency  []float64
	byKind   map[string][]float64 // runnable-to-running waits by kind
	heldBy   map[string]float64   // stranded time by the kind in a system call
	writers  map[string]int       // writer goroutines started, by their creator
}

// analyze reads a trace and measures it (see the command's doc).
func analyze(r io.Reader, procs int) (*stats, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, err
	}
	st := &stats{byKind: map[string][]float64{}, heldBy: map[string]float64{}, writers: map[string]int{}}
	state := map[trace.GoID]trace.GoState{}
	since := map[trace.GoID]trace.Time{}
	kind := map[trace.GoID]string{}
	inSys := map[trace.GoID]bool{}
	count := map[trace.GoState]int{}
	var first, last trace.Time
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		t := ev.Time()
		if first == 0 {
			first = t
		}
		if last != 0 {
			st.account(float64(t-last), count, procs, inSys, kind)
		}
		last = t
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		x := ev.StateTransition()
		if x.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := x.Resource.Goroutine()
		from, to := x.Goroutine()
		if prev, ok := state[id]; ok {
			count[prev]--
		}
		count[to]++
		state[id] = to
		if to == trace.GoSyscall {
			inSys[id] = true
		} else {
			delete(inSys, id)
		}
		if kind[id] == "" {
			kind[id] = frameOf(x.Stack)
		}
		if from == trace.GoNotExist && strings.Contains(kind[id], "writer") {
			st.writers[creatorOf(ev.Stack())]++
		}
		switch {
		case to == trace.GoRunnable:
			st.wakes++
			since[id] = t
		case to == trace.GoRunning && from == trace.GoRunnable:
			if s, ok := since[id]; ok {
				d := float64(t-s) / 1e3
				st.latency = append(st.latency, d)
				st.byKind[kind[id]] = append(st.byKind[kind[id]], d)
			}
		}
	}
	st.window = float64(last - first)
	sort.Float64s(st.latency)
	return st, nil
}

// account adds d nanoseconds spent in the current counts.
func (st *stats) account(d float64, count map[trace.GoState]int, procs int, inSys map[trace.GoID]bool, kind map[trace.GoID]string) {
	running, runnable, sys := count[trace.GoRunning], count[trace.GoRunnable], count[trace.GoSyscall]
	switch {
	case runnable > 0 && running < procs:
		st.waiting += d
		if running+sys >= procs {
			st.stranded += d
			for g := range inSys {
				st.heldBy[kind[g]] += d
			}
		}
	case running == 0 && runnable == 0:
		st.idle += d
	}
	if running >= procs {
		st.full += d
	}
}

// frameOf names a goroutine by the first frame of a stack outside the
// runtime and sync packages: where it was created or last blocked, the
// first stack its trace shows.
func frameOf(s trace.Stack) string {
	name := ""
	for f := range s.Frames() {
		if name == "" || lowLevel(name) {
			name = f.Func
		}
	}
	return name
}

// creatorOf names the function that started a goroutine: the first frame
// of the creating stack outside the runtime and the outbound buffer.
func creatorOf(s trace.Stack) string {
	for f := range s.Frames() {
		if !lowLevel(f.Func) && !strings.Contains(f.Func, "outbound") {
			return f.Func
		}
	}
	return "?"
}

func lowLevel(fn string) bool {
	for _, p := range []string{"runtime.", "sync.", "internal/"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

func (st *stats) print(w io.Writer) {
	pct := func(x float64) float64 { return 100 * x / st.window }
	fmt.Fprintf(w, "window %.1f ms\n", st.window/1e6)
	fmt.Fprintf(w, "runnable goroutines waiting while a P did not run one: %.1f%% (a P held by a system call meanwhile: %.1f%%)\n", pct(st.waiting), pct(st.stranded))
	fmt.Fprintf(w, "nothing running or runnable: %.1f%%; every P running: %.1f%%\n", pct(st.idle), pct(st.full))
	q := func(l []float64, p float64) float64 { return l[int(p*float64(len(l)-1))] }
	if len(st.latency) > 0 {
		fmt.Fprintf(w, "wake-ups %d (%.0f a ms); runnable to running, µs: p50 %.1f, p90 %.1f, p99 %.1f, max %.1f\n",
			st.wakes, float64(st.wakes)/(st.window/1e6), q(st.latency, .5), q(st.latency, .9), q(st.latency, .99), q(st.latency, 1))
	}
	type row struct {
		name string
		sum  float64
		l    []float64
	}
	var rows []row
	for k, l := range st.byKind {
		sort.Float64s(l)
		sum := 0.0
		for _, x := range l {
			sum += x
		}
		rows = append(rows, row{k, sum, l})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].sum > rows[j].sum })
	fmt.Fprintln(w, "waits for a P by goroutine (named by its first stack outside the runtime):")
	for i, r := range rows {
		if i == 8 {
			break
		}
		fmt.Fprintf(w, "  %-64s %6d waits, p50 %6.1f µs, p90 %6.1f µs, %6.1f ms in all\n", r.name, len(r.l), q(r.l, .5), q(r.l, .9), r.sum/1e3)
	}
	if len(st.heldBy) > 0 {
		fmt.Fprintln(w, "Ps held by system calls while goroutines waited, by the goroutine in the call:")
		for k, v := range st.heldBy {
			if v > st.window/100 {
				fmt.Fprintf(w, "  %-64s %6.1f ms\n", k, v/1e6)
			}
		}
	}
	if len(st.writers) > 0 {
		fmt.Fprintln(w, "writer goroutines started, by their creator:")
		for k, v := range st.writers {
			fmt.Fprintf(w, "  %-64s %d\n", k, v)
		}
	}
}
