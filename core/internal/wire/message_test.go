package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func md(entries ...Entry) Metadata {
	var raw []byte
	for _, e := range entries {
		raw = AppendEntry(raw, e)
	}
	return MakeMetadata(raw)
}

func chans(ids ...uint64) ChannelList {
	var raw []byte
	for i, id := range ids {
		raw = AppendChannel(raw, ChannelBinding{ID: id, Dir: ChannelDir(i % 2), Window: uint64(16 * i)})
	}
	return MakeChannelList(raw)
}

// sampleMessages has one or more messages of every kind, with every optional
// field both absent and present. The fuzz seed corpus is made from it too.
func sampleMessages() []Message {
	meta := md(
		Entry{Key: []byte("trace-id"), Type: ValueString, Value: []byte("abc")},
		Entry{Key: []byte("token"), Type: ValueBytes, Flags: FlagSensitive | FlagNoPropagate, Value: []byte{0, 1, 2}},
		Entry{Key: []byte("retries"), Type: ValueU64, Flags: 1 << 9, U64: 1 << 40},
		Entry{Key: []byte("trace-id"), Type: ValueString, Value: nil},
	)
	return []Message{
		{Kind: KindHello, MinVersion: 1, Version: 1, Parity: ParityOdd},
		{Kind: KindHello, MinVersion: 1, Version: 7, Parity: ParityEven, Settings: Settings{MaxConcurrentRequests: 1024, MaxFrameSize: 1 << 20, MaxMetadataEntries: 3, MaxMetadataBytes: 4, MaxChannels: 5, MaxChannelsPerCall: 6, ByteBudget: 7}, Metadata: meta},
		{Kind: KindHelloAck, Version: 1, Parity: ParityEven, Settings: Settings{MaxConcurrentRequests: 1}},
		{Kind: KindReject, Code: CodeVersion, Payload: []byte("no common version")},
		{Kind: KindReject},
		{Kind: KindPing, ID: 0xdeadbeefcafef00d},
		{Kind: KindPong, ID: 1},
		{Kind: KindGoAway, Code: CodeNone, Payload: []byte("draining")},
		{Kind: KindProtocolError, Code: CodeWrongParity, Payload: []byte("request id 2 has the wrong parity")},
		{Kind: KindOpenConn, Conn: 3, Parity: ParityOdd, Settings: Settings{MaxConcurrentRequests: 8}, Metadata: meta},
		{Kind: KindAcceptConn, Conn: 3, Parity: ParityEven},
		{Kind: KindRejectConn, Conn: 5, Code: CodeRefused, Payload: []byte("no acceptor")},
		{Kind: KindCloseConn, Conn: 5},
		{Kind: KindRequest, Conn: 0, ID: 1, Method: 0x0123456789abcdef, Payload: bytes.Repeat([]byte{'x'}, 64)},
		{Kind: KindRequest, Conn: 1 << 33, ID: 1<<63 + 1, Method: 1, TimeoutMicros: 250000, Channels: chans(1, 3, 1<<50), Metadata: meta},
		{Kind: KindRequest, ID: 3, Method: 7},
		{Kind: KindResponse, ID: 1, Status: StatusOK, Payload: []byte("pong")},
		{Kind: KindResponse, ID: 9, Status: StatusUserError, Channels: chans(2), Metadata: meta, Payload: []byte(`{"code":7}`)},
		{Kind: KindResponse, ID: 11, Status: StatusUnavailable},
		{Kind: KindCancel, Conn: 2, ID: 7},
		{Kind: KindChannelItem, Conn: 0, ID: 5, Payload: []byte("item")},
		{Kind: KindChannelItem, ID: 5},
		{Kind: KindChannelClose, ID: 5, Metadata: meta},
		{Kind: KindChannelReset, Conn: 4, ID: 6},
		{Kind: KindGrantCredit, ID: 6, Credit: 8},
		{Kind: KindGrantCredit, Conn: 2, ID: 6, Credit: 8, Bytes: 4 << 20},
		{Kind: KindHelloAck, Version: 1, Parity: ParityEven, Settings: Settings{ByteBudget: 64 << 20, ChannelByteWindow: 4 << 20}},
	}
}

