package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// A 50 MB attachment is streamed: to the raw blob, then parsed from it to
// its own blob, never held whole in memory.
func TestFiftyMegabyteAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("large message")
	}
	db := storetest.Open(t, "sqlite")
	mb := newMailbox(t, db, "support@example.com")
	in := ingest.New(db, ingest.Options{})
	const size = 50 << 20
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, "From: Big Sender <big@customer.example>\r\nTo: support@example.com\r\nSubject: huge log\r\n"+
			"Message-ID: <huge@customer.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
			"--b\r\nContent-Type: text/plain\r\n\r\nLog attached.\r\n--b\r\nContent-Type: application/octet-stream\r\n"+
			"Content-Disposition: attachment; filename=\"app.log\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		enc := base64.NewEncoder(base64.StdEncoding, &lineWriter{w: pw})
		chunk := make([]byte, 57*1024)
		for written := 0; written < size; written += len(chunk) {
			for i := range chunk {
				chunk[i] = byte(written + i*7)
			}
			want.Write(chunk)
			enc.Write(chunk)
		}
		enc.Close()
		fmt.Fprint(pw, "\r\n--b--\r\n")
		pw.Close()
	}()
	// The heap is measured when the ingest ends, without a collection, so
	// garbage counts too: a collector that runs often keeps garbage small
	// (at GOGC=100 it may double the heap first, which made a run with
	// the race detector measure 33 MB), while a message held whole (67 MB,
	// live) would still show.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := in.Ingest(context.Background(), mb, pr)
	runtime.ReadMemStats(&after)
	if err != nil || res.Outcome != ingest.NewTicket {
		t.Fatalf("%+v %v", res, err)
	}
	msgs, err := db.TicketMessages(context.Background(), res.TicketID)
	if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 1 {
		t.Fatalf("messages: %+v %v", msgs, err)
	}
	a := msgs[0].Attachments[0]
	wantSum := hex.EncodeToString(want.Sum(nil))
	if a.SHA256 != wantSum || msgs[0].TextBody != "Log attached." {
		t.Fatalf("attachment sha %s (want %s), text %q", a.SHA256, wantSum, msgs[0].TextBody)
	}
	// The heap did not grow by anything like the message's size.
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	if grew > 20<<20 {
		t.Errorf("heap grew by %d MB while ingesting a 67 MB message", grew>>20)
	}
	t.Logf("heap grew by %.1f MB", float64(grew)/(1<<20))
}

// lineWriter breaks base64 output into 76-character lines.
type lineWriter struct {
	w   io.Writer
	col int
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := 76 - l.col
		if room > len(p) {
			room = len(p)
		}
		if _, err := l.w.Write(p[:room]); err != nil {
			return 0, err
		}
		l.col += room
		p = p[room:]
		if l.col == 76 {
			if _, err := l.w.Write([]byte("\r\n")); err != nil {
				return 0, err
			}
			l.col = 0
		}
	}
	return n, nil
}
