//go:build ignore

// Command load is scripts/bench-sync's mail server: it starts a private
// Dovecot on 127.0.0.1 (internal/mailtest), loads a deterministic mailbox
// of realistic support mail into it with MULTIAPPEND, prints where it is,
// and keeps it running until its standard input closes or it is signalled.
//
//	go run scripts/benchsync/load.go -n 10000 -seed 1
//
// The mix: nine in ten messages are plain text or text + HTML of 2-20 KB
// with a realistic header block (Received, DKIM-Signature, ...), a third of
// them replies to earlier messages (they join tickets); one in ten carries
// an attachment (PDF, PNG, ZIP or DOCX) whose encoded size is log-uniform
// between about 13 KB and 1 MB. The same seed gives the same bytes.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/postdesk/postdesk/internal/mailtest"
)

func main() {
	n := flag.Int("n", 10000, "messages to load")
	seed := flag.Uint64("seed", 1, "generator seed (same seed, same mailbox)")
	user := flag.String("user", "bench@example.com", "mailbox (password user)")
	password := flag.String("password", "bench-password-1", "the user's password")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("load: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	s, err := mailtest.StartStack(ctx, mailtest.Options{PasswordUsers: map[string]string{*user: *password}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()

	g := newGenerator(*seed, *user)
	var total, attachments, biggest int
	var batch [][]byte
	size := 0
	for i := range *n {
		m, att := g.message(i)
		total += len(m)
		biggest = max(biggest, len(m))
		if att {
			attachments++
		}
		batch = append(batch, m)
		size += len(m)
		if len(batch) == 500 || size > 24<<20 || i == *n-1 {
			if err := s.Append(ctx, *user, *password, "INBOX", batch); err != nil {
				s.Stop()
				log.Fatal(err)
			}
			batch, size = batch[:0], 0
		}
	}
	log.Printf("loaded %d messages (%d with attachments), %.1f MB in all, largest %.2f MB, in %s",
		*n, attachments, float64(total)/1e6, float64(biggest)/1e6, time.Since(began).Round(time.Millisecond))
	// The script reads this line.
	fmt.Printf("imap=%s user=%s password=%s messages=%d bytes=%d\n", s.IMAPAddr, *user, *password, *n, total)
	os.Stdout.Sync()

	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	if err := s.Stop(); err != nil {
		log.Fatal(err)
	}
}

// generator makes the benchmark's messages from a seed.
type generator struct {
	rng  *rand.Rand
	rcpt string
	t0   time.Time
}

func newGenerator(seed uint64, rcpt string) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, 0x5eed)), rcpt: rcpt,
		t0: time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)}
}

var words = strings.Fields(`order invoice delivery refund account password login error package tracking
	please thanks hello regards urgent broken screen battery replace warranty subscription cancel renew
	payment card declined address shipping customer support question help update version install crash
	the a to and of for on in is it we you my your our this that with from have has been not yet still
	when where why how could would should can will today tomorrow yesterday week month number attached`)

func (g *generator) words(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			if i%14 == 0 {
				b.WriteString(".\r\n")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(words[g.rng.IntN(len(words))])
	}
	return b.String()
}

// text is about size bytes of prose in CRLF lines.
func (g *generator) text(size int) string {
	return g.words(max(size/6, 10)) + ".\r\n"
}

// message returns message i and whether it has an attachment.
func (g *generator) message(i int) ([]byte, bool) {
	r := g.rng
	customer := r.IntN(2000)
	date := g.t0.Add(time.Duration(i) * 3 * time.Minute)
	var b strings.Builder
	// A realistic header block: relays, authentication results, a signature.
	for hop := range 2 + r.IntN(3) {
		fmt.Fprintf(&b, "Received: from mx%d.customer%d.example (mx%d.customer%d.example [192.0.2.%d])\r\n"+
			"\tby mail.example.com with ESMTPS id %08x\r\n\tfor <%s>; %s\r\n",
			hop, customer, hop, customer, r.IntN(250)+1, r.Uint32(), g.rcpt, date.Format(time.RFC1123Z))
	}
	fmt.Fprintf(&b, "Authentication-Results: mail.example.com; spf=pass smtp.mailfrom=customer%d.example; dkim=pass header.d=customer%d.example\r\n", customer, customer)
	sig := make([]byte, 256)
	for j := range sig {
		sig[j] = byte(r.Uint32())
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=customer%d.example; s=s1;\r\n\th=from:to:subject:date:message-id; b=%s\r\n",
		customer, wrap(base64.StdEncoding.EncodeToString(sig), 70, "\r\n\t "))
	fmt.Fprintf(&b, "From: Customer %d <c%d@customer%d.example>\r\nTo: Support <%s>\r\n", customer, customer, customer, g.rcpt)
	subject := fmt.Sprintf("%s %s %d", words[r.IntN(len(words))], words[r.IntN(len(words))], i)
	if i > 10 && r.IntN(3) == 0 { // a reply to an earlier message
		parent := r.IntN(i)
		fmt.Fprintf(&b, "Subject: Re: earlier question %d\r\nIn-Reply-To: <bench-%d@customer.example>\r\nReferences: <bench-%d@customer.example>\r\n", parent, parent, parent)
	} else {
		fmt.Fprintf(&b, "Subject: %s\r\n", subject)
	}
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <bench-%d@customer.example>\r\nMIME-Version: 1.0\r\n", date.Format(time.RFC1123Z), i)

	bodySize := 2000 + r.IntN(18000) - b.Len()
	bodySize = max(bodySize, 600)
	withAttachment := r.IntN(10) == 0
	withHTML := r.IntN(2) == 0
	boundary := fmt.Sprintf("=_b%d_%x", i, r.Uint64())
	alt := "=_a" + boundary[3:]
	if withAttachment {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
	}
	if withHTML {
		fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", alt, alt)
		bodySize /= 2 // the HTML part is about as large as the text
	}
	text := g.text(bodySize)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s", text)
	if withHTML {
		html := "<html><body><div style=\"font-family: Calibri, sans-serif\"><p>" +
			strings.ReplaceAll(text, ".\r\n", ".</p>\r\n<p style=\"margin: 0 0 8px 0\">") + "</p></div></body></html>\r\n"
		fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s--%s--\r\n", alt, html, alt)
	}
	if withAttachment {
		kinds := []struct{ name, ctype string }{
			{"invoice.pdf", "application/pdf"}, {"screenshot.png", "image/png"},
			{"logs.zip", "application/zip"}, {"contract.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		}
		k := kinds[r.IntN(len(kinds))]
		// log-uniform 10 KB .. 750 KB of binary: 13 KB .. 1 MB encoded.
		n := int(math.Exp(math.Log(10e3) + r.Float64()*(math.Log(750e3)-math.Log(10e3))))
		data := make([]byte, n)
		for j := 0; j < n; j += 8 {
			v := r.Uint64()
			for k := 0; k < 8 && j+k < n; k++ {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n",
			boundary, k.ctype, k.name, k.name, wrap(base64.StdEncoding.EncodeToString(data), 76, "\r\n"), boundary)
	}
	return []byte(b.String()), withAttachment
}

// wrap breaks s into lines of width joined by sep.
func wrap(s string, width int, sep string) string {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width])
		b.WriteString(sep)
		s = s[width:]
	}
	b.WriteString(s)
	return b.String()
}
