package main

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/rove-rpc/rove/internal/delaynet"
)

// delayProxy forwards TCP connections to a target and delays every byte
// by oneWay in each direction (delaynet): a round trip of 2 x oneWay
// added to loopback's, for measuring what a network's latency costs a
// stack (flow control windows, pipelining) on a machine without netem.
// It does not limit bandwidth. `bench load -delay D` runs one in the
// loader's process.
type delayProxy struct {
	ln     net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

// startDelayProxy listens on a free loopback port; Addr is where to dial.
func startDelayProxy(target string, oneWay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, oneWay: oneWay}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

func (p *delayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		t, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		toClient, toServer := delaynet.NewConn(c, p.oneWay), delaynet.NewConn(t, p.oneWay)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			toClient.Close()
			toServer.Close()
			continue
		}
		p.conns = append(p.conns, toClient, toServer)
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(toServer, c)
		go p.pipe(toClient, t)
	}
}

// pipe copies src to dst; at src's end it closes dst's writing side.
func (p *delayProxy) pipe(dst *delaynet.Conn, src net.Conn) {
	defer p.wg.Done()
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return
	}
	dst.CloseWrite()
}

// Close stops accepting and ends every forwarded connection.
func (p *delayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
