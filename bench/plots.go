package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// The plots BENCHMARKS.md shows beside its tables, written as SVG next to
// it (docs/bench/): latency percentiles per system, latency against the
// offered rate, and streaming items/s.

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

func colorOf(i int) color.RGBA { return palette[i%len(palette)] }

// plotFiles writes the plots into dir and returns the markdown that shows
// them (paths relative to the markdown file's directory, rel).
func plotFiles(dir, rel string, scenarios []scenario, systems []system, results map[string]map[string][]sample, open map[string]map[float64][]openSample) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var md string
	write := func(name, title string, p *plot.Plot) error {
		if p == nil {
			return nil
		}
		if err := p.Save(8*vg.Inch, 4*vg.Inch, filepath.Join(dir, name)); err != nil {
			return err
		}
		md += fmt.Sprintf("\n![%s](%s)\n", title, filepath.ToSlash(filepath.Join(rel, name)))
		return nil
	}
	for _, sc := range scenarios {
		if sc.name != "4x256" {
			continue
		}
		p, err := percentilePlot(sc, systems, results[sc.name])
		if err != nil {
			return "", err
		}
		if err := write("latency-4x256.svg", "latency percentiles at 4x256, per system", p); err != nil {
			return "", err
		}
	}
	if p, err := openPlot(systems, open); err != nil {
		return "", err
	} else if err := write("latency-vs-rate.svg", "p99 latency (corrected) against the offered rate", p); err != nil {
		return "", err
	}
	for _, sc := range scenarios {
		if !sc.streams() {
			continue
		}
		p, err := streamPlot(sc, systems, results[sc.name])
		if err != nil {
			return "", err
		}
		if err := write("stream-"+sc.name+".svg", "streaming items/s, "+sc.description, p); err != nil {
			return "", err
		}
	}
	return md, nil
}

// percentilePlot: one line per system through its p50, p99 and p99.9
// (medians over the runs), log latency.
func percentilePlot(sc scenario, systems []system, runs map[string][]sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "latency percentiles, " + sc.description
	p.X.Label.Text, p.Y.Label.Text = "percentile", "latency (ms, log)"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	p.NominalX("p50", "p99", "p99.9")
	for i, sys := range systems {
		rs := runs[sys.name]
		if sys.kind == "" || len(rs) == 0 {
			continue
		}
		ms := func(f func(sample) time.Duration) float64 { return median(durs(rs, f)) / 1e6 }
		pts := plotter.XYs{{X: 0, Y: ms(func(s sample) time.Duration { return s.p50 })},
			{X: 1, Y: ms(func(s sample) time.Duration { return s.p99 })},
			{X: 2, Y: ms(func(s sample) time.Duration { return s.p999 })}}
		if err := addSeries(p, i, sys.name, pts); err != nil {
			return nil, err
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// openPlot: corrected p99 against the offered rate, one line per system.
func openPlot(systems []system, open map[string]map[float64][]openSample) (*plot.Plot, error) {
	if len(open) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "open loop: p99 from when each call was due, against the offered rate"
	p.X.Label.Text, p.Y.Label.Text = "offered calls/s (log)", "p99 (ms, log)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	for i, sys := range systems {
		var pts plotter.XYs
		for _, frac := range openFractions {
			rs := open[sys.name][frac]
			if len(rs) == 0 {
				continue
			}
			offered, p99 := make([]float64, len(rs)), make([]float64, len(rs))
			for j, r := range rs {
				offered[j], p99[j] = r.offered, float64(r.p99)/1e6
			}
			pts = append(pts, plotter.XY{X: median(offered), Y: max(median(p99), 1e-3)})
		}
		if err := addSeries(p, i, sys.name, pts); err != nil {
			return nil, err
		}
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// streamPlot: items/s per system, as bars.
func streamPlot(sc scenario, systems []system, runs map[string][]sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "items/s, " + sc.description
	p.Y.Label.Text = "items/s"
	var names []string
	var vals plotter.Values
	for _, sys := range systems {
		rs := runs[sys.name]
		if sys.kind == "" || len(rs) == 0 {
			continue
		}
		rates := make([]float64, len(rs))
		for i, r := range rs {
			rates[i] = r.callsPerSec * float64(sc.items)
		}
		names, vals = append(names, sys.name), append(vals, median(rates))
	}
	if len(vals) == 0 {
		return nil, nil
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = colorOf(0)
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min = 0
	return p, nil
}

func addSeries(p *plot.Plot, i int, name string, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = colorOf(i), colorOf(i)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}
