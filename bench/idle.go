package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rove-rpc/rove/core"
)

// stats is what an idle server reports about itself.
type stats struct {
	HeapInuse  int64 `json:"heap_inuse"`
	RSS        int64 `json:"rss"`
	Goroutines int   `json:"goroutines"`
	FDs        int   `json:"fds"`
}

func readStats() stats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := stats{HeapInuse: int64(m.HeapInuse), Goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, resident int64
		fmt.Sscan(string(b), &size, &resident)
		s.RSS = resident * int64(os.Getpagesize())
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.FDs = len(ents)
	}
	return s
}

// raiseFileLimit lifts the soft open-file limit to the hard one: 10,000
// connections need more than the usual 1,024.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// idleServe is the server process: it prints its address, then answers
// each "stats" line on stdin with a JSON line, until stdin closes.
func idleServe(kind string) error {
	raiseFileLimit()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close() // the server listens on it itself
	stop, err := serve(kind, addr, false)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Println("addr " + addr) // prefixed: a server's logger may write to stdout too
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			b, _ := json.Marshal(readStats())
			fmt.Println("stats " + string(b))
		}
	}
	return nil
}

// idleClient holds one connection open; close ends it.
type idleClient func()

// dialIdle connects and completes each system's handshake, so that the
// server holds the connection as it would hold a real client's.
func dialIdle(kind, target string) (idleClient, error) {
	switch kind {
	case "rove":
		s, err := core.Dial(context.Background(), roveClients, "tcp", target, core.Options{})
		if err != nil {
			return nil, err
		}
		return func() { s.Close() }, nil
	case "grpc":
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		cc.Connect()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for st := cc.GetState(); st != connectivity.Ready; st = cc.GetState() {
			if !cc.WaitForStateChange(ctx, st) {
				cc.Close()
				return nil, fmt.Errorf("grpc: not ready: %v", st)
			}
		}
		return func() { cc.Close() }, nil
	case "raw":
		nc, err := net.Dial("tcp", target)
		if err != nil {
			return nil, err
		}
		return func() { nc.Close() }, nil
	}
	return nil, fmt.Errorf("idle: unknown kind %q", kind)
}

type idleResult struct {
	kind       string
	n          int
	heap, rss  float64 // bytes per connection
	goroutines float64
	fds        float64
	dial       time.Duration // per connection
}

// idle measures every kind in turn and prints a Markdown table.
func idle(kinds string, n int) error {
	raiseFileLimit()
	var results []idleResult
	for _, kind := range strings.Split(kinds, ",") {
		r, err := idleOne(kind, n)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		results = append(results, r)
	}
	fmt.Print(idleTable(results))
	return nil
}

// idleKinds are the systems idle knows how to hold connections to.
var idleKinds = []string{"rove", "grpc", "raw"}

// idleTable renders idle results as a Markdown table.
func idleTable(results []idleResult) string {
	var b strings.Builder
	b.WriteString("| system | connections | heap / conn | RSS / conn | goroutines / conn | fds / conn | dial + handshake |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %d | %.1f KiB | %.1f KiB | %.2f | %.2f | %.2f ms |\n",
			r.kind, r.n, r.heap/1024, r.rss/1024, r.goroutines, r.fds, float64(r.dial)/float64(time.Millisecond))
	}
	return b.String()
}

func idleOne(kind string, n int) (idleResult, error) {
	cmd := exec.Command(os.Args[0], "idle-serve", "-kind", kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return idleResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return idleResult{}, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return idleResult{}, err
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	out := bufio.NewScanner(stdout)
	line := func(prefix string) (string, error) {
		for out.Scan() {
			if rest, ok := strings.CutPrefix(out.Text(), prefix); ok {
				return rest, nil
			}
		}
		return "", fmt.Errorf("server stopped before a %q line", prefix)
	}
	addr, err := line("addr ")
	if err != nil {
		return idleResult{}, err
	}
	ask := func() (stats, error) {
		var s stats
		if _, err := fmt.Fprintln(stdin, "stats"); err != nil {
			return s, err
		}
		b, err := line("stats ")
		if err != nil {
			return s, err
		}
		return s, json.Unmarshal([]byte(b), &s)
	}
	// One connection first, so that lazily started machinery (event loops,
	// pools) is in the baseline, not in the per-connection figures.
	warm, err := dialIdle(kind, addr)
	if err != nil {
		return idleResult{}, err
	}
	defer warm()
	time.Sleep(200 * time.Millisecond) // the server's side of it settles
	before, err := ask()
	if err != nil {
		return idleResult{}, err
	}
	clients := make([]idleClient, 0, n)
	defer func() {
		for _, c := range clients {
			c()
		}
	}()
	start := time.Now()
	for range n {
		c, err := dialIdle(kind, addr)
		if err != nil {
			return idleResult{}, err
		}
		clients = append(clients, c)
	}
	dial := time.Since(start) / time.Duration(n)
	// Wait until the server holds every connection (its descriptors show
	// it), then a little for handshakes in flight.
	var after stats
	for deadline := time.Now().Add(30 * time.Second); ; {
		if after, err = ask(); err != nil {
			return idleResult{}, err
		}
		if after.FDs-before.FDs >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if after, err = ask(); err != nil {
		return idleResult{}, err
	}
	f := float64(n)
	return idleResult{
		kind: kind, n: n, dial: dial,
		heap:       float64(after.HeapInuse-before.HeapInuse) / f,
		rss:        float64(after.RSS-before.RSS) / f,
		goroutines: float64(after.Goroutines-before.Goroutines) / f,
		fds:        float64(after.FDs-before.FDs) / f,
	}, nil
}
