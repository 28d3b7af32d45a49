package mailmsg

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"
	htmlcharset "golang.org/x/net/html/charset"
)

// walk reads one MIME entity (RFC 2045, RFC 2046) and its children. path is
// the IMAP-style part number ("" for the top level, "1.2" ...), alt the id of
// the nearest enclosing multipart/alternative (0 if none).
func (p *parser) walk(h textproto.Header, body io.Reader, depth int, path string, alt int, parent string) {
	if p.stop {
		return
	}
	problem := p.problemAt(path)
	ct := h.Get("Content-Type")
	mt, params := p.parseParams(ct)
	if mt == "" || strings.Count(mt, "/") != 1 || strings.ContainsAny(mt, " \t") {
		if strings.TrimSpace(ct) != "" {
			problem("bad Content-Type " + quote(truncate(ct, 60)) + ", read as text/plain")
		}
		mt, params = "text/plain", map[string]string{"charset": params["charset"]}
		if parent == "multipart/digest" {
			mt = "message/rfc822"
		}
	}
	disp, dparams := p.parseParams(h.Get("Content-Disposition"))
	text := (mt == "text/plain" || mt == "text/html") && disp != "attachment" &&
		dparams["filename"] == "" && params["name"] == ""
	p.tap = nil
	if !strings.HasPrefix(mt, "multipart/") && !text {
		// An attachment: attach notes what its encoded body was, so
		// the caller can find it in the raw message (Span.Holds).
		p.tap = &bodyTap{r: body, encoding: strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))}
		p.tap.h.SetSeed(bodySeed)
		body = p.tap
	}
	dec, bad := transferDecoder(h.Get("Content-Transfer-Encoding"), body, problem)
	defer func() {
		if n := bad(); n > 0 {
			problem(fmt.Sprintf("broken base64: %d invalid characters skipped", n))
		}
	}()

	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= maxDepth {
			problem("MIME nesting too deep, kept as attachment")
			p.attach(h, mt, params, disp, dparams, dec, "", path)
			return
		}
		p.multipart(mt, params, dec, depth, path, alt)
	case mt == "message/rfc822" || mt == "message/global" || mt == "text/rfc822-headers" || mt == "message/global-headers":
		p.enclosed(h, mt, params, disp, dparams, dec, path)
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		br := bufio.NewReaderSize(dec, maxDSNBytes)
		head, _ := br.Peek(maxDSNBytes)
		if p.bounced == nil {
			p.bounced = deliveryStatus(bytes.NewReader(head))
		}
		p.attach(h, mt, params, disp, dparams, br, "", path)
	case text:
		p.textPart(mt, params, dec, alt, path)
	default:
		p.attach(h, mt, params, disp, dparams, dec, "", path)
	}
}

// multipart walks the parts of a multipart entity (RFC 2046 5.1).
func (p *parser) multipart(mt string, params map[string]string, body io.Reader, depth int, path string, alt int) {
	problem := p.problemAt(path)
	boundary := params["boundary"]
	br, pooled := getReader(body, 8<<10)
	defer putReader(br, pooled)
	if boundary == "" {
		boundary = sniffBoundary(br)
		if boundary == "" {
			problem(mt + " without boundary, read as text")
			p.textPart("text/plain", nil, br, alt, path)
			return
		}
		problem(mt + " without boundary parameter, guessed " + quote(boundary))
	}
	switch mt {
	case "multipart/alternative":
		p.altSeq++
		alt = p.altSeq
	case "multipart/related":
	default:
		alt = 0
	}
	if mt == "multipart/report" && depth == 0 {
		p.reportType = strings.ToLower(strings.TrimSpace(params["report-type"]))
	}
	// Keep the start of the body until a part is found, in case the
	// boundary is never used (then the body is shown as text).
	rec := &prefixRecorder{max: int(min(p.opts.MaxBodyBytes, 1<<20))}
	defer rec.stop()
	src := &endReader{r: br}
	mr := textproto.NewMultipartReader(io.TeeReader(src, rec), boundary)
	n := 0
	for !p.stop {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case n == 0 || p.truncated:
			case src.ended:
				// The input ended inside a part's header or boundary line.
				p.readErr(io.ErrUnexpectedEOF, path)
			default:
				problem("broken MIME structure: " + err.Error())
			}
			break
		}
		rec.stop()
		n++
		p.nParts++
		if p.nParts > maxParts {
			problem("too many MIME parts, the rest is skipped")
			p.stop = true
			break
		}
		p.walk(part.Header, part, depth+1, childPath(path, n), alt, mt)
	}
	if n == 0 && !p.stop {
		problem(mt + " has no parts (boundary " + quote(boundary) + " not found), read as text")
		p.textPart("text/plain", nil, bytes.NewReader(rec.buf), alt, path)
	}
}

