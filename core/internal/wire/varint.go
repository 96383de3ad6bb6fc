package wire

import "encoding/binary"

// MaxVarintLen is the most bytes a uvarint takes on the wire.
const MaxVarintLen = binary.MaxVarintLen64

// AppendUvarint appends v as a LEB128 unsigned varint.
func AppendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

// UvarintLen returns the encoded size of v.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// cursor walks a body front to back. Every read checks the bytes left; the
// first failure is sticky, so decoders read all fields and check err once.
type cursor struct {
	buf   []byte
	kind  Kind
	field string // first field that failed, "" while ok
}

func (c *cursor) fail(field string) {
	if c.field == "" {
		c.field = field
	}
	c.buf = nil
}

func (c *cursor) ok() bool { return c.field == "" }

func (c *cursor) uvarint(field string) uint64 {
	if !c.ok() {
		return 0
	}
	v, n := binary.Uvarint(c.buf)
	if n <= 0 {
		c.fail(field)
		return 0
	}
	c.buf = c.buf[n:]
	return v
}

func (c *cursor) byte1(field string) byte {
	if !c.ok() || len(c.buf) < 1 {
		c.fail(field)
		return 0
	}
	b := c.buf[0]
	c.buf = c.buf[1:]
	return b
}

func (c *cursor) u64(field string) uint64 {
	if !c.ok() || len(c.buf) < 8 {
		c.fail(field)
		return 0
	}
	v := binary.LittleEndian.Uint64(c.buf)
	c.buf = c.buf[8:]
	return v
}

// bytes reads a uvarint length and that many bytes, as a view. The length is
// compared with what is left before anything is sliced.
func (c *cursor) bytes(field string) []byte {
	n := c.uvarint(field)
	if !c.ok() || n > uint64(len(c.buf)) {
		c.fail(field)
		return nil
	}
	b := c.buf[:n:n]
	c.buf = c.buf[n:]
	return b
}

// rest returns every remaining byte as a view (the trailing payload).
func (c *cursor) rest() []byte {
	b := c.buf
	c.buf = nil
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

func (c *cursor) end() {
	if c.ok() && len(c.buf) != 0 {
		c.fail("trailing bytes")
	}
}

func appendBytes(dst, b []byte) []byte {
	dst = AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
