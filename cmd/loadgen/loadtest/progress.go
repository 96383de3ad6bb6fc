package loadtest

import (
	"fmt"
	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a live status line on a terminal: elapsed against the
// planned length, calls/s, errors and the last interval's p99.
type progress struct {
	w     io.Writer
	cfg   *config
	live  bool // a terminal: redraw in place
	drawn bool
}

func newProgress(w io.Writer, cfg *config) *progress {
	live := false
	if f, ok := w.(*os.File); ok && !cfg.quiet {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			live = true
		}
	}
	return &progress{w: w, cfg: cfg, live: live}
}

func (p *progress) update(elapsed time.Duration, ok, failed int64, ivs []interval) {
	if !p.live {
		return
	}
	const width = 24
	frac := 0.0
	if p.cfg.total > 0 {
		frac = float64(ok+failed) / float64(p.cfg.total)
	} else {
		frac = elapsed.Seconds() / p.cfg.duration.Seconds()
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * width)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	rate := float64(ok+failed) / max(elapsed.Seconds(), 1e-9)
	p99 := "-"
	if n := len(ivs); n > 0 && ivs[n-1].corrected.TotalCount() > 0 {
		p99 = fmtMicros(ivs[n-1].corrected.ValueAtQuantile(99))
	}
	fmt.Fprintf(p.w, "\r[%s] %5.1fs  %s calls/s  p99 %s  errors %d   ", bar, elapsed.Seconds(), fmtCount(rate), p99, failed)
	p.drawn = true
}

// snapshot prints one -every line (it does not overwrite).
func (p *progress) snapshot(iv interval, at time.Duration) {
	p.clear()
	c := iv.corrected
	fmt.Fprintf(p.w, "%7.1fs  %10s calls/s  errors %-6d p50 %-9s p90 %-9s p99 %-9s p99.9 %-9s max %s\n",
		at.Seconds(), fmtCount(iv.rate()), iv.failed,
		fmtLatency(c, 50), fmtLatency(c, 90), fmtLatency(c, 99), fmtLatency(c, 99.9), fmtLatency(c, 100))
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 96))
		p.drawn = false
	}
}

func (p *progress) done() { p.clear() }

// fmtLatency prints percentile q of h (100: the max), or "-" when h holds
// no call: an interval in which nothing completed has no latency, not 0.
func fmtLatency(h *hdr.Histogram, q float64) string {
	if h.TotalCount() == 0 {
		return "-"
	}
	if q >= 100 {
		return fmtMicros(h.Max())
	}
	return fmtMicros(h.ValueAtQuantile(q))
}

// latency is percentile q of h (100: the max) for JSON: nil (null) when h
// holds no call.
func latency(h *hdr.Histogram, q float64) *int64 {
	if h.TotalCount() == 0 {
		return nil
	}
	v := h.Max()
	if q < 100 {
		v = h.ValueAtQuantile(q)
	}
	return &v
}

// fmtMicros prints a latency in µs with a readable unit.
func fmtMicros(us int64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%dµs", us)
}

// fmtCount prints 312455.2 as "312,455".
func fmtCount(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
