// Package wire is Rove's message codec: the body of every frame that crosses a
// link, as pure functions over byte slices.
//
// The framing itself (the length prefix that cuts a byte stream into frames)
// belongs to package netpoll; wire only knows what is inside one frame body.
// docs/PROTOCOL.md is the normative description of both layers.
//
// Encoders have the shape AppendX(dst, x) []byte: they append to a buffer
// the caller owns and never retain it. Decoders return views: the slices in
// a parsed [Message] (Payload, Metadata, Channels) point into the frame body
// that was parsed and stay valid exactly as long as that body does. Parsing
// never allocates and checks every length against the bytes that are really
// there before using it, so a hostile length can never drive an allocation.
//
// Every function in this package is safe for concurrent use; none keeps state.
package wire
