package loadtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/netpoll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// Unknown or contradictory flags: a clear message and where the flags are
// listed, in a few lines (not the whole usage around it), status 2.
func TestBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
		{[]string{"-conns", "0"}, "-conns must be at least 1"},
		{[]string{"-n", "100", "-duration", "5s"}, "contradict"},
		{[]string{"-rate", "fast"}, "-rate"},
		{[]string{"-rate", "10k:5k"}, "want RATE or FROM:TO:OVER"},
		{[]string{"-rate", "1k:2k:10s", "-n", "10"}, "contradict"},
		{[]string{"-transport", "quic"}, "gnet, net or tls"},
		{[]string{"-workload", "bulk"}, "-workload must be"},
		{[]string{"-items", "5"}, "apply to -workload stream"},
		{[]string{"-workload", "stream", "-window", "0"}, "-window must be"},
		{[]string{"-p", "101"}, "percentile"},
		{[]string{"-target", "127.0.0.1:1", "-handler", "pool"}, "remote server decides"},
		{[]string{"-target", "127.0.0.1:1", "-labels"}, "loadgen serve -labels"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"serve", "-transport", "x"}, "gnet, net or tls"},
		{[]string{"merge"}, "at least one"},
	}
	for _, c := range cases {
		code, _, stderr := runArgs(c.args...)
		if code != 2 || !strings.Contains(stderr, c.msg) || !strings.Contains(stderr, "-h' for the flags") ||
			strings.Count(stderr, "\n") > 3 || strings.Contains(stderr, "Usage:") {
			t.Errorf("%v: status %d, stderr:\n%s", c.args, code, stderr)
		}
	}
}

// -h prints the usage once, on stdout, with status 0: for a run, serve
// and merge.
func TestHelpOnce(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}, {"merge", "-h"}} {
		code, stdout, stderr := runArgs(args...)
		if code != 0 || strings.Count(stdout, "Usage:") != 1 || stderr != "" {
			t.Errorf("%v: status %d, %d usages on stdout, stderr %q", args, code, strings.Count(stdout, "Usage:"), stderr)
		}
	}
	if _, stdout, _ := runArgs("-h"); !strings.Contains(stdout, "-inflight") {
		t.Errorf("-h does not list the flags:\n%s", stdout)
	}
}

