package loadtest

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// writeReports prints the summary and writes every requested file. The
// text summary goes to stdout unless a machine format claimed it ("-").
func writeReports(cfg *config, res *result, stdout io.Writer) error {
	text := stdout
	if cfg.jsonOut == "-" || cfg.csvOut == "-" {
		text = os.Stderr
	}
	if res.warmupCut {
		// Nothing was measured: say so, and write no numbers anywhere.
		fmt.Fprintf(text, "Rove loadgen: %s\ntarget: %s\ninterrupted during the %s warm-up: nothing was measured\n",
			cfg.describe(), res.target, cfg.warmup)
		return nil
	}
	writeText(text, res)
	outputs := []struct {
		path  string
		write func(io.Writer, *result) error
	}{
		{cfg.jsonOut, writeJSON},
		{cfg.csvOut, writeCSV},
		{cfg.hgrmOut, writeHgrm},
		{cfg.hlogOut, writeHlog},
		{cfg.htmlOut, writeHTML},
	}
	for _, o := range outputs {
		if o.path == "" {
			continue
		}
		if err := writeTo(o.path, stdout, func(w io.Writer) error { return o.write(w, res) }); err != nil {
			return fmt.Errorf("%s: %w", o.path, err)
		}
	}
	return nil
}

func writeTo(path string, stdout io.Writer, f func(io.Writer) error) error {
	if path == "-" {
		return f(stdout)
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f(file); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func (c *config) describe() string {
	model := fmt.Sprintf("closed loop: %d conns x %d in flight", c.conns, c.inflight)
	if c.rate.open() {
		model = fmt.Sprintf("open loop: %s on %d conns (at most %d in flight each)", c.rate, c.conns, c.inflight)
	}
	what := fmt.Sprintf("%d B echo", c.payload)
	switch {
	case c.custom != nil:
		what = describeCustom(c.custom)
	case c.method != "":
		what = "calls of " + c.method
	case c.data != "" || c.dataFile != "" || c.dataLines != "":
		what = "echo"
	}
	switch {
	case c.dataLines != "":
		what += " (requests from " + c.dataLines + ")"
	case c.dataFile != "":
		what += " (request from " + c.dataFile + ")"
	case c.data != "":
		what += " (request -data)"
	}
	switch c.workload {
	case "stream":
		what = fmt.Sprintf("streams of %d x %d B items (window %d)", c.items, c.payload, c.window)
	case "mixed":
		what = fmt.Sprintf("%d B echo and streams of %d items (window %d)", c.payload, c.items, c.window)
	}
	if c.custom != nil {
		return fmt.Sprintf("%s, %s", what, model)
	}
	return fmt.Sprintf("%s %s, %s, %s", c.workload, what, model, c.transport)
}

func writeText(w io.Writer, res *result) {
	cfg := res.cfg
	fmt.Fprintf(w, "Rove loadgen: %s\n", cfg.describe())
	fmt.Fprintf(w, "target: %s\n", res.target)
	state := ""
	if res.interrupted {
		state = "  (interrupted: partial results)"
	}
	fmt.Fprintf(w, "measured %.2fs after %s warm-up%s\n\n", res.elapsed().Seconds(), cfg.warmup, state)
	fmt.Fprintf(w, "  %-12s %s\n", "calls/s", fmtCount(res.throughput()))
	if cfg.workload != "unary" {
		fmt.Fprintf(w, "  %-12s %s (%d per stream call, window %d)\n", "items/s", fmtCount(float64(res.items)/res.elapsed().Seconds()), cfg.items, cfg.window)
	}
	if cfg.rate.open() {
		fmt.Fprintf(w, "  %-12s %s offered, %s achieved, %s sends late (> %s behind schedule)\n", "rate",
			offeredSummary(res), fmtCount(float64(res.ok+res.failed)/res.elapsed().Seconds()), fmtCount(float64(res.late)), lateAfter)
		due := newSchedule(cfg.rate).due(res.elapsed())
		if cfg.total > 0 {
			due = min(due, cfg.total)
		}
		fmt.Fprintf(w, "  %-12s %s due, %s sent, %s completed\n", "schedule", fmtCount(float64(due)), fmtCount(float64(res.issued)), fmtCount(float64(res.ok+res.failed)))
		if unsent := due - res.issued; unsent > due/100 {
			fmt.Fprintf(w, "  %-12s the offered rate was not reached: %s calls (%.1f%% of those due) were never sent, and their wait is not in the percentiles; raise -conns/-inflight or lower -rate\n",
				"WARNING", fmtCount(float64(unsent)), 100*float64(unsent)/float64(max(due, 1)))
		}
	}
	fmt.Fprintf(w, "  %-12s %s issued = %s ok + %s failed\n", "calls", fmtCount(float64(res.issued)), fmtCount(float64(res.ok)), fmtCount(float64(res.failed)))
	if on := cfg.prof.on(); on != "" {
		fmt.Fprintf(w, "  %-12s %s: it costs throughput (a CPU profile about a fifth); compare runs without it\n", "profiling", on)
	}
	if res.abandoned > 0 {
		fmt.Fprintf(w, "  %-12s %s calls still in flight %s after the window were cancelled (the measured ones count as failed)\n", "drain",
			fmtCount(float64(res.abandoned)), cfg.drain)
	}
	if st := res.link; st.FramesOut > 0 && st.FramesIn > 0 {
		fmt.Fprintf(w, "  %-12s %.3f write calls per frame sent, %.1f frames per read (client side, warm-up included)\n", "syscalls",
			float64(st.Writes)/float64(st.FramesOut), float64(st.FramesIn)/float64(max(st.Reads, 1)))
	}
	if len(res.errKinds) > 0 {
		kinds := make([]string, 0, len(res.errKinds))
		for k, n := range res.errKinds {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		note := ""
		if res.errKinds["timeout"] > 0 {
			note = " (timed-out calls are in the percentiles below, at the time they took)"
		}
		fmt.Fprintf(w, "  %-12s %s%s\n", "errors", strings.Join(kinds, ", "), note)
	}
	fmt.Fprintln(w)
	if cfg.rate.open() {
		fmt.Fprintf(w, "  %-12s %-12s %s\n", "percentile", "latency", "uncorrected (from the actual send)")
	} else {
		// A closed loop sends only when a call comes back, so a stall
		// delays the calls that were not sent: its percentiles leave that
		// wait out. The open loop (-rate) measures it.
		fmt.Fprintf(w, "  %-12s %s\n", "percentile", "latency (closed loop: not corrected for coordinated omission; -rate measures that)")
	}
	for _, p := range cfg.percentiles {
		line := fmt.Sprintf("  %-12s %-12s", fmtPercentile(p), fmtLatency(res.corrected, p))
		if cfg.rate.open() {
			line += " " + fmtLatency(res.raw, p)
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	line := fmt.Sprintf("  %-12s %-12s", "max", fmtLatency(res.corrected, 100))
	if cfg.rate.open() {
		line += " " + fmtLatency(res.raw, 100)
	}
	fmt.Fprintln(w, strings.TrimRight(line, " "))
	fmt.Fprintln(w)
	writeBars(w, res.corrected)
}

func offeredSummary(res *result) string {
	if res.cfg.rate.ramp() {
		return res.cfg.rate.String()
	}
	return fmtCount(res.cfg.rate.from)
}

func fmtPercentile(p float64) string { return "p" + strconv.FormatFloat(p, 'f', -1, 64) }

// writeBars draws the distribution: share of calls per latency band.
func writeBars(w io.Writer, h *hdr.Histogram) {
	total := h.TotalCount()
	if total == 0 {
		return
	}
	bounds := []int64{10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, math.MaxInt64}
	counts := make([]int64, len(bounds))
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		i := sort.Search(len(bounds), func(i int) bool { return b.To < bounds[i] })
		counts[min(i, len(bounds)-1)] += b.Count
	}
	lo, hi := 0, len(counts)-1
	for lo < hi && counts[lo] == 0 {
		lo++
	}
	for hi > lo && counts[hi] == 0 {
		hi--
	}
	fmt.Fprintln(w, "  distribution")
	for i := lo; i <= hi; i++ {
		label := "< " + fmtMicros(bounds[i])
		if bounds[i] == math.MaxInt64 {
			label = ">= " + fmtMicros(bounds[i-1])
		}
		share := float64(counts[i]) / float64(total)
		fmt.Fprintf(w, "  %-10s %-40s %5.1f%%\n", label, strings.Repeat("#", int(math.Round(share*40))), share*100)
	}
}

// jsonReport is the -json summary. Latencies are in microseconds.
type jsonReport struct {
	Workload      string             `json:"workload"`
	Transport     string             `json:"transport"`
	Target        string             `json:"target"`
	Model         string             `json:"model"`
	Conns         int                `json:"conns"`
	Inflight      int                `json:"inflight"`
	PayloadBytes  int                `json:"payload_bytes"`
	OfferedRate   string             `json:"offered_rate,omitempty"`
	DurationSec   float64            `json:"duration_s"`
	WarmupSec     float64            `json:"warmup_s"`
	Interrupted   bool               `json:"interrupted"`
	Issued        int64              `json:"issued"`
	OK            int64              `json:"ok"`
	Failed        int64              `json:"failed"`
	Errors        map[string]int64   `json:"errors,omitempty"`
	LateSends     int64              `json:"late_sends"`
	CallsPerSec   float64            `json:"calls_per_s"`
	ItemsPerSec   float64            `json:"items_per_s,omitempty"`
	LatencyUS     map[string]int64   `json:"latency_us"`
	UncorrectedUS map[string]int64   `json:"uncorrected_latency_us,omitempty"`
	Intervals     []jsonIntervalStat `json:"intervals"`
}

type jsonIntervalStat struct {
	AtSec       float64 `json:"at_s"`
	CallsPerSec float64 `json:"calls_per_s"`
	OfferedRate float64 `json:"offered_per_s,omitempty"`
	Errors      int64   `json:"errors"`
	P50US       *int64  `json:"p50_us"` // null: nothing completed in the interval
	P99US       *int64  `json:"p99_us"`
	MaxUS       *int64  `json:"max_us"`
}

// latencyMap gives the percentiles of h, or nil (null) when it holds no
// call.
func latencyMap(h *hdr.Histogram, ps []float64) map[string]int64 {
	if h.TotalCount() == 0 {
		return nil
	}
	m := map[string]int64{"max": h.Max(), "mean": int64(h.Mean())}
	for _, p := range ps {
		m[fmtPercentile(p)] = h.ValueAtQuantile(p)
	}
	return m
}

func writeJSON(w io.Writer, res *result) error {
	cfg := res.cfg
	rep := jsonReport{
		Workload: cfg.workload, Transport: cfg.transport, Target: res.target, Model: "closed",
		Conns: cfg.conns, Inflight: cfg.inflight, PayloadBytes: cfg.payload,
		DurationSec: res.elapsed().Seconds(), WarmupSec: cfg.warmup.Seconds(), Interrupted: res.interrupted,
		Issued: res.issued, OK: res.ok, Failed: res.failed, Errors: res.errKinds, LateSends: res.late,
		CallsPerSec: res.throughput(), LatencyUS: latencyMap(res.corrected, cfg.percentiles),
		ItemsPerSec: float64(res.items) / res.elapsed().Seconds(),
	}
	if cfg.rate.open() {
		rep.Model, rep.OfferedRate = "open", cfg.rate.String()
		rep.UncorrectedUS = latencyMap(res.raw, cfg.percentiles)
	}
	for _, iv := range res.intervals {
		rep.Intervals = append(rep.Intervals, jsonIntervalStat{
			AtSec: iv.end.Sub(res.start).Seconds(), CallsPerSec: iv.rate(), OfferedRate: iv.offered, Errors: iv.failed,
			P50US: latency(iv.corrected, 50), P99US: latency(iv.corrected, 99), MaxUS: latency(iv.corrected, 100),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func writeCSV(w io.Writer, res *result) error {
	cw := csv.NewWriter(w)
	header := []string{"interval", "start_s", "end_s", "calls", "errors", "calls_per_s", "offered_per_s"}
	for _, p := range res.cfg.percentiles {
		header = append(header, fmtPercentile(p)+"_us")
	}
	header = append(header, "max_us")
	_ = cw.Write(header)
	row := func(name string, start, end float64, calls, errs int64, rate, offered float64, h *hdr.Histogram) {
		r := []string{name, ftoa(start), ftoa(end), strconv.FormatInt(calls, 10), strconv.FormatInt(errs, 10), ftoa(rate), ftoa(offered)}
		for _, p := range append(append([]float64(nil), res.cfg.percentiles...), 100) {
			if v := latency(h, p); v != nil {
				r = append(r, strconv.FormatInt(*v, 10))
			} else {
				r = append(r, "") // nothing completed: no latency
			}
		}
		_ = cw.Write(r)
	}
	for i, iv := range res.intervals {
		row(strconv.Itoa(i+1), iv.start.Sub(res.start).Seconds(), iv.end.Sub(res.start).Seconds(),
			iv.ok+iv.failed, iv.failed, iv.rate(), iv.offered, iv.corrected)
	}
	row("total", 0, res.elapsed().Seconds(), res.ok+res.failed, res.failed, res.throughput(), meanOffered(res), res.corrected)
	cw.Flush()
	return cw.Error()
}

// meanOffered is the open loop's offered rate over the whole run (the
// intervals' rates weighted by their length); 0 in a closed loop.
func meanOffered(res *result) float64 {
	var sum, secs float64
	for _, iv := range res.intervals {
		d := iv.end.Sub(iv.start).Seconds()
		sum += iv.offered * d
		secs += d
	}
	if secs == 0 {
		return 0
	}
	return sum / secs
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

// writeHgrm writes the percentile distribution in milliseconds, the form
// HdrHistogram's plotter reads.
func writeHgrm(w io.Writer, res *result) error {
	_, err := res.corrected.PercentilesPrint(w, 5, 1000)
	return err
}

// writeHlog writes the intervals as an HdrHistogram log (values in µs), so
// runs from several processes can be merged exactly (loadgen merge).
// writeHlogInterval writes one interval line of an HdrHistogram log:
// [Tag=t,]start,length,max,histogram, times in seconds from the base time.
// The interval max is in milliseconds, as HdrHistogram's tools read it.
// The library's writer assumes values in nanoseconds (it divides by 10^6);
// ours are in microseconds, so the line is written here, max / 1000.
func writeHlogInterval(w io.Writer, baseMs int64, start, end time.Time, tag string, h *hdr.Histogram) error {
	payload, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return err
	}
	if tag != "" {
		tag = "Tag=" + tag + ","
	}
	startSec := float64(start.UnixMilli()-baseMs) / 1000
	_, err = fmt.Fprintf(w, "%s%.3f,%.3f,%.3f,%s\n", tag, startSec, end.Sub(start).Seconds(), float64(h.Max())/1000, payload)
	return err
}

func writeHlog(w io.Writer, res *result) error {
	lw := hdr.NewHistogramLogWriter(w)
	start := res.start.UnixMilli()
	if err := lw.OutputLogFormatVersion(); err != nil {
		return err
	}
	_ = lw.OutputComment("rove loadgen: " + res.cfg.describe() + "; values in microseconds")
	_ = lw.OutputStartTime(start)
	lw.SetBaseTime(start)
	_ = lw.OutputBaseTime(start)
	if err := lw.OutputLegend(); err != nil {
		return err
	}
	for _, iv := range res.intervals {
		for _, h := range []struct {
			h   *hdr.Histogram
			tag string
		}{{iv.corrected, ""}, {iv.raw, "uncorrected"}} {
			if h.tag != "" && !res.cfg.rate.open() {
				continue
			}
			if err := writeHlogInterval(w, start, iv.start, iv.end, h.tag, h.h); err != nil {
				return err
			}
		}
	}
	return nil
}
