package mailmsg

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ordinaryMail is an ordinary customer email of about size bytes, no
// forward in it: a text and an HTML alternative of the same long message
// with lists, "Label: value" lines, an address in a sentence and a link,
// the things the finder's cheap checks must pass over quickly.
func ordinaryMail(size int) []byte {
	var text, htm strings.Builder
	for i := 0; text.Len()+htm.Len() < size-1200; i++ {
		line := fmt.Sprintf("Item %d: the printer in room %d shows error E%02d after about %d pages; contact: facilities@customer.example.", i, 100+i, i%100, 20+i)
		text.WriteString(line + "\r\n")
		if i%5 == 4 {
			text.WriteString("\r\n")
		}
		htm.WriteString("<p>" + line + " <a href=\"https://customer.example/rooms/" + fmt.Sprint(100+i) + "\">room plan</a></p>\r\n")
	}
	return []byte("From: Ann Example <ann.example@customer.example>\r\nTo: support@postdesk.example\r\n" +
		"Subject: Printers on the second floor\r\nDate: Mon, 2 Nov 2026 10:13:58 +0100\r\nMessage-ID: <ordinary-1@customer.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text.String() +
		"--b\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<html><body>" + htm.String() + "</body></html>\r\n--b--\r\n")
}

// BenchmarkFindForwardsVsParse20KB searches an ordinary 20 KB email for
// forwards, and parses the same bytes, in one run: the search must cost
// less than the parse (issue 12). It reports both and their ratio.
func BenchmarkFindForwardsVsParse20KB(b *testing.B) {
	raw := ordinaryMail(20 << 10)
	m, err := Parse(bytes.NewReader(raw), ParseOptions{})
	if err != nil || FindForwards(m) != nil {
		b.Fatalf("ordinary mail: %v", err)
	}
	b.Run("find", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if FindForwards(m) != nil {
				b.Fatal("found a forward")
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Parse(bytes.NewReader(raw), ParseOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFindForwardsMix searches a mix of parsed messages: every forward
// fixture (all shapes and languages, and the negatives) and the ordinary
// mail fixtures.
func BenchmarkFindForwardsMix(b *testing.B) {
	files, _ := filepath.Glob("testdata/forward/*.eml")
	plain, _ := filepath.Glob("testdata/*.eml")
	var msgs []*Message
	var total int64
	found := 0
	for _, f := range append(files, plain...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		m, err := Parse(bytes.NewReader(raw), ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if FindForwards(m) != nil {
			found++
		}
		msgs = append(msgs, m)
		total += int64(len(m.Text) + len(m.HTML))
	}
	b.Logf("%d messages, %d with an inline forward, %d bytes of bodies", len(msgs), found, total)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			FindForwards(m)
		}
	}
}

func TestMayHoldForward(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"From: Ann <a@x.example>":                              true,
		"text\n> *From:* Ann":                                  true,
		"<p><b>De&nbsp;:</b> Claire":                           true,
		"<b>&#1054;&#1090;:</b> Ольга":                         true, // an entity: maybe a label
		"----- Forwarded Message ----- From: Ann <a@x>To: b@x": true,
		"差出人：山田":                                               true,
		"<div><strong>From</strong>: Ann":                      true,
		"<p><b><span>Von</span></b>: Jürgen":                   true,
		"    Lähettäjä: Mikko":                                 true,
		"----- Forwarded message from Ann <a@x.example> -----": true,
		"Meeting at 10:13, see https://x.example/a:b":          false,
		"Item 12: broken\nNote: call me\nTo: Bob":              false, // labels, but no From
		"Please reply to the address below, from: the office":  false,
	} {
		if got := mayHoldForward(s); got != want {
			t.Errorf("mayHoldForward(%q) = %v, want %v", s, got, want)
		}
	}
}
