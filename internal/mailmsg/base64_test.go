package mailmsg

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// refBase64 is the byte-at-a-time decoder base64Reader replaced: the
// reference its output and its count of skipped bytes must match.
func refBase64(in []byte) (out []byte, bad int) {
	r := bufio.NewReader(bytes.NewReader(in))
	var acc uint32
	n := 0
	flush := func() {
		switch n {
		case 2:
			out = append(out, byte(acc>>4))
		case 3:
			out = append(out, byte(acc>>10), byte(acc>>2))
		case 1:
			bad++
		}
		n, acc = 0, 0
	}
	for {
		c, err := r.ReadByte()
		if err != nil {
			flush()
			return out, bad
		}
		v := b64val[c]
		if v == 0xff {
			switch c {
			case '=':
				flush()
			case ' ', '\t', '\r', '\n':
			default:
				bad++
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			out = append(out, byte(acc>>16), byte(acc>>8), byte(acc))
			n, acc = 0, 0
		}
	}
}

// readAllIn reads r with reads of at most chunk bytes (1, 2: shorter than
// a quantum's output).
func readAllIn(t *testing.T, r io.Reader, chunk int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func checkBase64(t *testing.T, in []byte) {
	want, wantBad := refBase64(in)
	for _, chunk := range []int{1, 2, 3, 5, 4096, 64 << 10} {
		for _, src := range []struct {
			name string
			r    io.Reader
		}{{"whole", bytes.NewReader(in)}, {"byte at a time", iotest.OneByteReader(bytes.NewReader(in))}, {"data with EOF", iotest.DataErrReader(bytes.NewReader(in))}} {
			d := newBase64Reader(src.r)
			got := readAllIn(t, d, chunk)
			if !bytes.Equal(got, want) || d.bad != wantBad {
				t.Fatalf("%q, %s, reads of %d: got %q (%d skipped), want %q (%d)", in, src.name, chunk, got, d.bad, want, wantBad)
			}
		}
	}
}

func TestBase64Reader(t *testing.T) {
	payload := bytes.Repeat([]byte("attachment bytes \x00\xff\x10"), 5000)
	enc := base64.StdEncoding.EncodeToString(payload)
	var wrapped strings.Builder
	for len(enc) > 76 {
		wrapped.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	wrapped.WriteString(enc)
	for _, in := range []string{
		"", "QQ==", "QUI=", "QUJD", "QUJDRA==", "Q", "QQ", "QUI", "QQ==QUI=", "QU JD\r\nRA =\n=", "Q!U#J$D", "-_-_", "====", "QUJD\n\n\n",
		wrapped.String(), wrapped.String()[:len(wrapped.String())-7],
	} {
		checkBase64(t, []byte(in))
	}
	if got, _ := refBase64([]byte(wrapped.String())); !bytes.Equal(got, payload) {
		t.Fatal("the reference does not decode standard base64")
	}
}

func FuzzBase64Reader(f *testing.F) {
	for _, s := range []string{"QUJDRA==", "QQ==QUI=", "Q!U\r\nJD", "QUJDRA=\n=QQ"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkBase64(t, in) })
}

// zeroReader returns nothing, and no error, for ever.
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// A source that keeps returning nothing fails with io.ErrNoProgress, as
// bufio does, instead of spinning.
func TestBase64ReaderNoProgress(t *testing.T) {
	_, err := io.ReadAll(newBase64Reader(zeroReader{}))
	if err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}
