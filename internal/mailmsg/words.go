package mailmsg

import (
	"io"
	"regexp"
	"strings"
)

// encodedWord matches one RFC 2047 encoded-word (section 2), a little more
// loosely than the grammar: any charset token, B or Q in either case, and an
// encoded text that may be empty or carry spaces (some senders fold inside
// a word).
var encodedWord = regexp.MustCompile(`=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*)\?=`)

// decodeWordsLenient decodes every encoded-word of v as well as it can, for
// the values mime.WordDecoder refuses: base64 with bad padding or stray
// characters, Q text with broken escapes, and charsets nobody knows (read as
// UTF-8 or windows-1252, as Python's email package does with "unknown-8bit").
// Linear white space between two adjacent encoded-words is dropped (RFC
// 2047 section 6.2); everything else is kept as written.
func decodeWordsLenient(v string, problem func(string)) string {
	var b strings.Builder
	last := 0
	prevWord := false
	for _, m := range encodedWord.FindAllStringSubmatchIndex(v, -1) {
		between := v[last:m[0]]
		if !(prevWord && strings.TrimSpace(between) == "") {
			b.WriteString(between)
		}
		charset, enc, text := v[m[2]:m[3]], v[m[4]:m[5]], v[m[6]:m[7]]
		if i := strings.IndexByte(charset, '*'); i >= 0 {
			charset = charset[:i] // RFC 2231 section 5: charset*language
		}
		var raw []byte
		if enc == "b" || enc == "B" {
			raw, _ = io.ReadAll(newBase64Reader(strings.NewReader(text)))
		} else {
			raw = decodeQ(text)
		}
		b.WriteString(decodeText(raw, charset, problem))
		last, prevWord = m[1], true
	}
	b.WriteString(v[last:])
	return b.String()
}

// decodeQ decodes the Q encoding (RFC 2047 section 4.2): "_" is a space,
// "=XX" a byte, and a "=" not followed by two hex digits is kept.
func decodeQ(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			out = append(out, ' ')
		case c == '=' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return out
}

// stripComments removes RFC 5322 comments (section 3.2.2: parenthesized,
// nestable, with quoted-pairs) outside quoted strings, for addresses that
// carry comments where the strict parser does not accept them, as in
// "Pete(A wonderful \) chap) <pete(his account)@silly.test(his host)>".
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
		case quoted:
			b.WriteByte(c)
			if c == '"' {
				quoted = false
			}
		case c == '(':
			if depth == 0 {
				b.WriteByte(' ')
			}
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '"':
			quoted = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	// Comments leave spaces around "<", "@" and ">" that an addr-spec
	// cannot have.
	out := b.String()
	if i := strings.LastIndexByte(out, '<'); i >= 0 {
		if j := strings.IndexByte(out[i:], '>'); j > 0 {
			out = out[:i+1] + strings.Join(strings.Fields(out[i+1:i+j]), "") + out[i+j:]
		}
	}
	return strings.TrimSpace(out)
}

// stripBidiControls removes the bidirectional embedding, override and
// isolate controls (U+202A-U+202E, U+2066-U+2069): in a subject they
// reorder what agents read ("Invoice \u202eFDP.exe" shows as "Invoice
// exe.PDF"). The marks (U+200E, U+200F) that right-to-left text needs stay.
func stripBidiControls(s string) string {
	if !strings.ContainsFunc(s, isBidiControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBidiControl(r) {
			return -1
		}
		return r
	}, s)
}

func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}
