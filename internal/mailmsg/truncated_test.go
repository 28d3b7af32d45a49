package mailmsg

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestTruncatedForwardsParse cuts forwards with an attached original at
// every byte: Parse and ParseForwards never fail, the forwarder's own text
// is kept once it was read, and a cut before the closing boundary is a
// Problem on the message.
func TestTruncatedForwardsParse(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"attached_en_rfc822.eml", "attached_en_eml.eml"} {
		raw, err := os.ReadFile("testdata/forward/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(raw)
		ct := strings.Index(s, "Content-Type: text/plain")
		outerText := ct + strings.Index(s[ct:], "\n\n") + 2
		lastBoundary := strings.LastIndex(s, "\n--") + 1
		for n := 0; n < len(s); n++ {
			cut := raw[:n]
			msg, _, err := ParseForwards(bytes.NewReader(cut), ParseOptions{Attachment: func(a *Attachment, r io.Reader) error {
				_, err := io.Copy(io.Discard, r)
				return err
			}})
			if err != nil {
				t.Fatalf("%s cut at %d: %v", name, n, err)
			}
			for _, p := range msg.Problems {
				if strings.HasPrefix(p, "panic") {
					t.Fatalf("%s cut at %d: %s", name, n, p)
				}
			}
			if n > outerText+20 && !strings.Contains(msg.Text, s[outerText:outerText+20]) {
				t.Errorf("%s cut at %d: text %q lost the forwarder's words", name, n, msg.Text)
			}
			if n > outerText && n < lastBoundary && !hasProblem(msg, "cut off before its end") {
				t.Errorf("%s cut at %d: no problem recorded: %q", name, n, msg.Problems)
			}
		}
	}
}

// TestTruncatedForwardDepths checks what is kept at the depths the issue
// names: the forwarded original is still found with what was read of it,
// and a cut-off attachment is kept with its bytes and named in a Problem.
func TestTruncatedForwardDepths(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/forward/attached_en_rfc822.eml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, tc := range []struct {
		name, after string
		origText    string // what the original's text must contain ("" none)
		origAtts    int
	}{
		{"inside the inner body", "our printer P-200", "Hello,", 0},
		{"between inner parts", "Ann\n\n--inner-b1\n", "since this morning", 0},
		{"mid-header of an inner part", "Content-Disposition: attachment; file", "since this morning", 1},
		{"inside an inner attachment", "JVBERi0xLjQg", "since this morning", 1},
		{"after the inner closing boundary", "--inner-b1--\n", "since this morning", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := strings.Index(s, tc.after)
			if i < 0 {
				t.Fatalf("fixture lacks %q", tc.after)
			}
			cut := s[:i+len(tc.after)]
			msg, fwds, err := ParseForwards(strings.NewReader(cut), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(msg.Text, "Forwarding as attachment") {
				t.Errorf("text %q", msg.Text)
			}
			if !hasProblem(msg, "cut off before its end") {
				t.Errorf("problems %q", msg.Problems)
			}
			if len(msg.Attachments) != 1 || msg.Attachments[0].Filename != "Printer broken.eml" || msg.Attachments[0].Size == 0 {
				t.Fatalf("attachments %+v", msg.Attachments)
			}
			if !hasProblem(msg, `attachment "Printer broken.eml" was cut off`) {
				t.Errorf("problems %q", msg.Problems)
			}
			if len(fwds) != 1 {
				t.Fatalf("forwards %+v", fwds)
			}
			f := fwds[0]
			if f.From.Address != "ann.example@customer.example" || f.Subject != "Printer broken" || f.MessageID != "original-4711@customer.example" {
				t.Errorf("original %+v", f)
			}
			if !strings.Contains(f.Text, tc.origText) {
				t.Errorf("original text %q, want %q in it", f.Text, tc.origText)
			}
			if len(f.Attachments) != tc.origAtts {
				t.Errorf("original attachments %+v, want %d", f.Attachments, tc.origAtts)
			}
		})
	}
}

func hasProblem(m *Message, sub string) bool {
	for _, p := range m.Problems {
		if strings.Contains(p, sub) {
			return true
		}
	}
	return false
}

// TestPythonAgreement holds the two edge cases where Parse disagreed with
// Python's email package on test messages of Ruby's mail and MimeKit.
func TestPythonAgreement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header, subject, from, name string
	}{
		{"Subject: =?NONE?B?VEVTVA=?=\r\nFrom: a@x.test\r\n", "TEST", "a@x.test", ""},
		{"Subject: =?utf-8?B?w6l0w6k=?= =?NONE?Q?x=3Fy?=\r\nFrom: a@x.test\r\n", "étéx?y", "a@x.test", ""},
		{"Subject: x\r\nFrom: Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>\r\n", "x", "pete@silly.test", "Pete"},
		{"Subject: x\r\nFrom: (lead) \"Ann (not a comment)\" <ann@x.test> (trail)\r\n", "x", "ann@x.test", "Ann (not a comment)"},
	} {
		m, err := Parse(strings.NewReader(tc.header+"\r\nbody\r\n"), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != tc.subject {
			t.Errorf("%q: subject %q, want %q", tc.header, m.Subject, tc.subject)
		}
		if len(m.From) != 1 || m.From[0].Address != tc.from || m.From[0].Name != tc.name {
			t.Errorf("%q: from %+v, want %q %q", tc.header, m.From, tc.name, tc.from)
		}
	}
}

func TestLongMessageIDKept(t *testing.T) {
	t.Parallel()
	id := strings.Repeat("a", 6000) + "@long.test"
	raw := "Message-ID: <" + id + ">\r\nIn-Reply-To: <" + id + "x>\r\nReferences: <r1@x> <" + id + "y>\r\nSubject: s\r\n\r\nbody\r\n"
	m, err := Parse(strings.NewReader(raw), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != id || len(m.InReplyTo) != 1 || m.InReplyTo[0] != id+"x" || len(m.References) != 2 || m.References[1] != id+"y" {
		t.Errorf("ids: %d %v %d", len(m.MessageID), len(m.InReplyTo), len(m.References))
	}
	raw = "Message-ID: <" + strings.Repeat("b", maxMsgIDBytes+1) + "@x>\r\n\r\nbody\r\n"
	if m, _ := Parse(strings.NewReader(raw), ParseOptions{}); m.MessageID != "" {
		t.Errorf("an id over %d bytes kept (%d bytes)", maxMsgIDBytes, len(m.MessageID))
	}
}