// equalMessages compares two messages by content: views are compared by
// the bytes they show, nil and empty alike.
func equalMessages(a, b Message) bool {
	if !bytes.Equal(a.Payload, b.Payload) || !bytes.Equal(a.Metadata.raw, b.Metadata.raw) ||
		!bytes.Equal(a.Channels.raw, b.Channels.raw) {
		return false
	}
	a.Payload, b.Payload = nil, nil
	a.Metadata, b.Metadata = Metadata{}, Metadata{}
	a.Channels, b.Channels = ChannelList{}, ChannelList{}
	return reflect.DeepEqual(a, b)
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		body := AppendMessage(nil, &m)
		got, err := ParseMessage(body)
		if err != nil {
			t.Fatalf("%v: parse: %v (body %x)", m.Kind, err, body)
		}
		if !equalMessages(m, got) {
			t.Fatalf("%v: round trip\n got  %+v\n want %+v", m.Kind, got, m)
		}
		if again := AppendMessage(nil, &got); !bytes.Equal(again, body) {
			t.Fatalf("%v: re-encode differs: %x vs %x", m.Kind, again, body)
		}
	}
}

func TestAppendMessageAppends(t *testing.T) {
	prefix := []byte("keep")
	m := Message{Kind: KindCancel, Conn: 1, ID: 2}
	out := AppendMessage(append([]byte(nil), prefix...), &m)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("prefix overwritten: %q", out)
	}
	if _, err := ParseMessage(out[len(prefix):]); err != nil {
		t.Fatal(err)
	}
	if got := AppendMessage(prefix, &Message{Kind: 0x7f}); !bytes.Equal(got, prefix) {
		t.Fatalf("undefined kind appended %x", got[len(prefix):])
	}
}

