package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plotFiles writes an SVG per plot and the markdown that shows them.
func TestPlotFiles(t *testing.T) {
	dir := t.TempDir()
	systems := []system{calibration, {name: "A", kind: "rove"}, {name: "B", kind: "grpc"}}
	s := func(rate float64, p99 time.Duration) sample {
		return sample{callsPerSec: rate, p50: p99 / 4, p99: p99, p999: 2 * p99}
	}
	results := map[string]map[string][]sample{
		"4x256":       {"A": {s(600e3, 4*time.Millisecond)}, "B": {s(50e3, 40*time.Millisecond)}},
		"stream-1024": {"A": {s(60e3, 10*time.Millisecond)}, "B": {s(20e3, 50*time.Millisecond)}},
	}
	open := map[string]map[float64][]openSample{"A": {0.25: {{offered: 150e3, p99: time.Millisecond}}, 0.5: {{offered: 300e3, p99: 2 * time.Millisecond}}}}
	var scs []scenario
	for _, sc := range allScenarios {
		if sc.name == "4x256" || sc.name == "stream-1024" {
			scs = append(scs, sc)
		}
	}
	md, err := plotFiles(dir, "docs/bench", scs, systems, results, open)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"latency-4x256.svg", "latency-vs-rate.svg", "stream-stream-1024.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), "<svg") {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.Contains(md, "(docs/bench/"+name+")") {
			t.Fatalf("markdown lacks %s:\n%s", name, md)
		}
	}
}
