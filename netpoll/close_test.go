package netpoll

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/rove-rpc/rove/internal/testwait"
)

// Close's last window: every frame was written and the write side shut,
// but the peer never closes its side. Close waits CloseTimeout for it,
// then aborts: it returns, the connection ends (HandleClose once, Done
// closed), and its goroutines and descriptors go. The peer got every
// frame and the end-of-stream first.
func TestCloseGivesUpOnAPeerThatNeverCloses(t *testing.T) {
	eachStdAndGnet(t, Options{CloseTimeout: 50 * time.Millisecond}, func(t *testing.T, tr Transport) {
		ln, accepted := rawListener(t)
		goroutines := ourGoroutines()
		h := newRecorder()
		c, err := tr.Dial(context.Background(), "tcp", ln.Addr().String(), h)
		if err != nil {
			t.Fatal(err)
		}
		peer := <-accepted
		if peer == nil {
			t.Fatal("accept failed")
		}
		defer peer.Close() // only once the test is over
		if err := c.WriteFrame(context.Background(), []byte("last")); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		// The peer reads the frame, then the end-of-stream, and keeps its
		// side open.
		got, err := io.ReadAll(peer)
		if err != nil || string(got) != string(AppendFrame(nil, []byte("last"))) {
			t.Fatalf("the peer read %q, %v", got, err)
		}
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close still waits for a peer that never closes")
		}
		<-c.Done()
		if err := h.waitClose(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("HandleClose saw %v, want ErrClosed", err)
		}
		if h.closes != 1 {
			t.Fatalf("HandleClose called %d times", h.closes)
		}
		testwait.For(t, "the connection's goroutines to end", func() bool { return ourGoroutines() <= goroutines })
	})
}
