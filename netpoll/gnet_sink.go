package netpoll

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// gnetSink writes straight to a gnet connection's socket, so that a
// connection costs one descriptor and no goroutine while idle.
//
// gnet owns the descriptor and closes it on its event loop, after
// OnClose returns (gnet v2.9.7, eventloop.close; TestGnetClosesAfterOnClose
// pins it). Every use of fd holds mu for reading; OnClose calls closeFd,
// which takes mu for writing, so no write can land on a descriptor number
// gnet has closed and the kernel has given to another socket.
//
// Writes never block on fd (gnet made it non-blocking). A writer goroutine
// that must wait for room uses a dup of the socket registered with Go's
// poller, made when it first has to wait and closed when it is idle: a
// second descriptor only while the socket is full.
type gnetSink struct {
	fd int

	mu     sync.RWMutex
	closed bool // gnet is closing fd, or we closed it: never touch it again
	own    bool // fd is our dup (reading paused, gnet let go), closed by us

	wait    *os.File        // the pollable dup, while a writer waits; owned by the flusher
	waitRC  syscall.RawConn // wait's raw access
	p       []byte          // what waitWrite is writing
	waitErr error
	waitFn  func(fd uintptr) bool // writeDup, bound once so that waiting allocates nothing

	abortMu sync.Mutex // orders abort's close of the dup with its creation
	aborted bool
}

func newGnetSink(fd int) *gnetSink {
	s := &gnetSink{fd: fd}
	s.waitFn = s.writeDup
	return s
}

func (s *gnetSink) try(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	n, _, err := writeFD(s.fd, p)
	return n, err
}

func (s *gnetSink) write(p []byte) error {
	n, err := s.try(p)
	if err != nil || n == len(p) {
		return err
	}
	return s.waitWrite(p[n:])
}

// waitWrite writes p through the pollable dup, parking in Go's poller
// while the socket is full.
func (s *gnetSink) waitWrite(p []byte) error {
	if s.wait == nil {
		if err := s.openWait(); err != nil {
			return err
		}
	}
	s.p, s.waitErr = p, nil
	err := s.waitRC.Write(s.waitFn)
	s.p = nil
	if err != nil {
		return err
	}
	return s.waitErr
}

// writeDup is waitRC.Write's callback: false asks the poller to wait.
func (s *gnetSink) writeDup(fd uintptr) bool {
	for len(s.p) > 0 {
		n, again, err := writeFD(int(fd), s.p)
		if err != nil {
			s.waitErr = err
			return true
		}
		if again {
			return false
		}
		s.p = s.p[n:]
	}
	return true
}

func (s *gnetSink) openWait() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	dfd, err := syscall.Dup(s.fd)
	s.mu.RUnlock()
	if err != nil {
		return os.NewSyscallError("dup", err)
	}
	syscall.CloseOnExec(dfd)
	f := os.NewFile(uintptr(dfd), "gnet-writer") // non-blocking, like fd: registered with the poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	s.abortMu.Lock()
	defer s.abortMu.Unlock()
	if s.aborted {
		f.Close()
		return ErrClosed
	}
	s.wait, s.waitRC = f, rc
	return nil
}

func (s *gnetSink) idle() {
	s.abortMu.Lock()
	f := s.wait
	s.wait, s.waitRC = nil, nil
	s.abortMu.Unlock()
	if f != nil {
		f.Close()
	}
}

// abort wakes a writer parked on the dup (its write fails) and keeps any
// new one from being made. Any goroutine.
func (s *gnetSink) abort() {
	s.abortMu.Lock()
	s.aborted = true
	f := s.wait
	s.abortMu.Unlock()
	if f != nil {
		f.Close() // the parked write returns os.ErrClosed; idle then finds it closed
	}
	s.mu.Lock()
	if s.own { // reading paused: the socket is ours alone to close
		syscall.Close(s.fd)
		s.own, s.closed = false, true
	}
	s.mu.Unlock()
}

// closeFd is called on the event loop in OnClose, before gnet closes fd.
func (s *gnetSink) closeFd() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// shutdownWrite half-closes the socket.
func (s *gnetSink) shutdownWrite() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return os.NewSyscallError("shutdown", syscall.Shutdown(s.fd, syscall.SHUT_WR))
}

// detach makes the sink write to a dup of the socket that it owns, so
// that gnet can let go of the connection (a pause of reading: see
// gnetPark) without closing the socket. On the event loop.
func (s *gnetSink) detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	dfd, err := syscall.Dup(s.fd)
	if err != nil {
		return os.NewSyscallError("dup", err)
	}
	syscall.CloseOnExec(dfd)
	s.fd, s.own = dfd, true
	return nil
}

// reattach makes the sink write to gnet's descriptor for the connection
// again and closes the dup it owned. On the event loop, in OnOpen.
func (s *gnetSink) reattach(fd int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return // aborted while paused: the owned dup is closed already
	}
	if s.own {
		syscall.Close(s.fd)
	}
	s.fd, s.own = fd, false
}

// fileConn returns a net.Conn on a dup of the socket, for gnet's Enroll
// (which takes its own dup and closes this one).
func (s *gnetSink) fileConn() (net.Conn, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	dfd, err := syscall.Dup(s.fd)
	s.mu.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	syscall.CloseOnExec(dfd)
	f := os.NewFile(uintptr(dfd), "gnet-resume")
	defer f.Close()
	return net.FileConn(f)
}
