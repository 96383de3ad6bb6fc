package core

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestOutCallLayout keeps outCall's cache-line groups (see its doc): what
// the claimer reads and the small outcomes in the first line, a raw
// call's result in the second, the caller's own fields in the third, and
// objects that start on a line boundary.
func TestOutCallLayout(t *testing.T) {
	const line = 64
	typ := reflect.TypeFor[outCall]()
	if got := typ.Size(); got != 3*line {
		t.Fatalf("outCall is %d bytes, want %d: fix outCallPad", got, 3*line)
	}
	for name, want := range map[string]uintptr{
		"state": 0, "done": 0, "early": 0, "earlyErr": 0, "err": 0, "status": 0, "decoded": 0,
		"frame": 1, "md": 1,
		"key": 2, "buf": 2, "watch": 2,
	} {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Fatalf("outCall has no field %s", name)
		}
		if first, last := f.Offset/line, (f.Offset+f.Type.Size()-1)/line; first != want || last != want {
			t.Errorf("outCall.%s spans lines %d-%d, want line %d", name, first, last, want)
		}
	}
	// The allocator's 192-byte size class starts each object on a line
	// boundary; the grouping above assumes it.
	for range 8 {
		if p := uintptr(unsafe.Pointer(outCallPool.Get().(*outCall))); p%line != 0 {
			t.Fatalf("a pooled outCall at %#x is not line-aligned", p)
		}
	}
}

// TestRequestSize keeps a Request in the allocator's 128-byte size class:
// it is what a pool handler's call allocates (TestCallAllocs), so its
// rarely used context fields live behind Request.more.
func TestRequestSize(t *testing.T) {
	if got := unsafe.Sizeof(Request{}); got > 128 {
		t.Fatalf("Request is %d bytes, want at most 128: move a field behind Request.more", got)
	}
}
