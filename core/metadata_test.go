package core

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// spec:22 metadata travels with requests and responses: ordered entries,
// three value types, duplicates kept.
func TestMetadataRoundTrip(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		got := make(chan Metadata, 1)
		r := NewRouter()
		r.Handle(mEcho, func(ctx context.Context, req *Request) error {
			got <- req.Metadata()
			return req.Reply(nil, Metadata{}.Add("resp", U64Value(42), 0))
		})
		client, _ := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		sent := Metadata{}.
			Add("k", StringValue("first"), 0).
			Add("bin", BytesValue([]byte{0, 1}), 0).
			Add("n", U64Value(1<<40), 1<<12).
			Add("k", StringValue("second"), 0)
		var respMD Metadata
		err := cl.Call(context.Background(), mEcho, nil, &CallOptions{Metadata: sent}, func(r Reply) error {
			respMD = r.Metadata()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		md := <-got
		if fmt.Sprint(md) != fmt.Sprint(sent) || len(md) != 4 || md[3].Value.Str() != "second" || md[2].Flags != 1<<12 {
			t.Fatalf("handler got %v, sent %v", md, sent)
		}
		if v, ok := respMD.Get("resp"); !ok || v.U64() != 42 {
			t.Fatalf("response metadata %v", respMD)
		}
	})
}

// spec:23 SENSITIVE values never show in String or %v/%#v; Forward drops
// NO_PROPAGATE entries and keeps every other flag bit, known or not.
func TestMetadataSensitiveAndForward(t *testing.T) {
	md := Metadata{}.
		Add("user", StringValue("ann"), 0).
		Add("token", StringValue("s3cr3t"), Sensitive).
		Add("hop", U64Value(1), NoPropagate).
		Add("future", StringValue("x"), Sensitive|1<<30)
	for _, s := range []string{md.String(), fmt.Sprint(md), fmt.Sprintf("%v %+v %#v %s", md, md, md, md)} {
		if strings.Contains(s, "s3cr3t") || !strings.Contains(s, "<redacted>") || !strings.Contains(s, "ann") {
			t.Fatalf("leaked or lost: %s", s)
		}
	}
	fw := md.Forward()
	if len(fw) != 3 || fw[0].Key != "user" || fw[1].Key != "token" || fw[2].Key != "future" {
		t.Fatalf("forwarded %v", fw)
	}
	if fw[2].Flags != Sensitive|1<<30 {
		t.Fatalf("unknown flag bits lost: %b", fw[2].Flags)
	}
}

// MetaValue.String gives any value as text.
func TestMetaValueString(t *testing.T) {
	for _, c := range []struct {
		v    MetaValue
		want string
	}{{StringValue("abc"), "abc"}, {BytesValue([]byte("xy")), "xy"}, {U64Value(42), "42"}} {
		if got := c.v.String(); got != c.want {
			t.Errorf("%v: %q, want %q", c.v.Type(), got, c.want)
		}
	}
}
