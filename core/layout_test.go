package core

import (
	"testing"
	"unsafe"
)

// TestOutCallLayout keeps outCall's cache-line groups (see its doc): what
// the claimer reads and the small outcomes in the first line, a raw
// call's result in the second, the caller's own fields in the third, and
// objects that start on a line boundary.
func TestOutCallLayout(t *testing.T) {
	const line = 64
	var oc outCall
	if got := unsafe.Sizeof(oc); got != 3*line {
		t.Fatalf("outCall is %d bytes, want %d: fix outCallPad", got, 3*line)
	}
	for _, f := range []struct {
		name      string
		off, size uintptr
		line      uintptr
	}{
		{"state", unsafe.Offsetof(oc.state), unsafe.Sizeof(oc.state), 0},
		{"done", unsafe.Offsetof(oc.done), unsafe.Sizeof(oc.done), 0},
		{"early", unsafe.Offsetof(oc.early), unsafe.Sizeof(oc.early), 0},
		{"earlyErr", unsafe.Offsetof(oc.earlyErr), unsafe.Sizeof(oc.earlyErr), 0},
		{"err", unsafe.Offsetof(oc.err), unsafe.Sizeof(oc.err), 0},
		{"status", unsafe.Offsetof(oc.status), unsafe.Sizeof(oc.status), 0},
		{"decoded", unsafe.Offsetof(oc.decoded), unsafe.Sizeof(oc.decoded), 0},
		{"frame", unsafe.Offsetof(oc.frame), unsafe.Sizeof(oc.frame), 1},
		{"md", unsafe.Offsetof(oc.md), unsafe.Sizeof(oc.md), 1},
		{"key", unsafe.Offsetof(oc.key), unsafe.Sizeof(oc.key), 2},
		{"buf", unsafe.Offsetof(oc.buf), unsafe.Sizeof(oc.buf), 2},
		{"watch", unsafe.Offsetof(oc.watch), unsafe.Sizeof(oc.watch), 2},
	} {
		if first, last := f.off/line, (f.off+f.size-1)/line; first != f.line || last != f.line {
			t.Errorf("outCall.%s spans lines %d-%d, want line %d", f.name, first, last, f.line)
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
