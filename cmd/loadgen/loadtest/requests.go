package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// counterTag in -data is replaced by the call's sequence number (from 0).
const counterTag = "{{counter}}"

// requests makes each call's request payload: one fixed payload (-payload
// bytes, -data, -data-file), the lines of a file in turn (-data-lines),
// or a template with a counter (-data with {{counter}}).
type requests struct {
	fixed []byte
	lines [][]byte
	parts [][]byte // the template split at each counter tag
	seq   atomic.Uint64
}

// newRequests reads the request flags. Without any, the request is
// -payload bytes (0, 1, 2, ...), as the echo has always sent.
func newRequests(cfg *config) (*requests, error) {
	q := &requests{}
	switch {
	case cfg.dataLines != "":
		f, err := os.Open(cfg.dataLines)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			if !json.Valid(line) {
				return nil, fmt.Errorf("-data-lines %s:%d: not JSON", cfg.dataLines, n)
			}
			q.lines = append(q.lines, append([]byte(nil), line...))
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		if len(q.lines) == 0 {
			return nil, fmt.Errorf("-data-lines %s: no requests in it", cfg.dataLines)
		}
	case cfg.dataFile != "":
		b, err := os.ReadFile(cfg.dataFile)
		if err != nil {
			return nil, err
		}
		q.fixed = b // raw bytes, as a raw method takes them
	case cfg.data != "":
		text := cfg.data
		if strings.HasPrefix(text, "@") {
			b, err := os.ReadFile(text[1:])
			if err != nil {
				return nil, err
			}
			text = string(b)
		}
		text = strings.TrimSpace(text)
		if !json.Valid([]byte(strings.ReplaceAll(text, counterTag, "0"))) {
			return nil, fmt.Errorf("-data: not JSON (typed methods take JSON; use -data-file for raw bytes)")
		}
		if strings.Contains(text, counterTag) {
			for _, p := range strings.Split(text, counterTag) {
				q.parts = append(q.parts, []byte(p))
			}
		} else {
			q.fixed = []byte(text)
		}
	default:
		q.fixed = make([]byte, cfg.payload)
		for i := range q.fixed {
			q.fixed[i] = byte(i)
		}
	}
	return q, nil
}

// next returns the next call's request. A fixed payload or a line is
// shared (calls do not modify requests); a template makes a new one.
func (q *requests) next() []byte {
	switch {
	case q.lines != nil:
		return q.lines[(q.seq.Add(1)-1)%uint64(len(q.lines))]
	case q.parts != nil:
		n := strconv.AppendUint(nil, q.seq.Add(1)-1, 10)
		var b []byte
		for i, p := range q.parts {
			if i > 0 {
				b = append(b, n...)
			}
			b = append(b, p...)
		}
		return b
	}
	return q.fixed
}
