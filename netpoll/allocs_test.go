package netpoll

import (
	"context"
	"testing"

	"github.com/rove-rpc/rove/internal/race"
)

// pingClient signals each echoed frame.
type pingClient struct{ got chan struct{} }

func (p pingClient) HandleFrames(_ *Conn, frames []Frame) {
	for _, f := range frames {
		f.Release()
		p.got <- struct{}{}
	}
}

func (pingClient) HandleClose(*Conn, error) {}

// A steady-state framed round trip allocates nothing on either side, on
// every transport: pooled chunks in, a reused buffer out.
func TestEchoRoundTripAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race runtime allocates; .ci/run runs this test without -race")
	}
	forEachTransport(t, func(t *testing.T, tc transportCase) {
		if tc.name == "tls-tcp" {
			// 2 allocations per round trip measured, inside crypto/tls's
			// record layer and the writer goroutine a sink without a
			// non-blocking write starts per flush; not yet chased.
			t.Skip("the zero-allocation claim covers the plain transports")
		}
		p := pingClient{got: make(chan struct{}, 1)}
		client, _ := tc.connect(t, Options{}, p, benchEchoServer{})
		payload := make([]byte, 64)
		ctx := context.Background()
		roundTrip := func() {
			if err := client.WriteFrame(ctx, payload); err != nil {
				t.Fatal(err)
			}
			<-p.got
		}
		for range 100 { // warm pools and buffers
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(1000, roundTrip); allocs != 0 {
			t.Fatalf("%.2f allocations per round trip, want 0", allocs)
		}
	})
}
