package main

import (
	"errors"
	"reflect"
	"testing"
)

func TestBinCodecRoundTrip(t *testing.T) {
	for _, size := range []int{0, 64, 4096} {
		in := newTypedItem(size)
		b, err := binCodec{}.AppendMarshal([]byte("prefix"), &in)
		if err != nil {
			t.Fatal(err)
		}
		var out typedItem
		if err := (binCodec{}).Unmarshal(b[len("prefix"):], &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("size %d: got %+v, want %+v", size, out, in)
		}
	}
}

// Every truncation of a valid encoding, and a tag count beyond the bytes
// left, is an error, never a panic or a huge allocation.
func TestBinCodecRejectsTruncated(t *testing.T) {
	in := newTypedItem(64)
	b, _ := binCodec{}.AppendMarshal(nil, &in)
	for n := range len(b) {
		var out typedItem
		if err := (binCodec{}).Unmarshal(b[:n], &out); err == nil {
			t.Fatalf("%d of %d bytes decoded without error", n, len(b))
		}
	}
	huge := append(append([]byte{}, b[:8]...), 0, 0xff, 0xff, 0xff, 0xff, 0x0f)
	var out typedItem
	if err := (binCodec{}).Unmarshal(huge, &out); !errors.Is(err, errBinShort) {
		t.Fatalf("tag count beyond the data: %v", err)
	}
	if err := (binCodec{}).Unmarshal(append(b, 0), &out); err == nil {
		t.Fatal("trailing byte accepted")
	}
}
