package netpoll

// inbound cuts a byte stream into frames. It is owned by the connection's
// reading goroutine (the read loop, or the gnet event loop): no locks.
//
// Unparsed bytes are cur.buf[r:w]. Reads land at cur.buf[w:]. When the room
// left is too small for a useful read, or for the frame whose header has
// arrived, the unparsed tail moves to a fresh chunk: that copy touches only a
// partial frame, never a whole batch.
type inbound struct {
	cur       *chunk
	r, w      int
	chunkSize int // default chunk size
	maxFrame  int
	maxRead   int     // 0, or the most bytes to accept per read (tests)
	batch     []Frame // frames cut since the last delivery; reused
	full      func()  // delivers batch once it holds maxBatchFrames; nil: no limit (tests of the cutter alone)
	acct      *Conn   // the connection whose read budget chunks are charged to; nil in tests of the cutter alone
}

// minReadRoom is the least free room worth reading into.
const minReadRoom = 2048

// room returns the buffer the next read should fill. It never returns an
// empty slice.
//
// A frame larger than the chunk grows its buffer with the bytes that have
// arrived, never with the length its header announces (rule 34): each move
// at most doubles the partial frame's room, up to the frame's full size.
// So a peer that announces 4 MiB and sends 2 bytes costs one default chunk,
// and a frame that really arrives is copied about once more in all.
func (in *inbound) room() []byte {
	if in.cur == nil {
		in.cur = getChunk(in.chunkSize)
		in.r, in.w = 0, 0
	}
	if in.r == in.w && in.cur.readerOnly() {
		// Only the reader holds the chunk (every frame was released), so
		// nobody can be looking at its bytes: start again at the front.
		in.r, in.w = 0, 0
	}
	have := in.w - in.r
	need := max(pendingFrameSize(in.cur.buf[in.r:in.w]), minReadRoom)
	if len(in.cur.buf)-in.r < need || len(in.cur.buf)-in.w < minReadRoom {
		// A partial frame that already starts the chunk reads on while
		// room is left; the chunk grows when it is full.
		if in.r != 0 || len(in.cur.buf)-in.w < minReadRoom {
			in.moveTail(max(in.chunkSize, min(need, 2*have)))
		}
	}
	b := in.cur.buf[in.w:]
	if in.maxRead > 0 && len(b) > in.maxRead {
		b = b[:in.maxRead]
	}
	return b
}

// moveTail moves the unparsed bytes to a new chunk of at least size bytes.
func (in *inbound) moveTail(size int) {
	next := getChunk(size)
	n := copy(next.buf, in.cur.buf[in.r:in.w])
	in.cur.dropReader()
	in.cur, in.r, in.w = next, 0, n
}

// shrink moves the n bytes just read into room() to a chunk of their size
// when they start a new run of frames (nothing unparsed before them) and
// fill at most an eighth of the chunk: a frame that the handler holds
// (a request whose handler waits, an item not yet taken) keeps its whole
// chunk alive, and a small frame that came in a read of its own must not
// pin a default-size chunk. The copy is of a small read only; a large
// read stays where it landed. Call it before commit(n).
func (in *inbound) shrink(n int) {
	if in.r != in.w || n > len(in.cur.buf)/8 || in.cur.class >= 0 && chunkClass(n) >= int(in.cur.class) {
		return
	}
	next := getChunk(n)
	copy(next.buf, in.cur.buf[in.w:in.w+n])
	in.cur.dropReader()
	in.cur, in.r, in.w = next, 0, 0
}

// commit records n bytes read into room() and cuts every complete frame.
// The frames' references are taken together (charge) before any of them
// is handed over: one atomic add per read, not one per frame.
func (in *inbound) commit(n int) error {
	in.w += n
	cut := 0
	for {
		rest, body, ok, err := ParseFrame(in.cur.buf[in.r:in.w], in.maxFrame)
		if err != nil || !ok {
			in.charge(cut)
			return err
		}
		in.batch = append(in.batch, Frame{Body: body, chunk: in.cur, acct: in.acct})
		cut++
		in.r = in.w - len(rest)
		if len(in.batch) == maxBatchFrames && in.full != nil {
			in.charge(cut)
			cut = 0
			in.full()
		}
	}
}

// charge takes the references of the k frames just cut from the current
// chunk and, when they are its only frames held, charges the chunk to the
// read budget (see Frame.Release).
func (in *inbound) charge(k int) {
	if k > 0 && in.cur.addFrames(k) && in.acct != nil {
		in.acct.hold(len(in.cur.buf))
	}
}

// maxBatchFrames is the most frames delivered at once: a read of many
// small frames (a peer can pack 64 Ki empty ones in a 64 KiB read) is
// handed over in runs of this many, so that the frame list, 40 bytes per
// frame, stays a few KiB however the peer packs its bytes, both while the
// read is handled and after (the list is kept for the next read).
const maxBatchFrames = 256

// feed copies p (bytes the caller read into its own buffer) into chunks and
// cuts frames: the one copy per read batch of the gnet transport. A fresh
// chunk is sized for p (see shrink for why), up to the default size.
func (in *inbound) feed(p []byte) error {
	if in.cur == nil && len(p) > 0 {
		in.cur = getChunk(min(in.chunkSize, len(p)))
		in.r, in.w = 0, 0
	}
	for len(p) > 0 {
		n := copy(in.room(), p)
		p = p[n:]
		if err := in.commit(n); err != nil {
			return err
		}
	}
	return nil
}

// reset forgets the delivered batch, keeping its array for the next one.
func (in *inbound) reset() {
	clear(in.batch)
	in.batch = in.batch[:0]
}

// release gives the reader's chunk back when no partial frame is in it,
// so that an idle connection holds no read buffer (frames still held keep
// their chunk alive). The gnet transport calls it after each delivery: its
// reads land in the loop's buffer, so it needs a chunk only to copy into.
func (in *inbound) release() {
	if in.cur != nil && in.r == in.w {
		in.cur.dropReader()
		in.cur = nil
	}
}

// partial reports whether bytes of an unfinished frame are buffered.
func (in *inbound) partial() bool { return in.cur != nil && in.r != in.w }

// free releases the reader's chunk and any frames never delivered.
func (in *inbound) free() {
	for _, f := range in.batch {
		f.Release()
	}
	in.batch = in.batch[:0]
	if in.cur != nil {
		in.cur.dropReader()
		in.cur = nil
	}
}
