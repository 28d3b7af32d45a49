package mailmsg

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkParse parses every fixture once per iteration.
func BenchmarkParse(b *testing.B) {
	files := addFixturesB(b)
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			if _, err := Parse(bytes.NewReader(f), ParseOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParseLargeAttachment parses a message with a 50 MB attachment
// streamed through a pipe.
func BenchmarkParseLargeAttachment(b *testing.B) {
	const size = 50 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		pr, sum := largeMessage(size)
		m, err := Parse(pr, ParseOptions{Attachment: func(_ *Attachment, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		}})
		if err != nil || len(m.Attachments) != 1 || m.Attachments[0].SHA256 != <-sum {
			b.Fatalf("parse: %v %+v", err, m)
		}
	}
}

// BenchmarkSanitizeHTML sanitizes the HTML bodies of the fixtures.
func BenchmarkSanitizeHTML(b *testing.B) {
	var bodies []string
	var total int64
	for _, f := range addFixturesB(b) {
		if m, err := Parse(bytes.NewReader(f), ParseOptions{}); err == nil && m.HTML != "" {
			bodies = append(bodies, m.HTML)
			total += int64(len(m.HTML))
		}
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range bodies {
			SanitizeHTML(h, SanitizeOptions{})
		}
	}
}
