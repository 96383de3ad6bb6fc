package loadtest

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// mergeMain is `loadgen merge a.hlog b.hlog ...`: the exact combined
// distribution of runs from several loadgen processes or machines
// (histograms are merged, never averaged).
func mergeMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("loadgen merge")
	hgrm := fs.String("hgrm", "", "also write the merged distribution (.hgrm) to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return 0
		}
		return usage(fs, stderr, err)
	}
	if fs.NArg() == 0 {
		return usage(fs, stderr, errors.New("merge needs at least one .hlog file"))
	}
	total, err := mergeLogs(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "loadgen merge:", err)
		return 1
	}
	fmt.Fprintf(stdout, "merged %d calls from %d logs\n", total.TotalCount(), fs.NArg())
	for _, p := range defaultPercentiles {
		fmt.Fprintf(stdout, "  %-8s %s\n", fmtPercentile(p), fmtMicros(total.ValueAtQuantile(p)))
	}
	fmt.Fprintf(stdout, "  %-8s %s\n", "max", fmtMicros(total.Max()))
	if *hgrm != "" {
		if err := writeTo(*hgrm, stdout, func(w io.Writer) error {
			_, err := total.PercentilesPrint(w, 5, 1000)
			return err
		}); err != nil {
			fmt.Fprintln(stderr, "loadgen merge:", err)
			return 1
		}
	}
	return 0
}

// mergeLogs merges the untagged (corrected) interval histograms of every
// log.
func mergeLogs(paths []string) (*hdr.Histogram, error) {
	total := newHist()
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r := hdr.NewHistogramLogReader(f)
		intervals := 0
		for {
			h, err := r.NextIntervalHistogram()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if h == nil {
				break
			}
			intervals++
			if h.Tag() == "" {
				total.Merge(h)
			}
		}
		f.Close()
		if intervals == 0 {
			// The reader skips lines it does not understand: a file with
			// none it does is not a log, and must not merge as 0 calls.
			return nil, fmt.Errorf("%s: not an HdrHistogram log (no interval histograms in it)", path)
		}
	}
	return total, nil
}
