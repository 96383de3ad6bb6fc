package core

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/rove-rpc/rove/core/internal/wire"
	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// The reading goroutine queues the consecutive items of one channel within
// a batch as one run (itemRun). These tests put many channel messages in
// one write (one read on loopback, so one batch) and check that each item
// still reaches the channel the table names for its id, in order.

var mCollect = NewMethod("testbed", "collect")

// collectServer serves mCollect on the root connection and on every
// virtual one: it reads each bound Rx to its end and replies with their
// items, "a,b|c" for two channels.
func collectServer(t *testing.T) *rawClient {
	t.Helper()
	r := NewRouter()
	r.Handle(mCollect, func(ctx context.Context, req *Request) error {
		var parts []string
		for i := range len(req.Channels()) {
			rx, err := req.Rx(i)
			if err != nil {
				return err
			}
			var items []string
			for {
				it, err := rx.Recv(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return err
				}
				items = append(items, string(it.Payload))
				it.Release()
			}
			rx.Close()
			parts = append(parts, strings.Join(items, ","))
		}
		return req.Reply([]byte(strings.Join(parts, "|")), nil)
	})
	return serveRawClient(t, Options{Router: r, AcceptConn: acceptWith(r, nil)})
}

func bindRecv(ids ...uint64) wire.ChannelList { return bindRecvWindow(16, ids...) }

func bindRecvWindow(window uint64, ids ...uint64) wire.ChannelList {
	var b []byte
	for _, id := range ids {
		b = wire.AppendChannel(b, wire.ChannelBinding{ID: id, Dir: wire.CallerSends, Window: window})
	}
	return wire.MakeChannelList(b)
}

func item(conn, id uint64, p string) wire.Message {
	return wire.Message{Kind: wire.KindChannelItem, Conn: conn, ID: id, Payload: []byte(p)}
}

func closeCh(conn, id uint64) wire.Message {
	return wire.Message{Kind: wire.KindChannelClose, Conn: conn, ID: id}
}

// writeBatch sends msgs in one write.
func (c *rawClient) writeBatch(msgs ...wire.Message) {
	c.t.Helper()
	var b []byte
	for i := range msgs {
		b = netpoll.AppendFrame(b, wire.AppendMessage(nil, &msgs[i]))
	}
	c.write(b)
}

// responses reads n responses and returns their payloads by request id;
// anything else (a ProtocolError) fails the test.
func (c *rawClient) responses(n int) map[[2]uint64]string {
	c.t.Helper()
	got := map[[2]uint64]string{}
	for len(got) < n {
		m, ok := c.next()
		switch {
		case !ok:
			c.t.Fatalf("the session ended with %d of %d responses", len(got), n)
		case m.Kind == wire.KindProtocolError:
			c.t.Fatalf("protocol error %v: %s", m.Code, m.Payload)
		case m.Kind == wire.KindResponse:
			if m.Status != wire.StatusOK {
				c.t.Fatalf("request %d: status %v %q", m.ID, m.Status, m.Payload)
			}
			got[[2]uint64{m.Conn, m.ID}] = string(m.Payload)
		}
	}
	return got
}

// spec:24 items of interleaved channels in one batch each reach their own
// channel, in order.
func TestBatchedItemsReachTheirChannels(t *testing.T) {
	c := collectServer(t)
	c.writeBatch(
		wire.Message{Kind: wire.KindRequest, ID: 1, Method: mCollect.ID, Channels: bindRecv(1, 3)},
		item(0, 1, "a"), item(0, 3, "b"), item(0, 3, "c"), item(0, 1, "d"), item(0, 1, "e"), item(0, 3, "f"),
		closeCh(0, 1), closeCh(0, 3),
	)
	if got := c.responses(1)[[2]uint64{0, 1}]; got != "a,d,e|b,c,f" {
		t.Fatalf("items arrived as %q, want a,d,e|b,c,f", got)
	}
}

// spec:10 a channel id may be bound again once its channel is finished:
// an item in the same batch goes to the new channel, not the old one.
func TestBatchedItemsAfterChannelIDReused(t *testing.T) {
	c := collectServer(t)
	c.writeBatch(
		wire.Message{Kind: wire.KindRequest, ID: 1, Method: mCollect.ID, Channels: bindRecv(1)},
		item(0, 1, "a"), closeCh(0, 1),
		wire.Message{Kind: wire.KindRequest, ID: 3, Method: mCollect.ID, Channels: bindRecv(1)},
		item(0, 1, "b"), closeCh(0, 1),
	)
	got := c.responses(2)
	if got[[2]uint64{0, 1}] != "a" || got[[2]uint64{0, 3}] != "b" {
		t.Fatalf("got %q and %q, want a and b", got[[2]uint64{0, 1}], got[[2]uint64{0, 3}])
	}
}

