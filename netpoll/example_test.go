package netpoll_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rove-rpc/rove/netpoll"
)

// echo answers every frame with the same bytes, from the event loop.
type echo struct{}

func (echo) HandleFrames(c *netpoll.Conn, frames []netpoll.Frame) {
	for _, f := range frames {
		_ = c.QueueFrame(f.Body) // never blocks: safe on an event loop
		f.Release()
	}
}

func (echo) HandleClose(*netpoll.Conn, error) {}

// printer prints what comes back.
type printer struct{ got chan string }

func (p printer) HandleFrames(_ *netpoll.Conn, frames []netpoll.Frame) {
	for _, f := range frames {
		p.got <- string(f.Body) // copy out before Release
		f.Release()
	}
}

func (printer) HandleClose(*netpoll.Conn, error) {}

// A framed echo over gnet event loops on loopback.
func Example() {
	tr := netpoll.NewGnet(netpoll.GnetOptions{})
	defer tr.Close()

	ln, err := tr.Listen("tcp", "127.0.0.1:0", func(*netpoll.Conn) netpoll.Handler { return echo{} })
	if err != nil {
		panic(err)
	}
	defer ln.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := printer{got: make(chan string, 3)}
	c, err := tr.Dial(ctx, "tcp", ln.Addr().String(), p)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	for _, s := range []string{"one", "", "three"} {
		if err := c.WriteFrame(ctx, []byte(s)); err != nil {
			panic(err)
		}
	}
	for range 3 {
		fmt.Printf("%q\n", <-p.got)
	}
	// Output:
	// "one"
	// ""
	// "three"
}