func TestParseRateAndPercentiles(t *testing.T) {
	r, err := parseRate("10k:200k:10s")
	if err != nil || r.from != 10e3 || r.to != 200e3 || r.over != 10*time.Second || !r.ramp() {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := parseRate("1.5M"); err != nil || r.from != 1.5e6 || r.ramp() {
		t.Fatalf("%+v %v", r, err)
	}
	ps, err := parsePercentiles("75, 99.5,99")
	if err != nil || len(ps) != 7 || ps[1] != 75 || ps[4] != 99.5 {
		t.Fatalf("%v %v", ps, err)
	}
}

// The open-loop schedule: call i is due at i/rate; a ramp's integral
// gives (from+to)/2 x over calls over its length.
func TestSchedule(t *testing.T) {
	s := newSchedule(rateSpec{from: 1000, to: 1000})
	if s.at(0) != 0 || s.at(1000) != time.Second || s.at(250) != 250*time.Millisecond {
		t.Fatalf("constant: %v %v", s.at(1000), s.at(250))
	}
	ramp := newSchedule(rateSpec{from: 1000, to: 3000, over: 2 * time.Second})
	if d := ramp.at(4000); (d - 2*time.Second).Abs() > time.Millisecond {
		t.Fatalf("ramp: 4000 calls due at %v, want 2s", d)
	}
	if r := ramp.rateAt(time.Second); r != 2000 {
		t.Fatalf("rate at 1s: %v", r)
	}
	// Rising rate: gaps shrink.
	if g1, g2 := ramp.at(11)-ramp.at(10), ramp.at(3001)-ramp.at(3000); g2 >= g1 {
		t.Fatalf("gaps %v then %v", g1, g2)
	}
}

// Coordinated omission: a server that stalls for 1 s must show up as
// about 1 s in p99.9 (and in the body of the distribution), not as a
// handful of slow calls; the uncorrected figure, kept beside it, hides it.
func TestOpenLoopCorrectsCoordinatedOmission(t *testing.T) {
	cfg := &config{conns: 1, inflight: 8, rate: rateSpec{from: 2000, to: 2000}, duration: 3 * time.Second,
		percentiles: defaultPercentiles, workload: "unary", quiet: true, drain: 5 * time.Second}
	l := newLoad(cfg)
	l.rec = newRecorder(4)
	var stallMu sync.Mutex
	var stallEnd time.Time // set by the first call after 1 s of measuring
	l.callFn = func(int, time.Time) error {
		if ms := l.measureStart.Load(); ms != nil {
			now := time.Now()
			stallMu.Lock()
			if stallEnd.IsZero() && now.Sub(*ms) > time.Second {
				stallEnd = now.Add(time.Second)
			}
			end := stallEnd
			stallMu.Unlock()
			// Every call during the stall waits for its end.
			time.Sleep(time.Until(end))
		}
		time.Sleep(100 * time.Microsecond)
		return nil
	}
	res := &result{cfg: cfg}
	l.measure(context.Background(), res, io.Discard)
	if res.issued != res.ok+res.failed {
		t.Fatalf("issued %d != ok %d + failed %d", res.issued, res.ok, res.failed)
	}
	p999 := time.Duration(res.corrected.ValueAtQuantile(99.9)) * time.Microsecond
	if p999 < 800*time.Millisecond || p999 > 1300*time.Millisecond {
		t.Fatalf("corrected p99.9 = %v, want about 1s", p999)
	}
	corr90, raw90 := res.corrected.ValueAtQuantile(90), res.raw.ValueAtQuantile(90)
	if corr90 < 10*raw90 || corr90 < 50_000 {
		t.Fatalf("p90 corrected %dµs vs uncorrected %dµs: the stall should dominate the corrected body", corr90, raw90)
	}
	if res.late == 0 {
		t.Fatal("no late sends counted during a 1s stall")
	}
}

// A short run end to end: issued = completed + failed, non-zero
// throughput, and every output parses.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := func(n string) string { return filepath.Join(dir, n) }
	code, stdout, stderr := runArgs("-d", "1s", "-warmup", "200ms", "-c", "2", "-inflight", "16", "-quiet",
		"-H", "tenant=a", "-p", "75",
		"-json", path("r.json"), "-csv", path("r.csv"), "-hgrm", path("r.hgrm"), "-hlog", path("r.hlog"), "-html", path("r.html"),
		"-pprof-dir", path("prof"), "-cpuprofile", path("cpu.out"), "-labels")
	if code != 0 {
		t.Fatalf("status %d\n%s\n%s", code, stdout, stderr)
	}
	// Profiling is said to be on, and both the file and the directory get
	// the CPU profile.
	if !strings.Contains(stdout, "profiling") || !strings.Contains(stdout, "costs throughput") {
		t.Fatalf("the report does not say profiling was on:\n%s", stdout)
	}
	if st, err := os.Stat(path("cpu.out")); err != nil || st.Size() == 0 {
		t.Fatalf("-cpuprofile: %v", err)
	}
	for _, want := range []string{"calls/s", "p99.9", "p75", "max", "issued"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("summary lacks %q:\n%s", want, stdout)
		}
	}
	var rep jsonReport
	b, _ := os.ReadFile(path("r.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Issued != rep.OK+rep.Failed || rep.OK == 0 || rep.CallsPerSec <= 0 || rep.LatencyUS["p99"] <= 0 || len(rep.Intervals) == 0 {
		t.Fatalf("json: %+v", rep)
	}
	f, _ := os.Open(path("r.csv"))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) < 3 || rows[len(rows)-1][0] != "total" || rows[0][0] != "interval" {
		t.Fatalf("csv: %v %v", rows, err)
	}
	hgrm, _ := os.ReadFile(path("r.hgrm"))
	if !strings.Contains(string(hgrm), "Value") || !strings.Contains(string(hgrm), "#[Mean") {
		t.Fatalf("hgrm:\n%s", hgrm)
	}
	merged, err := mergeLogs([]string{path("r.hlog"), path("r.hlog")})
	if err != nil || merged.TotalCount() != 2*rep.OK {
		t.Fatalf("merging the log twice: %d calls, want %d (%v)", merged.TotalCount(), 2*rep.OK, err)
	}
	checkHlogMax(t, path("r.hlog"))
	checkHTML(t, path("r.html"))
	for _, p := range []string{"cpu", "heap", "allocs", "goroutine"} {
		if st, err := os.Stat(filepath.Join(dir, "prof", p+".pprof")); err != nil || st.Size() == 0 {
			t.Fatalf("profile %s: %v", p, err)
		}
	}
}

