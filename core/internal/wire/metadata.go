package wire

// ValueType is the type of a metadata value.
type ValueType uint8

// Metadata value types. The values are part of the wire format.
const (
	ValueString ValueType = 0 // UTF-8 text (not validated by the codec)
	ValueBytes  ValueType = 1 // opaque bytes
	ValueU64    ValueType = 2 // unsigned 64-bit integer
	valueTypes            = 3
)

// MetaFlags are per-entry flag bits. Bits this version does not define are
// carried through untouched (spec rule 23).
type MetaFlags uint64

// Metadata flags.
const (
	// FlagSensitive: the value is never logged, printed or put in error text.
	FlagSensitive MetaFlags = 1 << 0
	// FlagNoPropagate: the entry is dropped when metadata is forwarded to a
	// downstream call.
	FlagNoPropagate MetaFlags = 1 << 1
)

// Entry is one metadata entry. Key and Value are views into the body the
// entry was parsed from (or whatever the caller passed to AppendEntry).
type Entry struct {
	Key   []byte
	Type  ValueType
	Flags MetaFlags
	Value []byte // ValueString and ValueBytes
	U64   uint64 // ValueU64
}

// Metadata is an ordered list of entries in wire form: a view of the encoded
// entries, without the length prefix. The zero value is the empty list.
// Duplicate keys are kept, in order (spec rule 22).
//
// Metadata from ParseMessage has been validated entry by entry, so Next never
// fails on it. Build one with AppendEntry and Make.
type Metadata struct{ raw []byte }

// MakeMetadata wraps entries that were appended with AppendEntry. It does not
// validate them; use ParseMetadata for bytes from an untrusted source.
func MakeMetadata(raw []byte) Metadata { return Metadata{raw: raw} }

// ParseMetadata validates raw as a sequence of entries.
func ParseMetadata(raw []byte) (Metadata, error) {
	c := cursor{buf: raw}
	for c.ok() && len(c.buf) > 0 {
		c.entry()
	}
	if !c.ok() {
		return Metadata{}, malformed(0, "metadata "+c.field)
	}
	return Metadata{raw: raw}, nil
}

// Raw returns the encoded entries (a view).
func (m Metadata) Raw() []byte { return m.raw }

// Empty reports whether m has no entries.
func (m Metadata) Empty() bool { return len(m.raw) == 0 }

// Len counts the entries.
func (m Metadata) Len() int {
	n := 0
	for it := m.Iter(); ; n++ {
		if _, ok := it.Next(); !ok {
			return n
		}
	}
}

// Iter returns an iterator over the entries, in order.
func (m Metadata) Iter() MetaIter { return MetaIter{c: cursor{buf: m.raw}} }

// MetaIter walks Metadata. The zero value is an empty iterator.
type MetaIter struct{ c cursor }

// Next returns the next entry, or false at the end (or at the first
// malformed entry of unvalidated metadata).
func (it *MetaIter) Next() (Entry, bool) {
	if !it.c.ok() || len(it.c.buf) == 0 {
		return Entry{}, false
	}
	e := it.c.entry()
	return e, it.c.ok()
}

func (c *cursor) entry() Entry {
	var e Entry
	e.Key = c.bytes("key")
	e.Type = ValueType(c.byte1("value type"))
	e.Flags = MetaFlags(c.uvarint("flags"))
	switch {
	case !c.ok():
	case e.Type == ValueU64:
		e.U64 = c.uvarint("value")
	case e.Type < valueTypes:
		e.Value = c.bytes("value")
	default:
		c.fail("value type")
	}
	return e
}

// AppendEntry appends one entry in wire form to raw (the entries of a
// Metadata under construction).
func AppendEntry(raw []byte, e Entry) []byte {
	raw = appendBytes(raw, e.Key)
	raw = append(raw, byte(e.Type))
	raw = AppendUvarint(raw, uint64(e.Flags))
	if e.Type == ValueU64 {
		return AppendUvarint(raw, e.U64)
	}
	return appendBytes(raw, e.Value)
}
