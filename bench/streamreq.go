package main

import (
	"encoding/binary"
	"fmt"
)

// A server-streaming request, for every system alike (as loadgen's): the
// item count and the item size, 4 bytes each, little-endian.

func streamRequest(items, size int) []byte {
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(items)), uint32(size))
}

func parseStreamRequest(p []byte) (items, size int, err error) {
	if len(p) != 8 {
		return 0, 0, fmt.Errorf("want 8 bytes, got %d", len(p))
	}
	return int(binary.LittleEndian.Uint32(p)), int(binary.LittleEndian.Uint32(p[4:])), nil
}

// countItems checks that a stream delivered what it was asked for.
func countItems(got, want int) error {
	if got != want {
		return fmt.Errorf("got %d of %d items", got, want)
	}
	return nil
}
