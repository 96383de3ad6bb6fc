package netpoll

import (
	"io"
	"os"
	"syscall"
)

// rawReader returns the read loop's read for a socket (any reader that is
// a syscall.Conn: TCP and unix connections), nil for anything else. It
// reads the descriptor directly, non-blocking, into the chunk in room();
// when the socket has nothing more it gives the chunk back (unless a
// partial frame is in it) before it waits for the socket to be readable,
// and takes a chunk again only when bytes arrive. So an idle connection
// holds no read buffer, and a busy one pays nothing for that: the wait
// happens exactly where a blocking Read would have waited.
//
// The returned func is called by the reading goroutine only.
func (c *Conn) rawReader(r io.Reader) readFunc {
	rc := rawConnOf(r)
	if rc == nil {
		return nil
	}
	var (
		n    int
		rerr error
	)
	// fd is called by rc.Read until it returns true, with a wait for the
	// descriptor to be readable after each false.
	fd := func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), c.in.room())
			switch rerr {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				c.in.release()
				return false
			}
			return true
		}
	}
	return func() (bool, error, error) {
		if err := rc.Read(fd); err != nil {
			return false, nil, err // closed, or a deadline
		}
		switch {
		case rerr != nil:
			return false, nil, os.NewSyscallError("read", rerr)
		case n == 0:
			return false, nil, io.EOF
		}
		c.in.shrink(n)
		return true, c.in.commit(n), nil
	}
}
