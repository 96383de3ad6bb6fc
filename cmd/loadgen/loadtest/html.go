package loadtest

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeHTML writes one self-contained page: the summary, latency by
// percentile (the HdrHistogram plotter's view), and throughput and
// latency over time. Plots are SVG rendered by gonum/plot and inlined;
// the page loads nothing from the network.
func writeHTML(w io.Writer, res *result) error {
	var summary bytes.Buffer
	writeText(&summary, res)
	byPct, err := percentilePlot(res)
	if err != nil {
		return err
	}
	thr, err := throughputPlot(res)
	if err != nil {
		return err
	}
	lat, err := latencyOverTimePlot(res)
	if err != nil {
		return err
	}
	return pageTmpl.Execute(w, map[string]any{
		"Title":   "Rove loadgen: " + res.cfg.describe(),
		"Summary": summary.String(),
		"Plots": []map[string]any{
			{"Title": "Latency by percentile", "SVG": template.HTML(byPct)},
			{"Title": "Throughput over time", "SVG": template.HTML(thr)},
			{"Title": "Latency over time", "SVG": template.HTML(lat)},
		},
	})
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}pre{background:#f6f6f6;padding:1em;overflow-x:auto}figure{margin:2em 0}figcaption{font-weight:bold;margin-bottom:.5em}svg{max-width:100%;height:auto}</style>
</head><body>
<h1>{{.Title}}</h1>
<pre>{{.Summary}}</pre>
{{range .Plots}}<figure><figcaption>{{.Title}}</figcaption>{{.SVG}}</figure>
{{end}}</body></html>
`))

func renderSVG(p *plot.Plot) (string, error) {
	wt, err := p.WriterTo(8*vg.Inch, 3.5*vg.Inch, "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i > 0 { // drop the XML prolog: inline in HTML
		s = s[i:]
	}
	return s, nil
}

// percentilePlot: x is 1/(1-q) on a log scale, so 90%, 99%, 99.9%... are
// evenly spaced, as in HdrHistogram's plotter.
func percentilePlot(res *result) (string, error) {
	p := plot.New()
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks{}
	series := 0
	add := func(name string, h *hdr.Histogram) error {
		if h.TotalCount() == 0 {
			return nil
		}
		var pts plotter.XYs
		for _, q := range []float64{0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999} {
			pts = append(pts, plotter.XY{X: 1 / (1 - q/100), Y: float64(h.ValueAtQuantile(q)) / 1000})
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotColor(series)
		series++
		p.Add(l)
		p.Legend.Add(name, l)
		return nil
	}
	name := "latency"
	if res.cfg.rate.open() {
		name = "corrected"
	}
	if err := add(name, res.corrected); err != nil {
		return "", err
	}
	if res.cfg.rate.open() {
		if err := add("uncorrected", res.raw); err != nil {
			return "", err
		}
	}
	p.X.Max *= 1.5 // room for the last tick's label
	p.Legend.Top, p.Legend.Left = true, true
	return renderSVG(p)
}

type percentileTicks struct{}

func (percentileTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for _, q := range []float64{0, 90, 99, 99.9, 99.99, 99.999} {
		x := 1 / (1 - q/100)
		if x >= min && x <= max*1.0001 {
			ts = append(ts, plot.Tick{Value: x, Label: fmt.Sprintf("%g%%", q)})
		}
	}
	return ts
}

func throughputPlot(res *result) (string, error) {
	p := plot.New()
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "calls/s"
	var done, offered plotter.XYs
	for _, iv := range fullIntervals(res.intervals) {
		t := iv.end.Sub(res.start).Seconds()
		done = append(done, plotter.XY{X: t, Y: iv.rate()})
		if iv.offered > 0 {
			offered = append(offered, plotter.XY{X: t, Y: iv.offered})
		}
	}
	if err := addLine(p, 0, "achieved", done); err != nil {
		return "", err
	}
	if len(offered) > 0 {
		if err := addLine(p, 1, "offered", offered); err != nil {
			return "", err
		}
	}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	return renderSVG(p)
}

// fullIntervals drops a last interval cut short by the end of the run (it
// holds the drain of calls in flight, not a steady rate).
func fullIntervals(ivs []interval) []interval {
	if n := len(ivs); n >= 2 && ivs[n-1].end.Sub(ivs[n-1].start) < ivs[n-2].end.Sub(ivs[n-2].start)/2 {
		return ivs[:n-1]
	}
	return ivs
}

func latencyOverTimePlot(res *result) (string, error) {
	p := plot.New()
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "latency (ms)"
	series := map[string]float64{"p50": 50, "p99": 99, "p99.9": 99.9}
	for i, name := range []string{"p50", "p99", "p99.9"} {
		var pts plotter.XYs
		for _, iv := range fullIntervals(res.intervals) {
			if iv.corrected.TotalCount() == 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: iv.end.Sub(res.start).Seconds(), Y: float64(iv.corrected.ValueAtQuantile(series[name])) / 1000})
		}
		if err := addLine(p, i, name, pts); err != nil {
			return "", err
		}
	}
	p.Y.Min = 0
	p.Legend.Top, p.Legend.Left = true, true
	return renderSVG(p)
}

func addLine(p *plot.Plot, series int, name string, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	for i := range pts {
		if math.IsNaN(pts[i].Y) || math.IsInf(pts[i].Y, 0) {
			pts[i].Y = 0
		}
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color = plotColor(series)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}
