package reflection

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/rove-rpc/rove/core"
	"github.com/rove-rpc/rove/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// A server lists what its router serves, names and ids, sorted, itself
// included, and filtered by service when asked.
func TestList(t *testing.T) {
	r := core.NewRouter()
	echo := func(ctx context.Context, req *core.Request) error { return req.Reply(req.Payload(), nil) }
	r.Handle(core.NewMethod("kv", "Put"), echo)
	r.HandleInline(core.NewMethod("kv", "Get"), echo)
	r.Handle(core.NewMethod("admin", "Stats"), echo)
	Register(r)
	client, server, err := core.Pipe(context.Background(), core.Options{}, core.Options{Router: r})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	defer client.Close()
	cl := client.Caller()
	defer cl.Close()

	all, err := List(context.Background(), cl, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"admin.Stats", "kv.Get", "kv.Put", "rove.reflection.v1.ListMethods"}
	if len(all) != len(want) {
		t.Fatalf("listed %+v", all)
	}
	for i, m := range all {
		if m.Service+"."+m.Name != want[i] || m.ID != core.MethodID(m.Service, m.Name) {
			t.Errorf("method %d: %+v, want %s", i, m, want[i])
		}
	}
	kv, err := List(context.Background(), cl, "kv")
	if err != nil || len(kv) != 2 || kv[0].Name != "Get" {
		t.Fatalf("kv: %+v %v", kv, err)
	}
}