// checkHTML: a page with three inline SVG plots that parse, and nothing
// fetched from the network.
func checkHTML(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "</html>") {
		t.Fatal("not an HTML page")
	}
	for _, ref := range []string{`src="http`, `href="http`, "<script", "<link", "@import", "url(http"} {
		if strings.Contains(page, ref) {
			t.Fatalf("page loads something from outside: %q", ref)
		}
	}
	n := 0
	for rest := page; ; n++ {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		if j < 0 {
			t.Fatal("unterminated svg")
		}
		dec := xml.NewDecoder(strings.NewReader(rest[i : i+j+len("</svg>")]))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("svg %d does not parse: %v", n, err)
			}
		}
		rest = rest[i+j:]
	}
	if n != 3 {
		t.Fatalf("%d plots, want 3", n)
	}
}

// Every transport carries a run, TLS included: the embedded server and
// the client agree on it, and the report names it.
func TestTransports(t *testing.T) {
	for _, tr := range []string{"net", "tls"} {
		code, stdout, stderr := runArgs("-transport", tr, "-n", "2000", "-c", "2", "-inflight", "8", "-warmup", "0s", "-quiet")
		if code != 0 || !strings.Contains(stdout, "2,000 ok") || !strings.Contains(stdout, ", "+tr+"\n") {
			t.Fatalf("-transport %s: status %d\n%s\n%s", tr, code, stdout, stderr)
		}
	}
}

// The stream and mixed workloads stream items over channels; every call
// is accounted for and items arrive.
func TestStreamWorkloads(t *testing.T) {
	for _, w := range []string{"stream", "mixed"} {
		dir := t.TempDir()
		code, stdout, stderr := runArgs("-workload", w, "-items", "8", "-window", "4", "-d", "700ms", "-warmup", "100ms",
			"-c", "2", "-inflight", "8", "-quiet", "-json", filepath.Join(dir, "r.json"))
		if code != 0 {
			t.Fatalf("%s: status %d\n%s\n%s", w, code, stdout, stderr)
		}
		var rep jsonReport
		b, _ := os.ReadFile(filepath.Join(dir, "r.json"))
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Issued != rep.OK+rep.Failed || rep.Failed != 0 || rep.ItemsPerSec <= 0 || !strings.Contains(stdout, "items/s") {
			t.Fatalf("%s: %+v\n%s", w, rep, stdout)
		}
		// Items are those of the measured calls: 8 a stream call, and
		// every call of the stream workload streams.
		if w == "stream" && math.Abs(rep.ItemsPerSec-8*rep.CallsPerSec) > 1e-6*rep.ItemsPerSec {
			t.Fatalf("%.1f items/s for %.1f calls/s of 8 items", rep.ItemsPerSec, rep.CallsPerSec)
		}
	}
}

// An unreachable target fails with a clear error and status 1.
func TestUnreachableTarget(t *testing.T) {
	code, _, stderr := runArgs("-target", "127.0.0.1:1", "-d", "1s", "-quiet")
	if code != 1 || !strings.Contains(stderr, "connect to 127.0.0.1:1") {
		t.Fatalf("status %d: %s", code, stderr)
	}
}

// phases returns a channel that gets the name of every phase loadgen
// enters, for the length of the test.
func phases(t *testing.T) <-chan string {
	ch := make(chan string, 16)
	f := func(name string) {
		select {
		case ch <- name:
		default:
		}
	}
	phase.Store(&f)
	t.Cleanup(func() { phase.Store(nil) })
	return ch
}

func waitPhase(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("loadgen never entered %s", want)
		}
	}
}

// runAsync runs loadgen with args on a goroutine.
func runAsync(args ...string) (done chan struct{}, code *int, stdout *string) {
	done, code, stdout = make(chan struct{}), new(int), new(string)
	go func() {
		defer close(done)
		*code, *stdout, _ = runArgs(args...)
	}()
	return done, code, stdout
}

func interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal(what)
	}
}

// Ctrl-C stops the run, prints the partial results, and exits with the
// status of an interrupted run.
func TestInterruptPrintsPartialResults(t *testing.T) {
	ph := phases(t)
	done, code, stdout := runAsync("-d", "60s", "-warmup", "100ms", "-c", "1", "-inflight", "4", "-quiet")
	waitPhase(t, ph, "measure")
	interrupt(t)
	waitDone(t, done, "run did not stop on SIGINT")
	if *code != exitInterrupted || !strings.Contains(*stdout, "interrupted") || !strings.Contains(*stdout, "calls/s") {
		t.Fatalf("status %d:\n%s", *code, *stdout)
	}
}

