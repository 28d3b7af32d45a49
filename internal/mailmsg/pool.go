package mailmsg

import (
	"bufio"
	"bytes"
	"io"
	"sync"
)

// Parsing a message took a buffered reader per message, per multipart, per
// enclosed message and per header, and a growing slice per text part: of
// the 2 GB a 10,000-message fetch allocated (scripts/bench-sync, alloc
// profile of serve), 0.6 GB were those buffers, each zeroed when made and
// then swept. They are taken from pools and given back once the parse
// that took them is done with them.

// readerSizes are the sizes of the pooled readers.
var readerSizes = [...]int{4 << 10, 8 << 10, 32 << 10, 64 << 10}

var readerPools [len(readerSizes)]sync.Pool

// getReader is bufio.NewReaderSize from a pool: it returns r itself when
// r is a *bufio.Reader at least that large (as bufio does), else a reader
// the caller gives back with putReader once nothing reads from it.
func getReader(r io.Reader, size int) (br *bufio.Reader, pooled bool) {
	if b, ok := r.(*bufio.Reader); ok && b.Size() >= size {
		return b, false
	}
	for i, s := range readerSizes {
		if s == size {
			if b, _ := readerPools[i].Get().(*bufio.Reader); b != nil {
				b.Reset(r)
				return b, true
			}
			return bufio.NewReaderSize(r, size), true
		}
	}
	return bufio.NewReaderSize(r, size), false
}

// putReader gives back a reader getReader made (pooled true); it must not
// be used after.
func putReader(br *bufio.Reader, pooled bool) {
	if !pooled {
		return
	}
	br.Reset(nil)
	for i, s := range readerSizes {
		if s == br.Size() {
			readerPools[i].Put(br)
			return
		}
	}
}

// maxPooledText is the largest text buffer kept for reuse: a rare huge
// body is not held on to.
const maxPooledText = 1 << 20

var textBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readText reads r, up to limit bytes, into a pooled buffer; done gives
// the buffer back (the bytes must not be used after).
func readText(r io.Reader, limit int64) (data []byte, done func(), err error) {
	buf := textBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(r, limit))
	return buf.Bytes(), func() {
		if buf.Cap() <= maxPooledText {
			textBuffers.Put(buf)
		}
	}, err
}

// crlfToLF turns every CRLF of b into LF, in place.
func crlfToLF(b []byte) []byte {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return b
	}
	w := i
	for r := i; r < len(b); r++ {
		if b[r] == '\r' && r+1 < len(b) && b[r+1] == '\n' {
			continue
		}
		b[w] = b[r]
		w++
	}
	return b[:w]
}

// copyBuffers are io.CopyBuffer's buffers, where neither side brings its
// own (io.Copy allocates 32 KB per call).
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}
