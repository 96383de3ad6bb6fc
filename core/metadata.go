package core

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/rove-rpc/rove/core/internal/wire"
)

// MetaFlags are per-entry metadata flags (spec rule 23). Bits Rove does not
// define are preserved when metadata is forwarded.
type MetaFlags uint64

// Metadata flags.
const (
	// Sensitive values are never logged, printed or put in error text:
	// String shows them as "<redacted>".
	Sensitive MetaFlags = 1 << 0
	// NoPropagate entries are dropped by Forward.
	NoPropagate MetaFlags = 1 << 1
)

// ValueType is the type of a metadata value.
type ValueType uint8

// Metadata value types, numbered as on the wire.
const (
	StringType ValueType = 0 // UTF-8 text
	BytesType  ValueType = 1 // opaque bytes
	U64Type    ValueType = 2 // an unsigned 64-bit integer
)

// MetaValue is a metadata value: a string, bytes or an unsigned integer.
type MetaValue struct {
	typ wire.ValueType
	s   string
	b   []byte
	u   uint64
}

// StringValue, BytesValue and U64Value make values of each type.
func StringValue(s string) MetaValue { return MetaValue{typ: wire.ValueString, s: s} }

// BytesValue makes a bytes value; b is not copied.
func BytesValue(b []byte) MetaValue { return MetaValue{typ: wire.ValueBytes, b: b} }

// U64Value makes an unsigned integer value.
func U64Value(u uint64) MetaValue { return MetaValue{typ: wire.ValueU64, u: u} }

// Type returns the value's type.
func (v MetaValue) Type() ValueType { return ValueType(v.typ) }

// Str returns a string value ("" for other types).
func (v MetaValue) Str() string { return v.s }

// String returns the value as text: a string value as it is, a bytes
// value as the bytes, an integer in decimal. (It does not know whether its
// entry is Sensitive: print Metadata, which redacts, not its values.)
func (v MetaValue) String() string {
	switch v.typ {
	case wire.ValueString:
		return v.s
	case wire.ValueBytes:
		return string(v.b)
	default:
		return strconv.FormatUint(v.u, 10)
	}
}

// Bytes returns a bytes value (nil for other types).
func (v MetaValue) Bytes() []byte { return v.b }

// U64 returns an integer value (0 for other types).
func (v MetaValue) U64() uint64 { return v.u }

func (v MetaValue) format() string {
	switch v.typ {
	case wire.ValueString:
		return strconv.Quote(v.s)
	case wire.ValueBytes:
		return "bytes(" + strconv.Itoa(len(v.b)) + ")"
	default:
		return strconv.FormatUint(v.u, 10)
	}
}

// MetaEntry is one (key, value, flags) entry.
type MetaEntry struct {
	Key   string
	Value MetaValue
	Flags MetaFlags
}

// Metadata is an ordered list of entries carried by requests and responses
// (spec rule 22): duplicates are kept in order, and keys nobody reads are
// simply ignored. The zero value is empty.
type Metadata []MetaEntry

// Add appends an entry and returns the list.
func (m Metadata) Add(key string, v MetaValue, flags MetaFlags) Metadata {
	return append(m, MetaEntry{Key: key, Value: v, Flags: flags})
}

// Get returns the first value for key.
func (m Metadata) Get(key string) (MetaValue, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return MetaValue{}, false
}

// Forward returns the entries that may travel to a downstream call: all
// but NoPropagate ones, in order, with every other flag bit (known or not)
// kept (spec rule 23).
func (m Metadata) Forward() Metadata {
	var out Metadata
	for _, e := range m {
		if e.Flags&NoPropagate == 0 {
			out = append(out, e)
		}
	}
	return out
}

// String prints the entries with Sensitive values redacted, so metadata
// can be logged safely.
func (m Metadata) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range m {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(e.Key))
		b.WriteByte('=')
		if e.Flags&Sensitive != 0 {
			b.WriteString("<redacted>")
		} else {
			b.WriteString(e.Value.format())
		}
	}
	b.WriteByte(']')
	return b.String()
}