func childPath(path string, n int) string {
	if path == "" {
		return strconv.Itoa(n)
	}
	return path + "." + strconv.Itoa(n)
}

// sniffBoundary guesses the boundary of a multipart without one: the first
// line of the form "--token" in the first few KiB.
func sniffBoundary(br *bufio.Reader) string {
	head, _ := br.Peek(4096)
	for line := range strings.Lines(string(head)) {
		line = strings.TrimRight(line, "\r\n \t")
		if len(line) > 2 && len(line) < 72 && strings.HasPrefix(line, "--") && !strings.ContainsAny(line, " \t") {
			return strings.TrimSuffix(line[2:], "--")
		}
	}
	return ""
}

// endReader notes when its reader has no more data, so a multipart that
// breaks off there is told from one that is malformed.
type endReader struct {
	r     io.Reader
	ended bool
}

func (e *endReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.ended = true
	}
	return n, err
}

type prefixRecorder struct {
	buf     []byte
	max     int
	stopped bool
}

// prefixBuffers keeps the recorders' buffers: most multiparts find their
// first part after a few KB, and a buffer per multipart was a tenth of
// what parsing allocated.
var prefixBuffers sync.Pool

func (r *prefixRecorder) Write(b []byte) (int, error) {
	if !r.stopped && len(r.buf) < r.max {
		if r.buf == nil {
			if pb, _ := prefixBuffers.Get().(*[]byte); pb != nil {
				r.buf = *pb
			}
		}
		r.buf = append(r.buf, b[:min(len(b), r.max-len(r.buf))]...)
	}
	return len(b), nil
}

// stop ends the recording and gives the buffer back: what it held must not
// be used after.
func (r *prefixRecorder) stop() {
	if r.buf != nil && cap(r.buf) <= 64<<10 {
		b := r.buf[:0]
		prefixBuffers.Put(&b)
	}
	r.stopped, r.buf = true, nil
}

// readErr reports how a part's body ended, when not cleanly.
func (p *parser) readErr(err error, path string) {
	switch {
	case err == nil || err == io.EOF:
	case err == io.ErrUnexpectedEOF:
		if !p.truncated {
			p.truncated = true
			p.problemAt(path)("the message was cut off before its end (missing closing MIME boundary)")
		}
	default:
		p.problemAt(path)("read: " + err.Error())
	}
}

