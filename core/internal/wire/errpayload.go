package wire

// The payload of a StatusError response: an application error with a
// canonical code.
//
//	code:uvarint  message_len:uvarint  message:bytes  details:rest
//
// The code is one of core's canonical codes (1 to 16, as gRPC's); the
// message is UTF-8 text for people; details are opaque bytes (Rove's typed
// details are JSON) and may be empty.

// ErrorPayload is a decoded StatusError payload. Message and Details are
// views into the payload parsed.
type ErrorPayload struct {
	Code    uint64
	Message []byte
	Details []byte
}

// AppendErrorPayload appends the encoding of e to dst.
func AppendErrorPayload(dst []byte, e ErrorPayload) []byte {
	dst = AppendUvarint(dst, e.Code)
	dst = appendBytes(dst, e.Message)
	return append(dst, e.Details...)
}

// ParseErrorPayload decodes a StatusError payload. A truncated or
// overlong field is an error wrapping ErrMalformed.
func ParseErrorPayload(b []byte) (ErrorPayload, error) {
	c := cursor{buf: b, kind: KindResponse}
	var e ErrorPayload
	e.Code = c.uvarint("error code")
	e.Message = c.bytes("error message")
	if !c.ok() {
		return ErrorPayload{}, malformed(KindResponse, c.field)
	}
	e.Details = c.rest()
	return e, nil
}
