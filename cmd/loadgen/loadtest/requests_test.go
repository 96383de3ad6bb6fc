package loadtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/netpoll"
)

type kvKey struct {
	Key string `json:"key"`
}
type kvVal struct {
	Value string `json:"value"`
}

// kvServer is a user's service: typed Get, NotFound for keys that do not
// start with "k"; it counts the keys it saw.
func kvServer(t *testing.T) (string, func() map[string]int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	get := core.NewTypedMethod[kvKey, kvVal]("kv.v1", "Get")
	r := core.NewRouter()
	get.Handle(r, func(ctx context.Context, k kvKey) (kvVal, error) {
		mu.Lock()
		seen[k.Key]++
		mu.Unlock()
		if !strings.HasPrefix(k.Key, "k") {
			return kvVal{}, core.Errorf(core.NotFound, "no key %q", k.Key)
		}
		return kvVal{Value: "v"}, nil
	})
	srv, err := core.Serve(netpoll.Std{}, "tcp", "127.0.0.1:0", core.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String(), func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// -method loads a user's service with a templated JSON request: every
// call gets its own counter value, and the report says what was loaded.
func TestLoadAServiceWithTemplate(t *testing.T) {
	addr, seen := kvServer(t)
	code, stdout, stderr := runArgs("-target", addr, "-transport", "net", "-method", "kv.v1/Get",
		"-data", `{"key":"k{{counter}}"}`, "-n", "300", "-c", "2", "-inflight", "4", "-warmup", "0s", "-quiet")
	if code != 0 || !strings.Contains(stdout, "calls of kv.v1/Get (request -data)") || !strings.Contains(stdout, "300 ok") {
		t.Fatalf("%d\n%s\n%s", code, stdout, stderr)
	}
	keys := seen()
	if len(keys) < 300 || keys["k0"] != 1 || keys["k299"] != 1 || keys["k1"] != 1 {
		t.Fatalf("the server saw %d distinct keys (k0 %d, k299 %d)", len(keys), keys["k0"], keys["k299"])
	}
}

// Requests from a file, one per line, in turn; failures are counted by
// their canonical code.
func TestLoadAServiceFromLines(t *testing.T) {
	addr, seen := kvServer(t)
	dir := t.TempDir()
	lines := filepath.Join(dir, "reqs.jsonl")
	if err := os.WriteFile(lines, []byte("{\"key\":\"ka\"}\n\n{\"key\":\"missing\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.json")
	code, stdout, stderr := runArgs("-target", addr, "-transport", "net", "-method", "kv.v1.Get",
		"-data-lines", lines, "-n", "100", "-c", "1", "-inflight", "1", "-warmup", "0s", "-quiet", "-json", out)
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, stdout, stderr)
	}
	var rep jsonReport
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK != 50 || rep.Failed != 50 || rep.Errors["NotFound"] != 50 {
		t.Fatalf("ok %d failed %d errors %v", rep.OK, rep.Failed, rep.Errors)
	}
	// In turn: the two requests alternate (the warm-up's calls too).
	if k := seen(); k["ka"] < 50 || k["missing"] < 50 || k["ka"]-k["missing"] > 1 || k["missing"]-k["ka"] > 1 {
		t.Fatalf("the server saw %v", k)
	}
}

func TestRequestFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-method", "kv/Get"}, "give its address with -target"},
		{[]string{"-target", "127.0.0.1:1", "-method", "nomethod"}, "want SERVICE/METHOD"},
		{[]string{"-target", "127.0.0.1:1", "-method", "kv/Get", "-workload", "stream"}, "-method makes unary calls"},
		{[]string{"-data", "{}", "-data-file", "x"}, "contradict"},
		{[]string{"-payload", "8", "-data", "{}"}, "contradict"},
		{[]string{"-data", "{not json", "-n", "1"}, "not JSON"},
	} {
		code, _, stderr := runArgs(c.args...)
		if code == 0 || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: status %d, stderr:\n%s", c.args, code, stderr)
		}
	}
}
