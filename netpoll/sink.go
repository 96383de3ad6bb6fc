package netpoll

import (
	"io"
)

// sink is where a connection's outbound bytes go. Only the goroutine that
// owns the outbound flush calls it, so an implementation needs no lock of
// its own for that.
type sink interface {
	// try writes what the socket takes now, without blocking, and returns
	// how many bytes went out; an error only if the socket failed. A sink
	// that cannot write without blocking returns 0, nil.
	try(p []byte) (int, error)
	// write writes all of p, waiting for the socket as long as it must.
	// Only a writer goroutine calls it.
	write(p []byte) error
	// idle tells the sink the writer goroutine is done for now: whatever it
	// set up to wait for the socket can go.
	idle()
}

// streamSink writes to an io.Writer: a socket (with non-blocking attempts
// through its raw descriptor), a pipe end (with its own), or any other
// stream (a writer goroutine does every write).
type streamSink struct {
	w   io.Writer
	raw *rawWriter // nil when w has no raw descriptor
	nb  interface{ tryWrite([]byte) (int, error) }
}

func newStreamSink(w io.Writer) *streamSink {
	s := &streamSink{w: w, raw: newRawWriter(w)}
	s.nb, _ = w.(interface{ tryWrite([]byte) (int, error) })
	return s
}

func (s *streamSink) try(p []byte) (int, error) {
	switch {
	case s.raw != nil:
		return s.raw.try(p)
	case s.nb != nil:
		return s.nb.tryWrite(p)
	}
	return 0, nil
}

func (s *streamSink) write(p []byte) error {
	_, err := s.w.Write(p) // io.Writer: a short write comes with an error
	return err
}

func (s *streamSink) idle() {}
