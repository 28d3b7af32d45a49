package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// mixMessage builds message i of a realistic mix: most are 2-20 KB
// multipart/alternative mail, a third reply to an earlier message, and one
// in ten carries an attachment of up to 1 MB.
func mixMessage(rng *rand.Rand, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Customer %d <customer%d@example.net>\r\nTo: support@example.com\r\n", i%300, i%300)
	fmt.Fprintf(&b, "Subject: Question number %d about my order\r\nDate: %s\r\nMessage-ID: <bench-%d@example.net>\r\n",
		i, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), i)
	if i > 10 && i%3 == 0 {
		fmt.Fprintf(&b, "In-Reply-To: <bench-%d@example.net>\r\n", i-rng.IntN(10)-1)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n")
	b.WriteString("Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	words := 300 + rng.IntN(2700) // about 2-20 KB across both bodies
	var text strings.Builder
	for w := range words {
		text.WriteString([]string{"order", "delivery", "refund", "thanks", "please", "invoice", "broken", "account"}[w%8])
		if w%12 == 11 {
			text.WriteString(".\r\n")
		} else {
			text.WriteByte(' ')
		}
	}
	b.WriteString(text.String())
	b.WriteString("\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>")
	b.WriteString(strings.ReplaceAll(text.String(), ".\r\n", ".</p><p>"))
	b.WriteString("</p></body></html>\r\n--alt--\r\n")
	if i%10 == 0 {
		size := 10<<10 + rng.IntN(1<<20-10<<10)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		b.WriteString("--outer\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.StdEncoding.EncodeToString(data)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n")
	}
	b.WriteString("--outer--\r\n")
	return b.Bytes()
}

// BenchmarkIngest measures ingest throughput (messages per second) and
// allocations for a realistic mix, on SQLite and PostgreSQL.
func BenchmarkIngest(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect)
			mb := newMailboxB(b, db)
			in := ingest.New(db, ingest.Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			msgs := make([][]byte, 200)
			var total int64
			for i := range msgs {
				msgs[i] = mixMessage(rng, i)
				total += int64(len(msgs[i]))
			}
			b.SetBytes(total / int64(len(msgs)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Vary the Message-ID so every iteration is a new message.
				raw := bytes.Replace(msgs[i%len(msgs)], []byte("Message-ID: <bench-"), []byte(fmt.Sprintf("Message-ID: <r%d-bench-", i)), 1)
				if _, err := in.Ingest(context.Background(), mb, bytes.NewReader(raw)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkApplyBatch measures the database writer's part of mail sync,
// the part that runs on one connection: batches of 64 parsed messages of
// the realistic mix, each applied and committed in one transaction, as
// mailsync commits them. Storing and parsing (which run beside the writer)
// are not timed. Compare commits with -benchtime=40x -count N: each run
// writes the same messages into a fresh database.
func BenchmarkApplyBatch(b *testing.B) {
	for _, dialect := range storetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, dialect)
			mb := newMailboxB(b, db)
			in := ingest.New(db, ingest.Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			const batch = 64
			n := 0
			for b.Loop() {
				b.StopTimer()
				stored := make([]ingest.Stored, batch)
				prepared := make([]*ingest.Prepared, batch)
				for j := range batch {
					s, err := in.Store(bytes.NewReader(mixMessage(rng, n)))
					if err != nil {
						b.Fatal(err)
					}
					n++
					if prepared[j], err = in.Parse(ctx, s); err != nil {
						b.Fatal(err)
					}
					stored[j] = s
				}
				if err := db.Blobs().Sync(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				err := db.Write(ctx, func(tx *store.Tx) error {
					_, err := in.ApplyBatch(ctx, tx, mb, prepared)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for j := range batch {
					in.Release(stored[j], prepared[j])
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
