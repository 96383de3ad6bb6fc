// Package pprof profiles a run: one call starts CPU, heap, allocs, mutex,
// block and goroutine profiling into a directory, Stop writes them all;
// an option serves net/http/pprof for live inspection. Rove handlers can
// carry pprof labels (core.Options.ProfileLabels), so a CPU profile splits
// per service and method: go tool pprof -tagfocus method=Echo cpu.pprof.
package pprof

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
)

// Options choose what to profile. The zero value profiles nothing and
// serves nothing; set Dir for files, HTTPAddr for a live endpoint, or both.
type Options struct {
	// Dir receives cpu.pprof, heap.pprof, allocs.pprof, mutex.pprof,
	// block.pprof and goroutine.pprof on Stop. Created if missing.
	Dir string
	// CPUFile and MemFile, if set, write just the CPU profile and the heap
	// profile to these paths (the -cpuprofile / -memprofile convention).
	CPUFile string
	MemFile string
	// HTTPAddr, if set, serves net/http/pprof there (e.g. "127.0.0.1:6060").
	// Use a loopback address: profiles reveal internals.
	HTTPAddr string
	// MutexFraction and BlockRate set runtime.SetMutexProfileFraction and
	// runtime.SetBlockProfileRate while profiling to Dir (defaults 100 and
	// 10000 ns). They cost throughput: leave Dir empty for clean numbers.
	MutexFraction int
	BlockRate     int
}

// Profiler is a profiling run in progress.
type Profiler struct {
	opts      Options
	cpu       *os.File
	srv       *http.Server
	ln        net.Listener
	served    sync.WaitGroup
	oldMutex  int
	stopOnce  sync.Once
	stopError error
}

// Start begins profiling. Call Stop when the run ends.
func Start(opts Options) (*Profiler, error) {
	p := &Profiler{opts: opts}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, err
		}
		if opts.MutexFraction <= 0 {
			opts.MutexFraction = 100
		}
		if opts.BlockRate <= 0 {
			opts.BlockRate = 10000
		}
		p.oldMutex = runtime.SetMutexProfileFraction(opts.MutexFraction)
		runtime.SetBlockProfileRate(opts.BlockRate)
		p.opts = opts
	}
	cpuPath := opts.CPUFile
	if cpuPath == "" && opts.Dir != "" {
		cpuPath = filepath.Join(opts.Dir, "cpu.pprof")
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err != nil {
			p.restoreRates()
			return nil, err
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			p.restoreRates()
			return nil, fmt.Errorf("pprof: start CPU profile: %w", err)
		}
		p.cpu = f
	}
	if opts.HTTPAddr != "" {
		ln, err := net.Listen("tcp", opts.HTTPAddr)
		if err != nil {
			p.Stop()
			return nil, err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
		p.ln, p.srv = ln, &http.Server{Handler: mux}
		p.served.Add(1)
		go func() {
			defer p.served.Done()
			_ = p.srv.Serve(ln)
		}()
	}
	return p, nil
}

// Addr returns the address of the pprof HTTP endpoint, or nil.
func (p *Profiler) Addr() net.Addr {
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Stop ends profiling, writes every profile and stops the HTTP endpoint.
// It is idempotent and returns the first error.
func (p *Profiler) Stop() error {
	p.stopOnce.Do(func() { p.stopError = p.stop() })
	return p.stopError
}

func (p *Profiler) stop() error {
	var errs []error
	if p.cpu != nil {
		rpprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
		if p.opts.Dir != "" && p.opts.CPUFile != "" {
			// One CPU profile runs at a time: it went to CPUFile, and Dir,
			// which promises cpu.pprof, gets a copy.
			errs = append(errs, copyFile(p.opts.CPUFile, filepath.Join(p.opts.Dir, "cpu.pprof")))
		}
	}
	if p.opts.MemFile != "" {
		runtime.GC() // up-to-date heap statistics
		errs = append(errs, writeProfile("heap", p.opts.MemFile))
	}
	if p.opts.Dir != "" {
		runtime.GC()
		for _, name := range []string{"heap", "allocs", "mutex", "block", "goroutine"} {
			errs = append(errs, writeProfile(name, filepath.Join(p.opts.Dir, name+".pprof")))
		}
		p.restoreRates()
	}
	if p.srv != nil {
		errs = append(errs, p.srv.Close())
		p.served.Wait()
	}
	return errors.Join(errs...)
}

func (p *Profiler) restoreRates() {
	if p.opts.Dir != "" {
		runtime.SetMutexProfileFraction(p.oldMutex)
		runtime.SetBlockProfileRate(0)
	}
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rpprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("pprof: write %s profile: %w", name, err)
	}
	return f.Close()
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