// Every strict prefix of a valid body that ends inside a fixed field must
// fail cleanly (never panic); the full body must parse.
func TestParseTruncated(t *testing.T) {
	for _, m := range sampleMessages() {
		body := AppendMessage(nil, &m)
		for i := 0; i < len(body); i++ {
			got, err := ParseMessage(body[:i])
			if err == nil {
				// A prefix may still be a valid message only when it cut
				// the trailing payload, which has no length of its own.
				if !bytes.HasPrefix(m.Payload, got.Payload) {
					t.Fatalf("%v: prefix %d parsed to a different payload", m.Kind, i)
				}
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v: prefix %d: error %v does not wrap ErrMalformed", m.Kind, i, err)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	hello := AppendMessage(nil, &Message{Kind: KindHello, MinVersion: 1, Version: 1, Parity: ParityOdd})
	badMagic := append([]byte(nil), hello...)
	badMagic[1] = 'X'
	badParity := append([]byte(nil), hello...)
	badParity[7] = 3 // kind, magic(4), min, max, parity
	trailing := append(AppendMessage(nil, &Message{Kind: KindCancel, ID: 1}), 0)
	reqFlags := AppendMessage(nil, &Message{Kind: KindRequest, ID: 1, Method: 2})
	reqFlags[1+1+1+8] = 0x80
	respStatus := AppendMessage(nil, &Message{Kind: KindResponse, ID: 1})
	respStatus[3] = statusCount
	hugeMeta := []byte{byte(KindCloseConn), 1, 0xff, 0xff, 0xff, 0xff, 0x0f} // metadata length 4 GiB, nothing behind it
	badEntryType := AppendMessage(nil, &Message{Kind: KindCloseConn, Metadata: MakeMetadata([]byte{1, 'k', 9, 0, 0})})
	overlongVarint := []byte{byte(KindCancel), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1}
	emptyChans := []byte{byte(KindResponse), 0, 1, 0, flagChannels, 0}
	zeroTimeout := []byte{byte(KindRequest), 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, flagTimeout, 0}
	zeroBytes := append(AppendMessage(nil, &Message{Kind: KindGrantCredit, ID: 1, Credit: 2}), 0)

	cases := []struct {
		name  string
		body  []byte
		magic bool
	}{
		{"empty", nil, false},
		{"unknown kind", []byte{0x7f}, false},
		{"kind zero", []byte{0}, false},
		{"bad magic", badMagic, true},
		{"bad parity", badParity, false},
		{"trailing bytes", trailing, false},
		{"unknown request flags", reqFlags, false},
		{"unknown status", respStatus, false},
		{"metadata longer than body", hugeMeta, false},
		{"bad metadata value type", badEntryType, false},
		{"overlong varint", overlongVarint, false},
		{"empty channel list with flag", emptyChans, false},
		{"zero timeout with flag", zeroTimeout, false},
		{"grant's bytes encoded as zero", zeroBytes, false},
	}
	for _, tc := range cases {
		_, err := ParseMessage(tc.body)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		}
		if errors.Is(err, ErrBadMagic) != tc.magic {
			t.Errorf("%s: errors.Is(ErrBadMagic) = %v", tc.name, !tc.magic)
		}
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%s: %T is not a *ParseError", tc.name, err)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	for _, m := range sampleMessages() {
		body := AppendMessage(nil, &m)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := ParseMessage(body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: ParseMessage allocates %.1f times", m.Kind, allocs)
		}
	}
}

func TestAppendDoesNotAllocateIntoRoom(t *testing.T) {
	buf := make([]byte, 0, 4096)
	for _, m := range sampleMessages() {
		allocs := testing.AllocsPerRun(100, func() { buf = AppendMessage(buf[:0], &m) })
		if allocs != 0 {
			t.Errorf("%v: AppendMessage allocates %.1f times into a buffer with room", m.Kind, allocs)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	m := Message{Kind: KindRequest, ID: 12345, Method: 0xabcdef, Payload: make([]byte, 64)}
	body := AppendMessage(nil, &m)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseMessage(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	m := Message{Kind: KindRequest, ID: 12345, Method: 0xabcdef, Payload: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

// A Hello cut right after its magic is malformed, not a wrong magic: the
// magic is right, the fields after it are missing.
func TestHelloCutAfterMagic(t *testing.T) {
	_, err := ParseMessage(append([]byte{byte(KindHello)}, Magic...))
	if err == nil || errors.Is(err, ErrBadMagic) {
		t.Fatalf("got %v, want malformed but not a bad magic", err)
	}
	if _, err := ParseMessage(append([]byte{byte(KindHello)}, Magic[:3]...)); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("three bytes of magic: %v, want ErrBadMagic", err)
	}
}

// TestParseMessageIntoOverwritesWhole: a Message reused across frames
// keeps nothing of the previous one (a field of another kind left set
// would be read as this frame's).
func TestParseMessageIntoOverwritesWhole(t *testing.T) {
	samples := sampleMessages()
	for i, want := range samples {
		body := AppendMessage(nil, &want)
		for j := range samples {
			m := samples[j] // a dirty Message: every field of another kind set
			if err := ParseMessageInto(&m, body); err != nil {
				t.Fatalf("%v into %v: %v", want.Kind, samples[j].Kind, err)
			}
			direct, _ := ParseMessage(body)
			if !equalMessages(m, direct) {
				t.Fatalf("sample %d parsed over sample %d:\n got %+v\nwant %+v", i, j, m, direct)
			}
		}
	}
}

// The encoders that build no Message write what AppendMessage writes, and
// it parses back to the message.
func TestDirectEncoders(t *testing.T) {
	n := 0
	for _, m := range sampleMessages() {
		direct := appendDirect(&m)
		if direct == nil {
			continue
		}
		n++
		if enc := AppendMessage(nil, &m); !bytes.Equal(direct, enc) {
			t.Fatalf("%v: direct %x, AppendMessage %x", m.Kind, direct, enc)
		}
		got, err := ParseMessage(direct)
		if err != nil || !equalMessages(got, m) {
			t.Fatalf("%v: parses to %+v, %v", m.Kind, got, err)
		}
	}
	if n < 3 {
		t.Fatalf("only %d samples have a direct encoder", n)
	}
}
