package main

import (
	"net"
	"net/rpc"
)

// Echo is the net/rpc service.
type Echo struct{}

// Echo returns its argument.
func (Echo) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

func serveNetRPC(addr string) (func(), error) {
	srv := rpc.NewServer()
	if err := srv.Register(Echo{}); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go srv.Accept(ln)
	return func() { ln.Close() }, nil
}

func dialNetRPC(target string) (caller, func(), error) {
	c, err := rpc.Dial("tcp", target)
	if err != nil {
		return nil, nil, err
	}
	return func(payload []byte) error {
		var reply []byte
		return c.Call("Echo.Echo", payload, &reply)
	}, func() { c.Close() }, nil
}
