package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core"
)

// A load test written as code runs under loadgen's load model and
// outputs: every call is counted, failures by their kind.
func TestRunGoTest(t *testing.T) {
	var calls atomic.Int64
	test := Test{Name: "a fake service", Call: func(ctx context.Context, worker int) error {
		n := calls.Add(1)
		if n%10 == 0 {
			return core.Errorf(core.ResourceExhausted, "every tenth")
		}
		return nil
	}}
	out := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr bytes.Buffer
	code := Run(test, []string{"-n", "1000", "-c", "2", "-inflight", "4", "-warmup", "0s", "-quiet", "-json", out}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "calls of a fake service, closed loop: 2 conns x 4 in flight") {
		t.Fatalf("%d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	var rep jsonReport
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK+rep.Failed != 1000 || rep.Errors["ResourceExhausted"] != rep.Failed || rep.Failed < 90 {
		t.Fatalf("ok %d failed %d errors %v", rep.OK, rep.Failed, rep.Errors)
	}
}

func TestRunGoTestRefusesWorkloadFlags(t *testing.T) {
	var stderr bytes.Buffer
	call := func(context.Context, int) error { return errors.New("unused") }
	if code := Run(Test{Call: call}, []string{"-target", "x:1"}, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "a Test makes its own calls") {
		t.Fatalf("%d %s", code, stderr.String())
	}
	stderr.Reset()
	if code := Run(Test{}, nil, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "no Call") {
		t.Fatalf("%d %s", code, stderr.String())
	}
}

// In an open loop, -timeout counts from when a call was due, not from
// when a free worker sent it: with one worker and calls slower than the
// rate, the backlog's calls start already past their deadline and fail as
// timeouts at once, as they would for a client with a deadline.
//
// The call takes its 20 ms whatever its context says: one that gave up at
// its deadline would end just when the next call's deadline was 2 ms
// away, and the worker would settle into starting each call just before
// its deadline, so that only timer jitter made one start past it (the
// test failed in most runs).
func TestOpenLoopDeadlineFromIntendedTime(t *testing.T) {
	var expiredAtStart, calls atomic.Int64
	test := Test{Name: "slow", Call: func(ctx context.Context, worker int) error {
		calls.Add(1)
		if ctx.Err() != nil {
			expiredAtStart.Add(1)
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond) // a slow call: 20 ms, where the schedule allows 2
		return nil
	}}
	var stdout, stderr bytes.Buffer
	code := Run(test, []string{"-rate", "500", "-d", "1s", "-warmup", "0s", "-c", "1", "-inflight", "1", "-timeout", "50ms", "-quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("%d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	if expiredAtStart.Load() == 0 {
		t.Fatalf("none of %d calls started past its deadline: the deadline counts from the send\n%s", calls.Load(), stdout.String())
	}
}

// With -warmup 0s every call is measured: -n 1000 makes exactly 1000
// calls, none unmeasured before measuring starts (a user's server sees
// the calls the report counts).
func TestNoWarmupMakesNoUnmeasuredCalls(t *testing.T) {
	for _, model := range [][]string{{"-c", "2", "-inflight", "16"}, {"-rate", "50k", "-c", "2", "-inflight", "16"}} {
		var calls atomic.Int64
		test := Test{Call: func(ctx context.Context, worker int) error { calls.Add(1); return nil }}
		args := append([]string{"-n", "1000", "-warmup", "0s", "-quiet"}, model...)
		if code := Run(test, args, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
			t.Fatalf("%v: exit %d", model, code)
		}
		if n := calls.Load(); n != 1000 {
			t.Fatalf("%v: %d calls made for -n 1000 with no warm-up", model, n)
		}
	}
}