// spec:10 the same channel id on two connections names two channels, also
// within one batch.
func TestBatchedItemsOfTwoConnsWithOneChannelID(t *testing.T) {
	c := collectServer(t)
	c.send(wire.Message{Kind: wire.KindOpenConn, Conn: 1, Parity: wire.ParityOdd})
	if m, ok := c.next(); !ok || m.Kind != wire.KindAcceptConn {
		t.Fatalf("got %v, want AcceptConn", m.Kind)
	}
	c.writeBatch(
		wire.Message{Kind: wire.KindRequest, ID: 1, Method: mCollect.ID, Channels: bindRecv(1)},
		wire.Message{Kind: wire.KindRequest, Conn: 1, ID: 1, Method: mCollect.ID, Channels: bindRecv(1)},
		item(0, 1, "root"), item(1, 1, "virtual"), item(1, 1, "virtual2"), item(0, 1, "root2"),
		closeCh(0, 1), closeCh(1, 1),
	)
	got := c.responses(2)
	if got[[2]uint64{0, 1}] != "root,root2" || got[[2]uint64{1, 1}] != "virtual,virtual2" {
		t.Fatalf("got %q and %q, want root,root2 and virtual,virtual2", got[[2]uint64{0, 1}], got[[2]uint64{1, 1}])
	}
}

// spec:24 a batch carrying more of one channel's items than one run holds
// (maxRun) delivers them all, in order, before the channel's close.
func TestBatchedItemsLongerThanARun(t *testing.T) {
	c := collectServer(t)
	const n = 3*maxRun + 5
	msgs := []wire.Message{{Kind: wire.KindRequest, ID: 1, Method: mCollect.ID, Channels: bindRecvWindow(n, 1)}}
	want := make([]string, n)
	for i := range n {
		want[i] = strconv.Itoa(i)
		msgs = append(msgs, item(0, 1, want[i]))
	}
	c.writeBatch(append(msgs, closeCh(0, 1))...)
	if got := c.responses(1)[[2]uint64{0, 1}]; got != strings.Join(want, ",") {
		t.Fatalf("items arrived as %q", got)
	}
}

// spec:29 items past the credit are a violation also when they come in
// the same run as items within it: the run is cut at the credit, not
// queued whole.
func TestBatchedItemsOverCreditInOneRun(t *testing.T) {
	c := collectServer(t)
	const window = 4
	msgs := []wire.Message{{Kind: wire.KindRequest, ID: 1, Method: mCollect.ID, Channels: bindRecvWindow(window, 1)}}
	for i := range window + 2 {
		msgs = append(msgs, item(0, 1, strconv.Itoa(i)))
	}
	c.writeBatch(msgs...)
	c.expectViolation(wire.CodeCreditExceeded)
}

// spec:29 the credit left for a run is the window less the items that came
// before it: items over the window are a violation also when each came in
// a run of its own.
func TestCreditCountsEarlierRuns(t *testing.T) {
	r := NewRouter()
	r.Handle(mSum, func(ctx context.Context, req *Request) error {
		<-ctx.Done() // never reads: no credit comes back
		return nil
	})
	s, p := newRawPeer(t, false, Options{Router: r})
	p.hello(t, wire.Settings{})
	const window = 3
	chans := wire.MakeChannelList(wire.AppendChannel(nil, wire.ChannelBinding{ID: 1, Dir: wire.CallerSends, Window: window}))
	p.send(t, wire.Message{Kind: wire.KindRequest, ID: 1, Method: mSum.ID, Channels: chans})
	for i := range window {
		p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")})
		// The item is queued before the next is sent, so each is a run.
		testwait.For(t, "the item queued", func() bool {
			st := s.root.chans.lookup(1)
			if st == nil {
				return false
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			return st.received == uint64(i+1)
		})
	}
	p.send(t, wire.Message{Kind: wire.KindChannelItem, ID: 1, Payload: []byte("1")})
	if m := p.next(t); m.Kind != wire.KindProtocolError || m.Code != wire.CodeCreditExceeded {
		t.Fatalf("an item over the window: got %v %v", m.Kind, m.Code)
	}
	waitDone(t, s)
}
