package netpoll

import (
	"net"
	"os"
	"syscall"
)

// rawWriter makes one non-blocking write attempt on a socket, for
// QueueFrame: a goroutine that must not block (an event loop) can still send
// a small batch itself when the socket has room, instead of waking the
// writer goroutine. Only the goroutine that owns the outbound flush uses it,
// so its fields need no lock.
type rawWriter struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.write, bound once so that a call allocates nothing
}

// rawConnOf returns c's raw descriptor access, nil if it offers none (a
// pipe, a *tls.Conn).
func rawConnOf(c any) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// newRawWriter returns nil if c offers no raw access (a pipe).
func newRawWriter(c any) *rawWriter {
	rc := rawConnOf(c)
	if rc == nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	w.n, _, w.err = writeFD(int(fd), w.p)
	return true // never park: a full socket is handed back to the caller
}

// try writes what the socket takes now without blocking. It returns how
// many bytes went out, and an error only if the socket failed.
func (w *rawWriter) try(p []byte) (int, error) {
	w.p = p
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	switch {
	case err != nil:
		return 0, err
	case werr == nil:
		return n, nil
	}
	return n, &net.OpError{Op: "write", Net: "raw", Err: werr}
}

// writeFD makes one non-blocking write of p to fd, retrying on EINTR. A
// full socket is not an error: again reports it (with n 0).
func writeFD(fd int, p []byte) (n int, again bool, err error) {
	for {
		n, err := syscall.Write(fd, p)
		switch err {
		case nil:
			return n, false, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, true, nil
		}
		return 0, false, os.NewSyscallError("write", err)
	}
}
