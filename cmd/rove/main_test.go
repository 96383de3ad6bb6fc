package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/health"
	"github.com/rove-rpc/rove/internal/leaktest"
	"github.com/rove-rpc/rove/netpoll"
	"github.com/rove-rpc/rove/reflection"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

type getReq struct {
	Key string `json:"key"`
}
type getResp struct {
	Value string `json:"value"`
}

// server runs a small key-value service with reflection and health.
func server(t *testing.T) (string, *health.Server) {
	t.Helper()
	get := core.NewTypedMethod[getReq, getResp]("kv.v1", "Get")
	r := core.NewRouter()
	get.Handle(r, func(ctx context.Context, req getReq) (getResp, error) {
		if req.Key != "a" {
			return getResp{}, core.Errorf(core.NotFound, "no key %q", req.Key)
		}
		rq, _ := core.RequestFrom(ctx)
		who, _ := rq.Metadata().Get("user")
		rq.SetReplyMetadata(core.Metadata{}.Add("served-for", core.StringValue(who.Str()), 0))
		return getResp{Value: "1"}, nil
	})
	reflection.Register(r)
	hs := health.NewServer()
	hs.Register(r)
	srv, err := core.Serve(netpoll.Std{}, "tcp", "127.0.0.1:0", core.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String(), hs
}

func rove(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(`{"key":"a"}`), &out, &errb)
	return code, out.String(), errb.String()
}

func TestList(t *testing.T) {
	addr, _ := server(t)
	code, out, errs := rove("list", addr)
	if code != 0 || !strings.Contains(out, "kv.v1/Get\t0x") || !strings.Contains(out, "rove.health.v1/Watch") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := rove("list", addr, "kv.v1"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("filtered: %d %q", code, out)
	}
}

func TestCall(t *testing.T) {
	addr, _ := server(t)
	code, out, errs := rove("call", "-v", "-H", "user: ann", addr, "kv.v1/Get", `{"key":"a"}`)
	if code != 0 || !strings.Contains(out, `"value": "1"`) || !strings.Contains(errs, `"served-for"="ann"`) {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	// stdin, and the dotted form of the method name
	if code, out, _ := rove("call", addr, "kv.v1.Get", "-"); code != 0 || !strings.Contains(out, `"value": "1"`) {
		t.Fatalf("stdin: %d %s", code, out)
	}
	code, _, errs = rove("call", addr, "kv.v1/Get", `{"key":"zz"}`)
	if code != 1 || !strings.Contains(errs, `NotFound: no key "zz"`) || !strings.Contains(errs, "code: NotFound") {
		t.Fatalf("not found: %d %s", code, errs)
	}
	code, _, errs = rove("call", addr, "kv.v1/Nope", `{}`)
	if code != 1 || !strings.Contains(errs, "code: Unimplemented") {
		t.Fatalf("unknown method: %d %s", code, errs)
	}
	for _, bad := range [][]string{{"call", addr, "kv.v1/Get", "{not json"}, {"call", addr, "noslash"}, {"frob"}, {"call", "-H", "novalue", addr, "a/b"}} {
		if code, _, errs := rove(bad...); code != 2 || !strings.Contains(errs, "usage:") {
			t.Errorf("%v: %d %s", bad, code, errs)
		}
	}
}

func TestHealth(t *testing.T) {
	addr, hs := server(t)
	if code, out, _ := rove("health", addr); code != 0 || strings.TrimSpace(out) != "SERVING" {
		t.Fatalf("%d %q", code, out)
	}
	hs.Shutdown()
	if code, out, _ := rove("health", addr); code != 1 || strings.TrimSpace(out) != "NOT_SERVING" {
		t.Fatalf("after shutdown: %d %q", code, out)
	}
}
