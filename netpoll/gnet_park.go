package netpoll

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// Pausing a gnet connection's reads (the read budget, Options.MaxHeld).
//
// gnet has no way to stop reading one connection: its event loop reads
// whatever the socket has and keeps what the handler leaves in a buffer
// that grows without bound. So a paused connection leaves gnet: the sink
// takes a dup of the socket (detach), OnTraffic returns Close, and gnet
// closes its descriptor while the socket lives on in the dup. Nobody reads
// it, the kernel's buffer fills, and TCP makes the peer wait. Writes go on
// through the dup. To resume, the dup is enrolled on the same event loop
// again (gnet takes its own dup); OnOpen recognises the Conn in the new
// connection's context and reattaches it (reattach), and the sink's dup is
// closed. Pauses happen only when a peer sends faster than the handlers
// release its frames, so the few system calls they cost do not matter.

// gnetPark is what a paused gnet connection needs to come back.
type gnetPark struct {
	loop gnet.EventLoop
	sink *gnetSink
}

// detach starts a pause, on the event loop in OnTraffic; the Close it
// returns makes gnet let go (OnClose then calls paused).
func (c *Conn) detach(gc gnet.Conn) gnet.Action {
	b := c.be.(*gnetBackend)
	if err := b.sink.detach(); err != nil {
		c.readErr = err
		return gnet.Close
	}
	c.pauseMu.Lock()
	c.park = &gnetPark{loop: gc.EventLoop(), sink: b.sink}
	c.rstate.Store(readPausing)
	c.pauseMu.Unlock()
	return gnet.Close
}

// paused completes a pause, in OnClose: gnet has let go. If the connection
// failed meanwhile it ends here; if enough was released meanwhile it
// resumes at once.
func (c *Conn) paused() {
	c.pauseMu.Lock()
	failed := c.Err() != nil
	if failed {
		c.rstate.Store(readResuming) // nothing may resume it now
	} else {
		c.rstate.Store(readPaused)
	}
	c.pauseMu.Unlock()
	if failed {
		c.finish(c.Err())
		return
	}
	if c.held.Load() <= c.resumeAt() {
		c.resume()
	}
}

// resume starts the enrolment, with c.pauseMu held and the state moved to
// readResuming. The wait for gnet's answer runs on a goroutine of the
// Conn's: OnOpen takes c.pauseMu.
func (p *gnetPark) resume(c *Conn) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := p.enroll(c)
		if err != nil {
			c.fail(err)
			c.pauseMu.Lock()
			stuck := c.rstate.Load() == readResuming && c.park == p
			c.pauseMu.Unlock()
			if stuck { // no gnet connection will ever close it
				c.finish(c.Err())
			}
		}
	}()
}

func (p *gnetPark) enroll(c *Conn) error {
	nc, err := p.sink.fileConn()
	if err != nil {
		return err
	}
	ch, err := p.loop.Enroll(gnet.NewContext(context.Background(), c), nc)
	if err != nil {
		nc.Close()
		return err
	}
	return (<-ch).Err
}

// reattach ends a pause, in OnOpen of the connection enrolled by resume.
func (c *Conn) reattach(gc gnet.Conn) gnet.Action {
	b := c.be.(*gnetBackend)
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	gc.SetContext(c)
	b.gc = gc
	b.sink.reattach(gc.Fd())
	c.park = nil
	c.rstate.Store(readOn)
	if c.Err() != nil {
		return gnet.Close // it failed while paused: OnClose ends it
	}
	return gnet.None
}
