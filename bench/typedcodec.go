package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// binCodec is a hand-written binary core.Codec for typedItem: what a
// typed call costs with a codec that does almost nothing, so that the
// harness can tell the typed API's own cost (its pooled call state, the
// allocations of the decoded strings, the call's hand-offs) from sonic's.
// The encoding: ID as 8 bytes little-endian, then Name, then the count of
// Tags and each tag, every string as a uvarint length and its bytes.
type binCodec struct{}

var errBinShort = errors.New("binCodec: truncated")

// AppendMarshal implements core.Codec for *typedItem.
func (binCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	it, ok := v.(*typedItem)
	if !ok {
		return dst, fmt.Errorf("binCodec: cannot encode %T", v)
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(it.ID))
	dst = appendBinString(dst, it.Name)
	dst = binary.AppendUvarint(dst, uint64(len(it.Tags)))
	for _, t := range it.Tags {
		dst = appendBinString(dst, t)
	}
	return dst, nil
}

func appendBinString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// Unmarshal implements core.Codec for *typedItem. Strings are copies, as
// with core.SonicCodec, so the item never points into data.
func (binCodec) Unmarshal(data []byte, v any) error {
	it, ok := v.(*typedItem)
	if !ok {
		return fmt.Errorf("binCodec: cannot decode into %T", v)
	}
	if len(data) < 8 {
		return errBinShort
	}
	it.ID = int64(binary.LittleEndian.Uint64(data))
	rest := data[8:]
	var err error
	if rest, it.Name, err = parseBinString(rest); err != nil {
		return err
	}
	n, k := binary.Uvarint(rest)
	// Each tag takes at least its length byte: a count beyond the bytes
	// left is malformed, and must not size an allocation.
	if k <= 0 || n > uint64(len(rest)-k) {
		return errBinShort
	}
	rest = rest[k:]
	it.Tags = make([]string, n)
	for i := range it.Tags {
		if rest, it.Tags[i], err = parseBinString(rest); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return errors.New("binCodec: trailing bytes")
	}
	return nil
}

func parseBinString(b []byte) ([]byte, string, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return b, "", errBinShort
	}
	return b[k+int(n):], string(b[k : k+int(n)]), nil
}
