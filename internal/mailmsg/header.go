package mailmsg

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode"

	"github.com/emersion/go-message/textproto"
)

// maxHeaderBytes bounds one header section; what is beyond it is dropped.
const maxHeaderBytes = 1 << 20

// readHeader reads a header section (RFC 5322 2.2) leniently and returns it
// with a reader for the body. It skips an mbox "From " line, stops at the
// blank line, and when a line is not a header field it ends the section
// there and gives that line to the body, so a message without headers is
// all body. Lines that look like fields with a broken name are dropped.
func readHeader(br *bufio.Reader, problem func(string)) (textproto.Header, io.Reader) {
	var buf bytes.Buffer
	var leftover []byte
	first := true
	for {
		line, err := readLine(br)
		if len(line) == 0 && err != nil {
			break
		}
		if first && bytes.HasPrefix(line, []byte("From ")) {
			first = false
			continue
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 {
			break // end of header section
		}
		if trimmed[0] == ' ' || trimmed[0] == '\t' {
			if buf.Len() == 0 {
				if first {
					leftover = line // body starting with whitespace
					break
				}
				continue
			}
		} else if !isFieldLine(trimmed) {
			if !first && bytes.IndexByte(trimmed, ':') > 0 {
				problem("malformed header line dropped: " + quote(truncate(string(trimmed), 60)))
				continue
			}
			if !first {
				problem("header section not ended by a blank line")
			}
			leftover = line
			break
		}
		first = false
		if buf.Len()+len(line) > maxHeaderBytes {
			problem("header section too large, truncated")
			continue
		}
		buf.Write(trimmed)
		buf.WriteString("\r\n")
		if err != nil {
			break
		}
	}
	buf.WriteString("\r\n")
	h, err := textproto.ReadHeader(bufio.NewReader(&buf))
	if err != nil {
		problem("header: " + err.Error())
	}
	var body io.Reader = br
	if leftover != nil {
		body = io.MultiReader(bytes.NewReader(leftover), br)
	}
	return h, body
}

// readLine reads one line including its terminator, without limit on
// length beyond maxHeaderBytes (the rest of a longer line is discarded).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxHeaderBytes {
			line = append(line, chunk...)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// isFieldLine reports whether line starts with a field name and a colon.
func isFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// headerText returns the decoded value of field k: raw 8-bit bytes are read
// as UTF-8 or windows-1252, and RFC 2047 encoded-words are decoded, unknown
// charsets and malformed words included, as well as they can be.
func (p *parser) headerText(h textproto.Header, k string) string {
	return p.decodeWords(h.Get(k))
}

func (p *parser) decodeWords(v string) string {
	v = fixUTF8(v)
	if !strings.Contains(v, "=?") {
		return strings.TrimSpace(v)
	}
	d := mime.WordDecoder{CharsetReader: headerCharsetReader(p.problem)}
	out, err := d.DecodeHeader(v)
	if err != nil {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(fixUTF8(out))
}

// parseMsgIDs extracts message ids (RFC 5322 3.6.4) leniently: every <...>
// group, or, when there is none, whitespace-separated tokens with an "@".
func parseMsgIDs(v string) []string {
	var ids []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if id := cleanMsgID(rest[i+1 : i+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+j+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || r == ',' }) {
		if strings.Contains(f, "@") {
			if id := cleanMsgID(f); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func cleanMsgID(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "<>")
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) > 998 {
		return ""
	}
	return s
}

// parseParams parses a Content-Type or Content-Disposition value: with
// mime.ParseMediaType (RFC 2045, RFC 2231) when it can, and otherwise with a
// tolerant splitter that accepts unquoted spaces, stray semicolons and
// encoded-words. The media type is lowercased; parameter names too.
func (p *parser) parseParams(v string) (string, map[string]string) {
	v = strings.TrimSpace(fixUTF8(v))
	if v == "" {
		return "", map[string]string{}
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || hasEncodedParam(v, params) {
		mt, params = tolerantParams(v)
	}
	for k, val := range params {
		if strings.Contains(val, "=?") {
			params[k] = p.decodeWords(val)
		}
	}
	return strings.ToLower(mt), params
}

// hasEncodedParam reports a RFC 2231 parameter in a charset that
// mime.ParseMediaType drops (it only decodes UTF-8 and US-ASCII).
func hasEncodedParam(v string, params map[string]string) bool {
	return strings.Contains(v, "*=") && params["filename"] == "" && params["name"] == ""
}

func tolerantParams(v string) (string, map[string]string) {
	params := map[string]string{}
	parts := splitParams(v)
	mt := strings.TrimSpace(parts[0])
	cont := map[string]map[int]string{}
	encoded := map[string]bool{}
	for _, part := range parts[1:] {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`), `\\`, `\`)
		}
		if strings.HasSuffix(k, "*") {
			k = strings.TrimSuffix(k, "*")
			encoded[k] = true
		}
		if base, num, ok := strings.Cut(k, "*"); ok {
			if n, err := strconv.Atoi(num); err == nil && n < 1000 {
				if cont[base] == nil {
					cont[base] = map[int]string{}
				}
				cont[base][n] = val
				continue
			}
		}
		if _, dup := params[k]; !dup {
			params[k] = val
		}
	}
	for base, segs := range cont {
		var b strings.Builder
		for i := 0; i < len(segs); i++ {
			b.WriteString(segs[i])
		}
		params[base] = b.String()
	}
	for k := range encoded {
		params[k] = decode2231(params[k])
	}
	return mt, params
}

// decode2231 decodes charset'lang'percent-encoded (RFC 2231 section 4).
func decode2231(v string) string {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return v
	}
	raw := make([]byte, 0, len(parts[2]))
	s := parts[2]
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			raw = append(raw, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		raw = append(raw, s[i])
	}
	return decodeText(raw, parts[0], func(string) {})
}

// splitParams splits on semicolons outside quoted strings.
func splitParams(v string) []string {
	var parts []string
	inQuote, start := false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				parts = append(parts, v[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, v[start:])
}

func quote(s string) string { return strconv.Quote(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(c byte) bool { return c&0xC0 != 0x80 }
