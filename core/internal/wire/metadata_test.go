package wire

import (
	"bytes"
	"errors"
	"testing"
)

// spec:22 entries keep their order, duplicates included; all three value
// types survive; unknown flag bits are carried.
func TestMetadataOrderAndTypes(t *testing.T) {
	want := []Entry{
		{Key: []byte("a"), Type: ValueString, Value: []byte("1")},
		{Key: []byte("b"), Type: ValueU64, U64: 42, Flags: FlagSensitive},
		{Key: []byte("a"), Type: ValueBytes, Value: []byte{0xff}, Flags: FlagNoPropagate | 1<<20},
	}
	m := md(want...)
	if m.Len() != 3 {
		t.Fatalf("Len = %d", m.Len())
	}
	body := AppendMessage(nil, &Message{Kind: KindRequest, ID: 1, Metadata: m})
	got, err := ParseMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	it := got.Metadata.Iter()
	for i, w := range want {
		e, ok := it.Next()
		if !ok {
			t.Fatalf("entry %d missing", i)
		}
		if !bytes.Equal(e.Key, w.Key) || e.Type != w.Type || e.Flags != w.Flags || !bytes.Equal(e.Value, w.Value) || e.U64 != w.U64 {
			t.Fatalf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if _, ok := it.Next(); ok {
		t.Fatal("extra entry")
	}
}

func TestParseMetadataRejectsGarbage(t *testing.T) {
	for _, raw := range [][]byte{{5, 'a'}, {1, 'a', 0}, {1, 'a', 0, 0, 9, 'x'}, {1, 'a', 3, 0, 0}} {
		if _, err := ParseMetadata(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: got %v", raw, err)
		}
	}
}

func TestChannelList(t *testing.T) {
	want := []ChannelBinding{{ID: 1, Dir: CallerSends, Window: 0}, {ID: 300, Dir: CalleeSends, Window: 16}, {ID: 1 << 62, Dir: CallerSends, Window: MaxWindow}}
	var raw []byte
	for _, b := range want {
		raw = AppendChannel(raw, b)
	}
	l := MakeChannelList(raw)
	if l.Len() != 3 || !validChannelList(raw) {
		t.Fatalf("Len = %d", l.Len())
	}
	for _, w := range want {
		b, rest, ok := l.Next()
		if !ok || b != w {
			t.Fatalf("got %+v,%v want %+v", b, ok, w)
		}
		l = rest
	}
	if _, _, ok := l.Next(); ok {
		t.Fatal("extra binding")
	}
	for _, bad := range []ChannelBinding{{ID: 0, Window: 1}, {ID: 1, Window: MaxWindow + 1}} {
		if validChannelList(AppendChannel(nil, bad)) {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

// spec:10 request and channel ids are allocated by parity, so the two
// peers' ids never collide.
func TestParity(t *testing.T) {
	if ParityOdd.First() != 1 || ParityEven.First() != 2 {
		t.Fatal("First")
	}
	if ParityOdd.Opposite() != ParityEven || ParityEven.Opposite() != ParityOdd {
		t.Fatal("Opposite")
	}
	for id := uint64(1); id < 10; id++ {
		if ParityOdd.Owns(id) == ParityEven.Owns(id) {
			t.Fatalf("id %d owned by both or neither", id)
		}
	}
	if ParityOdd.Owns(0) || ParityEven.Owns(0) {
		t.Fatal("id 0 must belong to nobody")
	}
	if !ParityOdd.Owns(1) || !ParityEven.Owns(2) || ParityOdd.Owns(2) || ParityEven.Owns(3) {
		t.Fatal("odd ids belong to the odd parity, even ids to the even")
	}
}

// Every byte value names itself without panicking, and only the kinds and
// statuses this version defines are valid.
func TestEveryKindAndStatusByte(t *testing.T) {
	kinds, statuses := 0, 0
	for b := range 256 {
		k, s := Kind(b), Status(b)
		if k.Valid() {
			kinds++
		}
		if _, err := ParseMessage(AppendMessage(nil, &Message{Kind: KindResponse, ID: 1, Status: s})); err == nil {
			statuses++
		}
		_, _ = k.String(), s.String()
	}
	defined := 0
	for _, name := range kindNames {
		if name != "" {
			defined++
		}
	}
	if kinds != defined || defined != 18 || statuses != int(statusCount) {
		t.Fatalf("%d valid kinds, %d valid statuses", kinds, statuses)
	}
}

func TestKindAndStatusNames(t *testing.T) {
	if KindGrantCredit.String() != "GrantCredit" || Kind(0x7f).String() != "Kind(0x7f)" {
		t.Fatal(KindGrantCredit.String(), Kind(0x7f).String())
	}
	if StatusUnavailable.String() != "Unavailable" || CodeIDInUse.String() != "id in use" || Code(999).String() != "code 999" {
		t.Fatal("names")
	}
}
