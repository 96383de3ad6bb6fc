package core

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// Method names one remote procedure. Its 64-bit ID is derived from the
// service and method names, so the same method name in two services never
// collides (spec rule 12), and both peers compute it without coordination.
type Method struct {
	ID      uint64
	Service string
	Name    string
}

// NewMethod returns the Method for service and name: ID is the first 8
// bytes, little-endian, of SHA-256(service + "." + name) (docs/PROTOCOL.md).
func NewMethod(service, name string) Method {
	return Method{ID: MethodID(service, name), Service: service, Name: name}
}

// MethodID computes the 64-bit id of service.name.
func MethodID(service, name string) uint64 {
	h := sha256.New()
	h.Write([]byte(service))
	h.Write([]byte{'.'})
	h.Write([]byte(name))
	var sum [sha256.Size]byte
	return binary.LittleEndian.Uint64(h.Sum(sum[:0]))
}

// String returns "service.name".
func (m Method) String() string { return m.Service + "." + m.Name }

// ParseMethod reads a method's names as tools write them: service/name,
// or service.name split at the last dot (service names may hold dots:
// rove.health.v1/Check).
func ParseMethod(s string) (Method, error) {
	svc, name, ok := strings.Cut(s, "/")
	if !ok {
		i := strings.LastIndexByte(s, '.')
		if i < 0 {
			return Method{}, fmt.Errorf("rove: method %q: want SERVICE/METHOD", s)
		}
		svc, name = s[:i], s[i+1:]
	}
	if svc == "" || name == "" || strings.Contains(name, "/") {
		return Method{}, fmt.Errorf("rove: method %q: want SERVICE/METHOD", s)
	}
	return NewMethod(svc, name), nil
}