// textPart reads a text/plain or text/html body part, capped, into UTF-8.
func (p *parser) textPart(mt string, params map[string]string, r io.Reader, alt int, path string) {
	problem := p.problemAt(path)
	data, done, err := readText(r, p.opts.MaxBodyBytes+1)
	defer done()
	p.readErr(err, path)
	if int64(len(data)) > p.opts.MaxBodyBytes {
		data = data[:p.opts.MaxBodyBytes]
		_, err = io.Copy(io.Discard, r)
		p.readErr(err, path)
		if mt == "text/html" {
			p.html.truncated = true
		} else {
			p.text.truncated = true
		}
	}
	label := params["charset"]
	if label == "" && mt == "text/html" && !utf8.Valid(data) {
		if _, name, _ := htmlcharset.DetermineEncoding(data, "text/html"); name != "" {
			label = name
		}
	}
	// Line breaks are made LF in one pass ("\r\r\n" becomes "\r\n"):
	// for UTF-8 and what stands in for it, on the bytes before they are
	// copied into a string (the same bytes either way), not in a second
	// copy after.
	plain := utf8Label(label)
	if plain {
		data = crlfToLF(data)
	}
	s := decodeText(data, label, problem)
	s = strings.TrimPrefix(s, "\uFEFF")
	if !plain {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	if mt == "text/html" {
		p.html.add(s, alt, p.opts.MaxBodyBytes)
		return
	}
	if strings.EqualFold(params["format"], "flowed") {
		s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
	}
	p.text.add(s, alt, p.opts.MaxBodyBytes)
}

// enclosed handles message/rfc822 and text/rfc822-headers parts: kept as an
// attachment named from the enclosed Subject, and their Message-ID noted for
// bounces (RFC 3464 section 2).
func (p *parser) enclosed(h textproto.Header, mt string, params map[string]string, disp string, dparams map[string]string, r io.Reader, path string) {
	br, pooled := getReader(r, 64<<10)
	defer putReader(br, pooled)
	head, _ := br.Peek(64 << 10)
	sub := &parser{opts: p.opts, msg: &Message{}}
	hr, hpooled := getReader(bytes.NewReader(head), 4<<10)
	eh, _ := readHeader(hr, func(string) {})
	putReader(hr, hpooled)
	name := ""
	if ids := parseMsgIDs(eh.Get("Message-Id")); len(ids) > 0 && p.origID == "" {
		p.origID = ids[0]
	}
	if mt == "message/rfc822" || mt == "message/global" {
		name = sub.headerText(eh, "Subject")
		if name == "" {
			name = "message"
		}
		name += ".eml"
	}
	p.attach(h, mt, params, disp, dparams, br, name, path)
}

// attach streams a part to the attachment callback, computing its size and
// SHA-256 on the way.
func (p *parser) attach(h textproto.Header, mt string, params map[string]string, disp string, dparams map[string]string, r io.Reader, fallbackName, path string) {
	p.nAttach++
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name == "" {
		name = fallbackName
	}
	a := &Attachment{
		Filename:    sanitizeFilename(name, mt, p.nAttach),
		ContentType: mt,
		ContentID:   cleanMsgID(h.Get("Content-Id")),
		Part:        path,
	}
	a.Inline = disp == "inline" || (disp == "" && a.ContentID != "")
	tap := p.tap
	p.tap = nil
	hr := &hashReader{r: r, h: sha256.New()}
	if p.opts.Attachment != nil {
		if err := p.opts.Attachment(a, hr); err != nil {
			p.cbErr = fmt.Errorf("attachment %q: %w", a.Filename, err)
			p.stop = true
			return
		}
	}
	_, err := io.Copy(io.Discard, hr)
	p.readErr(hr.err, path)
	p.readErr(err, path)
	if hr.err == io.ErrUnexpectedEOF {
		p.problemAt(path)(fmt.Sprintf("attachment %s was cut off: the %d bytes read are kept", quote(a.Filename), hr.n))
	}
	a.Size = hr.n
	a.SHA256 = hex.EncodeToString(hr.h.Sum(nil))
	if tap != nil && hr.err == nil && err == nil {
		// The rest of the part's body (a decoder may stop before its
		// end), so that the whole is compared with the span.
		if _, err := io.Copy(io.Discard, tap); err == nil {
			a.body = bodyPrint{n: tap.n, sum: tap.h.Sum64(), encoding: tap.encoding, ok: true}
		}
	}
	p.msg.Attachments = append(p.msg.Attachments, *a)
}

// bodyTap hashes the encoded body of an attachment as the parser reads
// it (see bodyPrint).
type bodyTap struct {
	r        io.Reader
	h        maphash.Hash
	n        int64
	encoding string
}

func (t *bodyTap) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.h.Write(b[:n])
	t.n += int64(n)
	return n, err
}

// hashReader counts and hashes what is read through it and keeps the first
// error other than EOF, so a callback that swallows it does not hide it.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (hr *hashReader) Read(b []byte) (int, error) {
	n, err := hr.r.Read(b)
	hr.h.Write(b[:n])
	hr.n += int64(n)
	if err != nil && err != io.EOF {
		if hr.err == nil {
			hr.err = err
		}
		// The content ends here, at every later read too (a multipart
		// reader repeats its error); the problem is reported by Parse.
		err = io.EOF
	}
	return n, err
}
