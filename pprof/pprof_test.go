package pprof

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func burn(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		_ = strings.Repeat("x", n%64)
	}
	return n
}

// Every profile is written, non-empty, and readable by go tool pprof.
func TestProfilesWritten(t *testing.T) {
	dir := t.TempDir()
	p, err := Start(Options{Dir: dir, MemFile: filepath.Join(dir, "mem.pprof")})
	if err != nil {
		t.Fatal(err)
	}
	burn(300 * time.Millisecond)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal("second Stop:", err)
	}
	for _, name := range []string{"cpu", "heap", "allocs", "mutex", "block", "goroutine", "mem"} {
		path := filepath.Join(dir, name+".pprof")
		st, err := os.Stat(path)
		if err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v (size %d)", name, err, st.Size())
		}
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", filepath.Join(dir, "cpu.pprof")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "flat") {
		t.Fatalf("go tool pprof -top cpu.pprof: %v\n%s", err, out)
	}
	out, err = exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", filepath.Join(dir, "allocs.pprof")).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top allocs.pprof: %v\n%s", err, out)
	}
}

// The HTTP endpoint serves the pprof index while running and stops with
// Stop.
func TestHTTPEndpoint(t *testing.T) {
	p, err := Start(Options{HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + p.Addr().String() + "/debug/pprof/"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("endpoint still up after Stop")
	}
	http.DefaultClient.CloseIdleConnections()
}

// With both Dir and CPUFile the CPU profile goes to CPUFile and Dir gets
// its cpu.pprof too, the same profile.
func TestCPUFileAndDir(t *testing.T) {
	dir := t.TempDir()
	cpu := filepath.Join(t.TempDir(), "cpu.out")
	p, err := Start(Options{Dir: dir, CPUFile: cpu})
	if err != nil {
		t.Fatal(err)
	}
	burn(200 * time.Millisecond)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	a, errA := os.ReadFile(cpu)
	b, errB := os.ReadFile(filepath.Join(dir, "cpu.pprof"))
	if errA != nil || errB != nil || len(a) == 0 || string(a) != string(b) {
		t.Fatalf("CPUFile %d bytes (%v), Dir's cpu.pprof %d bytes (%v), equal %v", len(a), errA, len(b), errB, string(a) == string(b))
	}
}
