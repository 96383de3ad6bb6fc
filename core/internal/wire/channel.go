package wire

// MaxWindow is the largest initial credit window a channel binding may
// declare: the most items a receiver must be ready to hold before its
// consumer has taken any.
const MaxWindow = 1 << 16

// ChannelDir says which peer of a call sends on a channel.
type ChannelDir uint8

// Channel directions.
const (
	CallerSends ChannelDir = 0 // the caller holds the Tx, the callee the Rx
	CalleeSends ChannelDir = 1 // the callee holds the Tx, the caller the Rx
)

// ChannelBinding is one channel a call binds: its id (allocated by the
// caller with its parity on the connection), which way items flow, and its
// initial credit window (the items the sender may send before any grant).
type ChannelBinding struct {
	ID     uint64
	Dir    ChannelDir
	Window uint64
}

// ChannelList is the list of channels a Request binds, in wire form: a
// view of (id uvarint, window<<1|dir uvarint) pairs. The zero value is the
// empty list.
type ChannelList struct{ raw []byte }

// AppendChannel appends b to raw, the list under construction.
func AppendChannel(raw []byte, b ChannelBinding) []byte {
	raw = AppendUvarint(raw, b.ID)
	return AppendUvarint(raw, b.Window<<1|uint64(b.Dir&1))
}

// MakeChannelList wraps bindings appended with AppendChannel.
func MakeChannelList(raw []byte) ChannelList { return ChannelList{raw: raw} }

// Raw returns the encoded bindings (a view).
func (l ChannelList) Raw() []byte { return l.raw }

// Empty reports whether the list binds nothing.
func (l ChannelList) Empty() bool { return len(l.raw) == 0 }

// Len counts the bindings.
func (l ChannelList) Len() int {
	n := 0
	for _, rest, ok := l.Next(); ok; _, rest, ok = rest.Next() {
		n++
	}
	return n
}

// Next decodes the binding at the front of the list and returns the rest,
// or false at the end (or at a malformed binding of an unvalidated list).
func (l ChannelList) Next() (b ChannelBinding, rest ChannelList, ok bool) {
	if len(l.raw) == 0 {
		return b, l, false
	}
	c := cursor{buf: l.raw}
	b.ID = c.uvarint("channel id")
	mode := c.uvarint("channel mode")
	if !c.ok() {
		return ChannelBinding{}, ChannelList{}, false
	}
	b.Dir, b.Window = ChannelDir(mode&1), mode>>1
	return b, ChannelList{raw: c.buf}, true
}

// validChannelList checks every binding: complete, a non-zero id, a window
// within MaxWindow.
func validChannelList(raw []byte) bool {
	for l := (ChannelList{raw: raw}); len(l.raw) > 0; {
		b, rest, ok := l.Next()
		if !ok || b.ID == 0 || b.Window > MaxWindow {
			return false
		}
		l = rest
	}
	return true
}
