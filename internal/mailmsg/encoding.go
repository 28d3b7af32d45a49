package mailmsg

import (
	"bufio"
	"io"
	"strings"
)

// transferDecoder returns a reader that undoes the Content-Transfer-Encoding
// (RFC 2045 section 6) of r. Unknown encodings pass the bytes through and are
// reported; the base64 and quoted-printable decoders are lenient and never
// return a decoding error, only count what they had to skip.
func transferDecoder(cte string, r io.Reader, problem func(string)) (io.Reader, func() int) {
	none := func() int { return 0 }
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return r, none
	case "base64":
		d := newBase64Reader(r)
		return d, func() int { return d.bad }
	case "quoted-printable":
		d := &qpReader{r: bufio.NewReaderSize(r, 8<<10)}
		return d, none
	default:
		problem("unknown transfer encoding " + quote(cte) + ", used as is")
		return r, none
	}
}

var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	// base64url, which some broken senders use.
	t['-'], t['_'] = 62, 63
	return t
}()

// base64Reader decodes base64 (RFC 2045 6.8) skipping whitespace and any
// character outside the alphabet. Padding ends a quantum, so concatenated
// base64 blocks decode too; a dangling single character is dropped. It
// decodes a buffer of input at a time straight into the caller's slice
// (attachments are most of the bytes a mailbox holds).
type base64Reader struct {
	r    io.Reader
	in   []byte // input read and not yet decoded: buf[inI:inN]
	inI  int
	acc  uint32
	n    int // sextets in acc
	out  [3]byte
	outN int
	outI int
	bad  int // non-alphabet, non-whitespace bytes skipped
	err  error
	// empty counts reads in a row that returned nothing and no error.
	empty int
}

func newBase64Reader(r io.Reader) *base64Reader {
	return &base64Reader{r: r}
}

func (d *base64Reader) Read(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		if d.outI < d.outN {
			c := copy(p[written:], d.out[d.outI:d.outN])
			d.outI += c
			written += c
			continue
		}
		if d.inI == len(d.in) {
			if d.err != nil {
				break
			}
			if d.in == nil {
				d.in = make([]byte, 0, 8<<10)
			}
			n, err := d.r.Read(d.in[:cap(d.in)])
			d.in, d.inI = d.in[:n], 0
			if n == 0 && err == nil {
				// As bufio does: a reader that keeps returning nothing fails.
				if d.empty++; d.empty >= 100 {
					err = io.ErrNoProgress
				}
			} else {
				d.empty = 0
			}
			if err != nil {
				d.err = err
				if n == 0 {
					d.flush()
				}
			}
			continue
		}
		written += d.decode(p[written:])
		if d.inI == len(d.in) && d.err != nil {
			d.flush() // the input ended inside a quantum
		}
	}
	if written == 0 && d.err != nil {
		return 0, d.err
	}
	return written, nil
}

// decode decodes buffered input into p until either runs out or a quantum
// ends early (padding, or p too short for a whole one: then its bytes wait
// in out), and returns the bytes written to p.
func (d *base64Reader) decode(p []byte) int {
	w := 0
	in, i := d.in, d.inI
	acc, n := d.acc, d.n
	for i < len(in) {
		if n == 0 {
			// Whole quanta of four alphabet characters, the bulk of any
			// body, four at a time; anything else takes the loop below.
			for i+4 <= len(in) && len(p)-w >= 3 {
				a, b, c, e := b64val[in[i]], b64val[in[i+1]], b64val[in[i+2]], b64val[in[i+3]]
				if (a|b|c|e)&0xc0 != 0 {
					break // not all four in the alphabet (its values are below 64)
				}
				v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(e)
				p[w], p[w+1], p[w+2] = byte(v>>16), byte(v>>8), byte(v)
				w += 3
				i += 4
			}
			if i == len(in) {
				break
			}
		}
		c := in[i]
		i++
		v := b64val[c]
		if v == 0xff {
			switch c {
			case '=':
				d.acc, d.n, d.inI = acc, n, i
				d.flush()
				return w
			case ' ', '\t', '\r', '\n':
			default:
				d.bad++
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			if len(p)-w >= 3 {
				p[w], p[w+1], p[w+2] = byte(acc>>16), byte(acc>>8), byte(acc)
				w += 3
				acc, n = 0, 0
				continue
			}
			d.out = [3]byte{byte(acc >> 16), byte(acc >> 8), byte(acc)}
			d.outN, d.outI = 3, 0
			d.acc, d.n, d.inI = 0, 0, i
			return w
		}
	}
	d.acc, d.n, d.inI = acc, n, i
	return w
}

// flush emits the bytes of a partial quantum.
func (d *base64Reader) flush() {
	switch d.n {
	case 2:
		d.out[0] = byte(d.acc >> 4)
		d.outN, d.outI = 1, 0
	case 3:
		d.out[0], d.out[1] = byte(d.acc>>10), byte(d.acc>>2)
		d.outN, d.outI = 2, 0
	case 1:
		d.bad++
	}
	d.n, d.acc = 0, 0
}

// qpReader decodes quoted-printable (RFC 2045 6.7) leniently: "=XX" with
// hex digits (either case) is a byte, "=" before a line break is a soft
// break, any other "=" is kept literally, and trailing whitespace on a line
// is dropped (rule 3).
type qpReader struct {
	r    *bufio.Reader
	line []byte
	pos  int
	err  error
}

func (d *qpReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.pos < len(d.line) {
			c := copy(p[n:], d.line[d.pos:])
			d.pos += c
			n += c
			continue
		}
		if d.err != nil {
			break
		}
		d.fill()
	}
	if n == 0 && d.err != nil {
		return 0, d.err
	}
	return n, nil
}

// fill decodes the next line (or the next 64 KiB of a very long one).
func (d *qpReader) fill() {
	raw, err := d.r.ReadSlice('\n')
	full := err == nil
	if err == bufio.ErrBufferFull {
		err = nil
	}
	d.err = err
	eol := ""
	if full {
		raw = raw[:len(raw)-1]
		eol = "\n"
		if len(raw) > 0 && raw[len(raw)-1] == '\r' {
			raw = raw[:len(raw)-1]
			eol = "\r\n"
		}
		raw = trimRightSpace(raw)
	}
	out := d.line[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			out = append(out, unhex(raw[i+1])<<4|unhex(raw[i+2]))
			i += 2
			continue
		}
		if i == len(raw)-1 && full {
			eol = "" // soft line break
			continue
		}
		if i == len(raw)-1 && !full && d.err == nil {
			// "=" at a chunk edge of an overlong line: keep it for the next round.
			d.r.UnreadByte()
			break
		}
		out = append(out, c)
	}
	out = append(out, eol...)
	d.line, d.pos = out, 0
}

func trimRightSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