// Ctrl-C during the warm-up says so and prints no rates: nothing was
// measured.
func TestInterruptDuringWarmup(t *testing.T) {
	ph := phases(t)
	done, code, stdout := runAsync("-d", "60s", "-warmup", "60s", "-c", "1", "-inflight", "4", "-quiet")
	waitPhase(t, ph, "warmup")
	interrupt(t)
	waitDone(t, done, "run did not stop on SIGINT during the warm-up")
	if *code != exitInterrupted || !strings.Contains(*stdout, "nothing was measured") || strings.Contains(*stdout, "calls/s") {
		t.Fatalf("status %d:\n%s", *code, *stdout)
	}
}

// hangingServer answers the handshake and never a call.
func hangingServer(t *testing.T) string {
	r := core.NewRouter()
	release := make(chan struct{})
	r.Handle(mEcho, func(ctx context.Context, req *core.Request) error {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil
	})
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	srv, err := core.Serve(tr, "tcp", "127.0.0.1:0", core.Options{Router: r, MaxConcurrentRequests: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); srv.Close(); tr.Close() })
	return srv.Addr().String()
}

// A server that stops answering cannot hold a run past -d: the window
// closes on time, the calls in flight get -drain, then are cancelled and
// counted as failed, and the report says so.
func TestRunEndsWhenServerHangs(t *testing.T) {
	addr := hangingServer(t)
	start := time.Now()
	jsonPath := filepath.Join(t.TempDir(), "run.json")
	code, stdout, stderr := runArgs("-target", addr, "-d", "1s", "-warmup", "100ms", "-drain", "500ms", "-c", "1", "-inflight", "8", "-quiet", "-json", jsonPath)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the run took %v with -d 1s -drain 500ms", took)
	}
	if code != 0 || !strings.Contains(stdout, "measured 1.0") || !strings.Contains(stdout, "were cancelled") {
		t.Fatalf("status %d:\n%s\n%s", code, stdout, stderr)
	}
	// Nothing completed: no latency anywhere, not 0 µs.
	if !strings.Contains(stdout, "p50          -") || strings.Contains(stdout, "0µs") {
		t.Fatalf("latencies of a run in which nothing completed:\n%s", stdout)
	}
	var rep struct {
		Latency   map[string]int64 `json:"latency_us"`
		Intervals []struct {
			P50 *int64 `json:"p50_us"`
		} `json:"intervals"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("json: %v", err)
	}
	if rep.Latency != nil || len(rep.Intervals) == 0 || rep.Intervals[0].P50 != nil {
		t.Fatalf("json latencies of an empty run: %s", b)
	}
}

// A second Ctrl-C exits at once, without waiting for the drain.
func TestSecondInterruptExits(t *testing.T) {
	addr := hangingServer(t)
	exited := make(chan int, 1)
	f := func(code int) { exited <- code; runtime.Goexit() }
	exit.Store(&f)
	t.Cleanup(func() { exit.Store(nil) })
	ph := phases(t)
	done, _, _ := runAsync("-target", addr, "-d", "60s", "-warmup", "100ms", "-drain", "3s", "-c", "1", "-inflight", "8", "-quiet")
	waitPhase(t, ph, "measure")
	interrupt(t)
	waitPhase(t, ph, "interrupted") // the second handler is in
	interrupt(t)
	select {
	case code := <-exited:
		if code != exitInterrupted {
			t.Fatalf("exit status %d", code)
		}
	case <-time.After(2 * time.Second): // well before the 3 s drain
		t.Fatal("a second interrupt did not exit at once")
	}
	waitDone(t, done, "the run did not end after its drain")
}

// merge refuses a file that is not an HdrHistogram log, instead of
// reporting 0 calls.
func TestMergeRefusesNonLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("just some text\nnot a histogram\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runArgs("merge", path)
	if code != 1 || !strings.Contains(stderr, "not an HdrHistogram log") || strings.Contains(stdout, "merged") {
		t.Fatalf("status %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
}

// The CSV total row of an open loop gives the offered rate; a closed
// loop's report says its latency is not corrected.
func TestReportRates(t *testing.T) {
	csvPath := filepath.Join(t.TempDir(), "run.csv")
	code, _, stderr := runArgs("-rate", "2000", "-d", "1s", "-warmup", "100ms", "-c", "1", "-quiet", "-csv", csvPath)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	total := rows[len(rows)-1]
	if total[0] != "total" || total[6] != "2000.000" {
		t.Fatalf("total row %v, want offered_per_s 2000.000", total)
	}
	if strings.Contains(stderr, "%!") {
		t.Fatalf("a formatting mistake in the report:\n%s", stderr)
	}
	_, stdout, _ := runArgs("-d", "300ms", "-warmup", "100ms", "-c", "1", "-inflight", "2", "-quiet")
	if !strings.Contains(stdout, "not corrected for coordinated omission") {
		t.Fatalf("closed loop report:\n%s", stdout)
	}
}

// Counts in the report have thousands separators, late sends too.
func TestLateSendsSeparated(t *testing.T) {
	cfg := &config{conns: 1, inflight: 1, rate: rateSpec{from: 1e6, to: 1e6}, duration: time.Second,
		percentiles: defaultPercentiles, workload: "unary", transport: "gnet", payload: 64, drain: time.Second}
	start := time.Now()
	res := &result{cfg: cfg, start: start, end: start.Add(time.Second), late: 375023, corrected: newHist(), raw: newHist()}
	var b bytes.Buffer
	writeText(&b, res)
	if !strings.Contains(b.String(), "375,023 sends late") {
		t.Fatalf("report:\n%s", b.String())
	}
}

// checkHlogMax: every interval line gives its max in milliseconds, as
// HdrHistogram's tools read it (the values are microseconds).
func checkHlogMax(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' || line[0] == '"' {
			continue
		}
		fields := strings.Split(line, ",")
		if strings.HasPrefix(fields[0], "Tag=") {
			fields = fields[1:]
		}
		h, err := hdr.Decode([]byte(fields[3]))
		if err != nil {
			t.Fatalf("hlog line %q: %v", line, err)
		}
		got, _ := strconv.ParseFloat(fields[2], 64)
		if want := float64(h.Max()) / 1000; math.Abs(got-want) > 0.001 {
			t.Fatalf("interval max %v, want %v ms (the max, %d us)", got, want, h.Max())
		}
		lines++
	}
	if lines == 0 {
		t.Fatal("no interval lines in the hlog")
	}
}

// The warm-up is announced, so that a long one does not look like a hang.
func TestWarmupAnnounced(t *testing.T) {
	code, _, stderr := runArgs("-d", "300ms", "-warmup", "100ms", "-c", "1", "-inflight", "2")
	if code != 0 || !strings.Contains(stderr, "warming up for 100ms, then measuring 300ms") {
		t.Fatalf("status %d, stderr:\n%s", code, stderr)
	}
}

// Calls that time out are in the percentiles at the time they took (not
// left out, which would hide a slow server's tail), and counted as failed.
func TestTimeoutsInPercentiles(t *testing.T) {
	addr := hangingServer(t)
	jsonPath := filepath.Join(t.TempDir(), "run.json")
	code, stdout, stderr := runArgs("-target", addr, "-timeout", "200ms", "-d", "1s", "-warmup", "100ms", "-c", "1", "-inflight", "4", "-quiet", "-json", jsonPath)
	if code != 0 {
		t.Fatalf("status %d\n%s\n%s", code, stdout, stderr)
	}
	var rep struct {
		Failed  int64            `json:"failed"`
		Latency map[string]int64 `json:"latency_us"`
	}
	b, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Failed == 0 || rep.Latency["p50"] < 200_000 {
		t.Fatalf("%d failed, p50 %d us: timeouts should be in the percentiles at 200 ms or more", rep.Failed, rep.Latency["p50"])
	}
	if !strings.Contains(stdout, "timed-out calls are in the percentiles") {
		t.Fatalf("the report does not say where the timeouts are:\n%s", stdout)
	}
}

// The schedule's due count inverts at: exactly the calls due by then.
func TestScheduleDue(t *testing.T) {
	for _, spec := range []rateSpec{{from: 1000, to: 1000}, {from: 1000, to: 5000, over: 2 * time.Second}} {
		s := newSchedule(spec)
		for _, d := range []time.Duration{0, time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 3 * time.Second} {
			n := s.due(d)
			if n > 0 && s.at(n-1) > d || s.at(n) <= d {
				t.Fatalf("%v: due(%v) = %d, but call %d is at %v and call %d at %v", spec, d, n, n-1, s.at(n-1), n, s.at(n))
			}
		}
	}
}

// An open loop that cannot keep up says how many calls were due, sent
// and completed, and warns that the rate was not reached.
func TestOpenLoopShortfallReported(t *testing.T) {
	addr := hangingServer(t) // answers nothing: 2 calls in flight at most, 100k/s offered
	code, stdout, stderr := runArgs("-target", addr, "-rate", "100k", "-d", "1s", "-warmup", "100ms", "-c", "1", "-inflight", "2", "-drain", "200ms", "-quiet")
	if code != 0 || !strings.Contains(stdout, "due,") || !strings.Contains(stdout, "the offered rate was not reached") {
		t.Fatalf("status %d\n%s\n%s", code, stdout, stderr)
	}
}
