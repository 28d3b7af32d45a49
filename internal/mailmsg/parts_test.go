package mailmsg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkSpans decodes every attachment's span and compares it with what
// Parse hashed; it returns how many attachments had a matching span.
func checkSpans(t *testing.T, raw []byte) (matched, total int) {
	t.Helper()
	msg, err := Parse(bytes.NewReader(raw), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spans, err := PartSpans(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range msg.Attachments {
		total++
		sp, ok := spans[a.Part]
		if !ok || sp.Offset+sp.Length > int64(len(raw)) {
			continue
		}
		h := sha256.New()
		n, _ := io.Copy(h, DecodeTransfer(sp.Encoding, bytes.NewReader(raw[sp.Offset:sp.Offset+sp.Length])))
		decoded := n == a.Size && hex.EncodeToString(h.Sum(nil)) == a.SHA256
		known, holds, err := sp.Holds(bytes.NewReader(raw), &a)
		switch {
		case err != nil:
			t.Fatal(err)
		case known && holds && !decoded:
			t.Errorf("part %q: Holds says the span %+v is the attachment, and it decodes to other content", a.Part, sp)
		case decoded && !(known && holds):
			// The cheap check must serve the common case, or it saves
			// nothing.
			t.Errorf("part %q: the span %+v decodes to the attachment, and Holds says known=%v holds=%v", a.Part, sp, known, holds)
		}
		if decoded {
			matched++
		}
		if known && holds && sp.Length > 0 {
			// One byte off either way is not the attachment.
			for _, off := range []Span{{sp.Offset + 1, sp.Length, sp.Encoding}, {sp.Offset, sp.Length - 1, sp.Encoding}, {sp.Offset, sp.Length, "x-other"}} {
				if _, holds, _ := off.Holds(bytes.NewReader(raw), &a); holds {
					t.Errorf("part %q: Holds accepts the span %+v, the right one being %+v", a.Part, off, sp)
				}
			}
		}
	}
	return matched, total
}

// Every attachment of the well-formed fixtures is found where PartSpans
// says, so it can be served from the raw message instead of a copy.
func TestPartSpansFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	sawAttachments := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		matched, total := checkSpans(t, raw)
		sawAttachments += total
		if matched != total && !strings.Contains(f, "broken") {
			t.Errorf("%s: %d of %d attachments found at their span", f, matched, total)
		}
	}
	if sawAttachments == 0 {
		t.Fatal("the fixtures have no attachments")
	}
}

func TestPartSpansShapes(t *testing.T) {
	for name, raw := range map[string]string{
		"nested, LF endings": "Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b--\n\n--a\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0x\nLjQK\n--a--\n",
		"quoted-printable":   "Content-Type: multipart/mixed; boundary=\"x y\"\r\n\r\npreamble\r\n--x y\r\nContent-Type: text/plain\r\n\r\nbody\r\n--x y\r\nContent-Type: text/csv; name=a.csv\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db,c=\r\nd\r\n\r\n--x y--  \r\nepilogue\r\n",
		"single part":        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n",
	} {
		matched, total := checkSpans(t, []byte(raw))
		if total == 0 || matched != total {
			t.Errorf("%s: %d of %d attachments found at their span", name, matched, total)
		}
	}
}

// FuzzPartSpans holds that any input yields spans inside the message, in
// bounded memory, without a panic.
func FuzzPartSpans(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n--a--\r\n--a\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		spans, err := PartSpans(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err) // a bytes.Reader does not fail
		}
		for path, sp := range spans {
			if sp.Offset < 0 || sp.Length < 0 || sp.Offset+sp.Length > int64(len(raw)) {
				t.Fatalf("part %q: span %+v outside %d bytes", path, sp, len(raw))
			}
		}
		// Holds never takes a span for an attachment it does not decode to.
		msg, err := Parse(bytes.NewReader(raw), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range msg.Attachments {
			sp, ok := spans[a.Part]
			if !ok {
				continue
			}
			if _, holds, _ := sp.Holds(bytes.NewReader(raw), &a); holds {
				h := sha256.New()
				n, _ := io.Copy(h, DecodeTransfer(sp.Encoding, bytes.NewReader(raw[sp.Offset:sp.Offset+sp.Length])))
				if n != a.Size || hex.EncodeToString(h.Sum(nil)) != a.SHA256 {
					t.Fatalf("part %q: Holds takes span %+v, which decodes to other content", a.Part, sp)
				}
			}
		}
	})
}
