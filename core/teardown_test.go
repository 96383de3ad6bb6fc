package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
	"github.com/rove-rpc/rove/netpoll"
)

// spec:33 closing a session fails every pending call with
// ConnectionClosed, cancels every running handler, and leaves no
// goroutine behind (TestMain checks with goleak).
func TestCloseFailsPendingAndCancelsHandlers(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		var started sync.WaitGroup
		cancelled := make(chan error, 8)
		r := NewRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			started.Done()
			<-ctx.Done()
			cancelled <- req.Cause()
			return nil
		})
		client, server := tr.pair(t, Options{Router: r}, Options{Router: r})
		// Calls each way, all blocked in handlers.
		cc, sc := client.Caller(), server.Caller()
		defer cc.Close()
		defer sc.Close()
		const each = 4
		started.Add(2 * each)
		errc := make(chan error, 2*each)
		for range each {
			go func() { _, err := call(context.Background(), cc, mBlock, nil); errc <- err }()
			go func() { _, err := call(context.Background(), sc, mBlock, nil); errc <- err }()
		}
		started.Wait()
		client.Close()
		for range 2 * each {
			err := <-errc
			if !errors.Is(err, ErrConnectionClosed) || !IsRetryable(err) {
				t.Fatalf("pending call got %v", err)
			}
		}
		for range 2 * each {
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("a handler was not cancelled")
			}
		}
		waitDone(t, server)
		if !errors.Is(client.Err(), ErrSessionClosed) {
			t.Fatalf("client terminal error %v", client.Err())
		}
		if _, err := call(context.Background(), cc, mBlock, nil); !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("call after close: %v", err)
		}
	})
}

// spec:6 Drain: the peer is told (GoAway) and starts nothing new, calls in
// flight finish, then the session closes.
func TestDrain(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		release := make(chan struct{})
		started := make(chan struct{})
		r := echoRouter()
		r.Handle(mBlock, func(ctx context.Context, req *Request) error {
			close(started)
			<-release
			return req.Reply([]byte("finished"), nil)
		})
		client, server := tr.pair(t, Options{}, Options{Router: r})
		cl := client.Caller()
		defer cl.Close()
		inflight := make(chan error, 1)
		go func() {
			got, err := call(context.Background(), cl, mBlock, nil)
			if err == nil && string(got) != "finished" {
				err = errors.New("wrong reply " + string(got))
			}
			inflight <- err
		}()
		<-started
		drained := make(chan error, 1)
		go func() { drained <- server.Drain(context.Background()) }()
		// The client learns of the GoAway: new calls fail, retryably.
		testwait.For(t, "the GoAway to reach the client", client.peerGoAway.Load)
		_, err := call(context.Background(), cl, mEcho, []byte("new"))
		if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
			t.Fatalf("new call during drain: %v, want retryable Unavailable", err)
		}
		close(release)
		if err := <-inflight; err != nil {
			t.Fatalf("in-flight call: %v", err)
		}
		if err := <-drained; err != nil {
			t.Fatalf("drain: %v", err)
		}
		waitDone(t, server)
		waitDone(t, client)
	})
}

// Server.LinkStats keeps counting sessions after they end.
func TestServerLinkStatsKeepEndedSessions(t *testing.T) {
	tr := netpoll.NewGnet(netpoll.GnetOptions{EventLoops: 1})
	defer tr.Close()
	srv, err := Serve(tr, "tcp", "127.0.0.1:0", Options{Router: echoRouter()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client, err := Dial(context.Background(), tr, "tcp", srv.Addr().String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := client.Caller()
	for range 10 {
		if _, err := call(context.Background(), cl, mEcho, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	client.Close()
	waitDone(t, client)
	testwait.For(t, "the session to end", func() bool { return len(srv.snapshot()) == 0 })
	if got := srv.LinkStats().FramesIn; got < 11 { // Hello and 10 requests
		t.Fatalf("stats after the session ended: %+v", srv.LinkStats())
	}
}