// GoString redacts too, so %#v cannot leak a Sensitive value.
func (m Metadata) GoString() string { return "core.Metadata" + m.String() }

// appendWire appends the entries in wire form.
func (m Metadata) appendWire(raw []byte) []byte {
	for _, e := range m {
		we := wire.Entry{Key: []byte(e.Key), Type: e.Value.typ, Flags: wire.MetaFlags(e.Flags), U64: e.Value.u}
		switch e.Value.typ {
		case wire.ValueString:
			we.Value = []byte(e.Value.s)
		case wire.ValueBytes:
			we.Value = e.Value.b
		}
		raw = wire.AppendEntry(raw, we)
	}
	return raw
}

// toWire encodes the entries into a fresh buffer (for messages sent
// rarely: handshakes, virtual connections). Empty stays empty.
func (m Metadata) toWire() wire.Metadata {
	if len(m) == 0 {
		return wire.Metadata{}
	}
	return wire.MakeMetadata(m.appendWire(nil))
}

// metadataFromWire copies wire metadata into a Metadata (it allocates; it
// is only called when someone asks for the metadata).
func metadataFromWire(w wire.Metadata) Metadata {
	if w.Empty() {
		return nil
	}
	out := make(Metadata, 0, w.Len())
	it := w.Iter()
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		v := MetaValue{typ: e.Type, u: e.U64}
		switch e.Type {
		case wire.ValueString:
			v.s = string(e.Value)
		case wire.ValueBytes:
			v.b = append([]byte(nil), e.Value...)
		}
		out = append(out, MetaEntry{Key: string(e.Key), Value: v, Flags: MetaFlags(e.Flags)})
	}
	return out
}

// metadataOverLimit checks metadata the peer sent against our advertised
// limits, before anything is built from it: the byte count first (free),
// then the entries (a pass bounded by that byte count). It returns why it
// is over, or "".
func (s *session) metadataOverLimit(md wire.Metadata) string {
	if n := len(md.Raw()); n > s.opts.MaxMetadataBytes {
		return fmt.Sprintf("metadata of %d bytes is over the limit of %d", n, s.opts.MaxMetadataBytes)
	}
	if n := md.Len(); n > s.opts.MaxMetadataEntries {
		return fmt.Sprintf("metadata of %d entries is over the limit of %d", n, s.opts.MaxMetadataEntries)
	}
	return ""
}

// metadataFitsPeer checks metadata we are about to send against the
// limits the peer advertised (no limit when it advertised none).
func (s *session) metadataFitsPeer(md Metadata) error { return metadataFits(&s.peer, md) }

func metadataFits(p *wire.Settings, md Metadata) error {
	if len(md) == 0 {
		return nil
	}
	if max := p.MaxMetadataEntries; max != 0 && uint64(len(md)) > max {
		return fmt.Errorf("%w: %d entries, the peer takes %d", ErrMetadataTooLarge, len(md), max)
	}
	if max := p.MaxMetadataBytes; max != 0 {
		if size := md.wireSize(); uint64(size) > max {
			return fmt.Errorf("%w: %d bytes, the peer takes %d", ErrMetadataTooLarge, size, max)
		}
	}
	return nil
}

// wireSize is the length of the entries as appendWire encodes them.
func (m Metadata) wireSize() int {
	n := 0
	for _, e := range m {
		n += uvarintLen(uint64(len(e.Key))) + len(e.Key) + 1 + uvarintLen(uint64(e.Flags))
		switch e.Value.typ {
		case wire.ValueU64:
			n += uvarintLen(e.Value.u)
		case wire.ValueString:
			n += uvarintLen(uint64(len(e.Value.s))) + len(e.Value.s)
		default:
			n += uvarintLen(uint64(len(e.Value.b))) + len(e.Value.b)
		}
	}
	return n
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }
