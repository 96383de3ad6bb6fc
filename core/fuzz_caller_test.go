package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// fuzzItem is what FuzzCaller's typed calls send and decode.
type fuzzItem struct {
	ID   int64
	Name string
	Tags []string
}

// FuzzCaller calls 4 typed (sonic) and 2 raw calls on a dialling session
// and then feeds it a program of frames from a hostile acceptor (the
// format of FuzzSession's): responses to those calls or to none, twice,
// with any status, payload and metadata, and anything else. The typed
// calls' small responses are decoded on the reading goroutine (see
// outCall.early). Whatever arrives: nothing panics, every call returns,
// with a value or a *CallError, the session ends with a protocol or
// connection error once the link closes, and Close returns.
//
// The calls start one after another, each once the peer has its request,
// so they get the ids 1, 3, ..., 11 in order (the seeds answer those).
func FuzzCaller(f *testing.F) {
	for _, prog := range callerFuzzSeeds() {
		f.Add(prog)
	}
	typed := NewTypedMethod[fuzzItem, fuzzItem]("fuzz", "typed")
	f.Fuzz(func(t *testing.T, prog []byte) {
		s, p := newRawPeer(t, true, Options{})
		p.acceptHello(t, s, wire.Settings{})
		cl := s.Caller()
		defer cl.Close()

		const calls = 6
		ends := make(chan error, calls)
		for i := range calls {
			go func() {
				var err error
				if i < 4 {
					_, err = typed.Call(context.Background(), cl, fuzzItem{ID: int64(i), Name: "n", Tags: []string{"x"}})
				} else {
					_, err = call(context.Background(), cl, mEcho, []byte("hi"))
				}
				ends <- err
			}()
			if m := p.nextKind(t, wire.KindRequest); m.ID != uint64(2*i+1) {
				t.Fatalf("call %d has id %d, want %d", i, m.ID, 2*i+1)
			}
		}
		p.playProgram(prog) // what the session sends meanwhile (cancels, a GoAway) is dropped
		for range calls {
			select {
			case err := <-ends:
				var ce *CallError
				if err != nil && !errors.As(err, &ce) {
					t.Fatalf("a call ended with %T %v, not a *CallError", err, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("a call never ended")
			}
		}
		endsWith(t, s, ErrProtocol, ErrConnectionClosed)
	})
}

// callerFuzzSeeds answer FuzzCaller's calls (typed: ids 1, 3, 5, 7; raw:
// 9, 11) in well-formed and broken ways.
func callerFuzzSeeds() [][]byte {
	frame, cat := programFrame, slices.Concat[[]byte]
	resp := func(id uint64, st wire.Status, payload string) []byte {
		return frame(wire.Message{Kind: wire.KindResponse, ID: id, Status: st, Payload: []byte(payload)})
	}
	ok := func(id uint64, payload string) []byte { return resp(id, wire.StatusOK, payload) }
	good := `{"ID":1,"Name":"n","Tags":["x","y"]}`
	md := wire.MakeMetadata(wire.AppendEntry(nil, wire.Entry{Key: []byte("k"), Type: wire.ValueString, Value: []byte("v")}))
	return [][]byte{
		// Every call answered, in order and out of it.
		cat(ok(1, good), ok(3, good), ok(5, good), ok(7, good), ok(9, "a"), ok(11, "b")),
		cat(ok(11, "b"), ok(7, good), ok(1, good), ok(9, "a"), ok(5, good), ok(3, good)),
		// Typed responses that do not decode, are not JSON, have trailing
		// bytes or the wrong types; one with metadata.
		cat(ok(1, `{"ID":"x"}`), ok(3, `{`), ok(5, good+"x"), ok(7, `[1,2]`)),
		cat(frame(wire.Message{Kind: wire.KindResponse, ID: 1, Metadata: md, Payload: []byte(good)}), ok(3, "\xff\xfe")),
		// An empty typed response, and failure statuses. (A frame of the
		// program is at most 255 bytes, so none is over earlyMax: the unit
		// tests cover those.)
		cat(ok(1, ""), resp(3, wire.StatusUserError, `{"code":1}`), resp(5, wire.StatusError, "boom"),
			resp(7, wire.StatusCancelled, ""), resp(9, wire.StatusInternal, "x")),
		// A second response to the same id, one to an id never used, one
		// of the wrong parity.
		cat(ok(1, good), ok(1, good)),
		cat(ok(13, good)),
		cat(ok(2, good)),
		// A GoAway while calls are pending, then a late answer.
		cat(frame(wire.Message{Kind: wire.KindGoAway}), ok(3, good)),
		// Garbage.
		{3, 0xff, 0xff, 0xff},
		[]byte(strings.Repeat("\x01\x00", 8)),
	}
}
