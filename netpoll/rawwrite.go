package netpoll

import (
	"errors"
	"net"
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

// newRawWriter returns nil if c offers no raw access (a pipe).
func newRawWriter(c any) *rawWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *rawWriter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.p)
		if err == syscall.EINTR {
			continue
		}
		w.n, w.err = max(n, 0), err
		return true // never park: EAGAIN is handed back to the caller
	}
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
	case werr == nil, errors.Is(werr, syscall.EAGAIN):
		return n, nil
	}
	return n, &net.OpError{Op: "write", Net: "raw", Err: werr}
}
