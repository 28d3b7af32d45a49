package mailmsg

import (
	"bufio"
	"bytes"
	"hash/maphash"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Span is where a MIME part's encoded body lies in a raw message.
type Span struct {
	Offset, Length int64
	// Encoding is the part's Content-Transfer-Encoding, lowercased and
	// trimmed ("" for none); DecodeTransfer takes it.
	Encoding string
}

// bodyPrint is what the parser read of an attachment's encoded body: its
// length, its transfer encoding, and a 64-bit hash keyed for this process
// (hash/maphash). It is not a cryptographic hash: two bodies of one length
// can collide, by chance about once in 2^64, and a sender cannot aim at a
// collision without the key, which never leaves the process. Were one
// found, Span.Holds would take other bytes of the same email for the
// attachment: nothing a sender could not have put in the attachment.
type bodyPrint struct {
	n        int64
	sum      uint64
	encoding string
	ok       bool
}

var bodySeed = maphash.MakeSeed()

// Holds reports whether sp is where a's encoded body lies in the raw
// message r: the same transfer encoding, and the same bytes the parser
// decoded into a, read again here undecoded. Equal input to the same
// decoder (DecodeTransfer) gives equal content, so this stands for
// decoding the span and comparing it with a's Size and SHA256, at the cost
// of a read. known is false when Parse noted nothing of a's body (an
// attachment cut off or left unread, a multipart kept whole): the caller
// decodes and compares instead.
func (sp Span) Holds(r io.ReadSeeker, a *Attachment) (known, ok bool, err error) {
	if !a.body.ok {
		return false, false, nil
	}
	if sp.Length != a.body.n || sp.Encoding != a.body.encoding {
		return true, false, nil
	}
	if _, err := r.Seek(sp.Offset, io.SeekStart); err != nil {
		return true, false, err
	}
	var h maphash.Hash
	h.SetSeed(bodySeed)
	buf := copyBuffers.Get().(*[32 << 10]byte)
	n, err := io.CopyBuffer(&h, io.LimitReader(r, sp.Length), buf[:])
	copyBuffers.Put(buf)
	if err != nil {
		return true, false, err
	}
	return true, n == sp.Length && h.Sum64() == a.body.sum, nil
}

// maxSpanHeader caps the header kept per part while finding spans.
const maxSpanHeader = 64 << 10

// PartSpans reads a raw message once and returns where each leaf part's
// encoded body lies, keyed by its part number as Attachment.Part names it.
// A part's body ends before the line break that precedes the next
// boundary line (RFC 2046 5.1.1: that line break belongs to the boundary).
// It reads line by line, so memory stays bounded whatever the message.
// The spans are what a plain reading of the structure finds; callers that
// need certainty check a decoded span against Attachment.SHA256 (the
// parser is more lenient with broken mail than this scanner).
func PartSpans(r io.Reader) (map[string]Span, error) {
	type frame struct {
		boundary string
		path     string
		n        int
	}
	var (
		br, pooled = getReader(r, 64<<10)
		spans      = map[string]Span{}
		stack      []frame
		pos        int64
		lastEOL    int64
		atStart    = true
		inHeader   = true
		header     []byte
		path       string
		inBody     bool
		bodyStart  int64
		encoding   string
	)
	defer putReader(br, pooled)
	endBody := func(end int64) {
		if inBody {
			spans[path] = Span{Offset: bodyStart, Length: max(0, end-bodyStart), Encoding: encoding}
			inBody = false
		}
	}
	for {
		line, err := br.ReadSlice('\n')
		start := atStart
		atStart = err != bufio.ErrBufferFull
		lineStart := pos
		pos += int64(len(line))
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				endBody(pos)
				return spans, nil
			}
			return nil, err
		}
		if start && atStart {
			if i, closing := matchBoundary(line, func(i int) string { return stack[len(stack)-1-i].boundary }, len(stack)); i >= 0 {
				endBody(lineStart - lastEOL)
				stack = stack[:len(stack)-i]
				inHeader = false
				if closing {
					stack = stack[:len(stack)-1]
				} else {
					f := &stack[len(stack)-1]
					f.n++
					path, inHeader, header = childPath(f.path, f.n), true, header[:0]
				}
				lastEOL = eolLen(line)
				continue
			}
		}
		if inHeader {
			if len(header) < maxSpanHeader {
				header = append(header, line[:min(len(line), maxSpanHeader-len(header))]...)
			}
			if start && atStart && len(bytes.TrimRight(line, "\r\n")) == 0 {
				inHeader = false
				hr, hpooled := getReader(bytes.NewReader(header), 4<<10)
				h, _ := textproto.ReadHeader(hr)
				putReader(hr, hpooled)
				mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
				if b := params["boundary"]; strings.HasPrefix(mt, "multipart/") && b != "" {
					stack = append(stack, frame{boundary: b, path: path})
				} else {
					inBody, bodyStart = true, pos
					encoding = strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
				}
			}
		}
		if atStart {
			lastEOL = eolLen(line)
		}
		if err == io.EOF {
			endBody(pos)
			return spans, nil
		}
		if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
	}
}

// matchBoundary reports which enclosing boundary (0 the innermost, of n)
// a line is a delimiter of, and whether it closes its multipart
// (RFC 2046 5.1.1: "--" boundary, then "--" for the last, then blanks).
func matchBoundary(line []byte, boundary func(i int) string, n int) (int, bool) {
	if n == 0 || len(line) < 3 || line[0] != '-' || line[1] != '-' {
		return -1, false
	}
	rest := line[2:]
	for i := 0; i < n; i++ {
		b := boundary(i)
		if !bytes.HasPrefix(rest, []byte(b)) {
			continue
		}
		tail := rest[len(b):]
		closing := bytes.HasPrefix(tail, []byte("--"))
		if closing {
			tail = tail[2:]
		}
		if len(bytes.TrimRight(tail, " \t\r\n")) == 0 {
			return i, closing
		}
	}
	return -1, false
}

func eolLen(line []byte) int64 {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(line, []byte("\n")):
		return 1
	}
	return 0
}

// DecodeTransfer decodes a part's body read from its Span, as Parse does
// (RFC 2045 6: base64 and quoted-printable, leniently; anything else as
// is).
func DecodeTransfer(encoding string, r io.Reader) io.Reader {
	dec, _ := transferDecoder(encoding, r, func(string) {})
	return dec
}
