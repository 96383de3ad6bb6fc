package wire

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMessage: no input panics; whatever parses re-encodes to a body
// that parses to the same message, and encoding is then stable.
func FuzzParseMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(AppendMessage(nil, &m))
	}
	samples := sampleMessages()
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseMessage(body)
		reused := samples[len(body)%len(samples)]
		errInto := ParseMessageInto(&reused, body)
		if (err == nil) != (errInto == nil) {
			t.Fatalf("ParseMessage: %v; ParseMessageInto: %v", err, errInto)
		}
		if err != nil {
			return
		}
		if !equalMessages(m, reused) {
			t.Fatalf("ParseMessageInto over a used Message:\n %+v\n %+v", reused, m)
		}
		enc := AppendMessage(nil, &m)
		m2, err := ParseMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded %v does not parse: %v", m.Kind, err)
		}
		if !equalMessages(m, m2) {
			t.Fatalf("round trip changed the message:\n %+v\n %+v", m, m2)
		}
		if enc2 := AppendMessage(nil, &m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %x vs %x", enc, enc2)
		}
		if direct := appendDirect(&m); direct != nil && !bytes.Equal(direct, enc) {
			t.Fatalf("the direct encoder of %v writes %x, AppendMessage %x", m.Kind, direct, enc)
		}
	})
}

// appendDirect encodes m with the encoder of its own kind that builds no
// Message (AppendRequest and the others), nil for kinds that have none.
func appendDirect(m *Message) []byte {
	switch m.Kind {
	case KindRequest:
		return AppendRequest(nil, m.Conn, m.ID, m.Method, m.TimeoutMicros, m.Channels, m.Metadata, m.Payload)
	case KindResponse:
		return AppendResponse(nil, m.Conn, m.ID, m.Status, m.Channels, m.Metadata, m.Payload)
	case KindChannelItem:
		return AppendChannelItem(nil, m.Conn, m.ID, m.Payload)
	}
	return nil
}

// FuzzParseMetadata: validated metadata iterates to the end without error
// and re-encodes to the same bytes.
func FuzzParseMetadata(f *testing.F) {
	for _, m := range sampleMessages() {
		if !m.Metadata.Empty() {
			f.Add(m.Metadata.Raw())
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMetadata(raw)
		if err != nil {
			return
		}
		var again []byte
		it := m.Iter()
		for e, ok := it.Next(); ok; e, ok = it.Next() {
			again = AppendEntry(again, e)
		}
		if _, err := ParseMetadata(again); err != nil {
			t.Fatalf("re-encoded metadata invalid: %v", err)
		}
		if len(again) > len(raw) {
			t.Fatalf("re-encoding grew: %d > %d", len(again), len(raw))
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz from sampleMessages when
// ROVE_WRITE_CORPUS=1. The corpus is committed so `go test` replays it.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("ROVE_WRITE_CORPUS") != "1" {
		t.Skip("set ROVE_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseMessage")
	mdir := filepath.Join("testdata", "fuzz", "FuzzParseMetadata")
	for _, d := range []string{dir, mdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range sampleMessages() {
		write := func(d string, b []byte) {
			name := filepath.Join(d, fmt.Sprintf("seed-%02d-%s", i, m.Kind))
			if err := os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(dir, AppendMessage(nil, &m))
		if !m.Metadata.Empty() {
			write(mdir, m.Metadata.Raw())
		}
	}
}

// FuzzParseErrorPayload: no input panics; what parses re-encodes to a
// payload that parses to the same error, and encoding is then stable (an
// overlong varint, which Go's decoder accepts, re-encodes shorter).
func FuzzParseErrorPayload(f *testing.F) {
	f.Add(AppendErrorPayload(nil, ErrorPayload{Code: 5, Message: []byte("no such key"), Details: []byte(`{"key":"a"}`)}))
	f.Add(AppendErrorPayload(nil, ErrorPayload{Code: 16}))
	f.Add([]byte{0x05, 0x20, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseErrorPayload(b)
		if err != nil {
			return
		}
		enc := AppendErrorPayload(nil, e)
		e2, err := ParseErrorPayload(enc)
		if err != nil || e2.Code != e.Code || !bytes.Equal(e2.Message, e.Message) || !bytes.Equal(e2.Details, e.Details) {
			t.Fatalf("round trip: %x -> %+v -> %x -> %+v, %v", b, e, enc, e2, err)
		}
		if enc2 := AppendErrorPayload(nil, e2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %x vs %x", enc, enc2)
		}
	})
}
