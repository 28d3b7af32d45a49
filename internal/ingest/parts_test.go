package ingest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Attachments are kept once, as parts of the raw message, and read back
// decoded; one the span finder cannot place (a part cut off before its
// closing boundary) is stored as a blob of its own and reads back too. On
// PostgreSQL nothing stays in the spool once the messages are stored.
func TestAttachmentsKeptOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "support@example.com")
		in := ingest.New(db, ingest.Options{})
		cut := "From: a@customer.example\r\nSubject: cut\r\nMessage-ID: <cut@x>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\nsee file\r\n" +
			"--z\r\nContent-Type: image/png; name=p.png\r\n\r\n\x89PNG\r\nmore\r\n"
		qp := "From: b@customer.example\r\nSubject: qp\r\nMessage-ID: <qp@x>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"q q\"\r\n\r\n--q q\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
			"--q q\r\nContent-Type: text/csv; name=a.csv\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"a=3Db,c=\r\nd\r\n--q q--\r\n"
		// LF line ends but one CRLF line (a relay mixed them): the CR is
		// part of what the parser decoded and not of the span, and base64
		// skips it, so the span is still the attachment.
		mixed := "From: c@customer.example\nSubject: mixed\nMessage-ID: <mixed@x>\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/mixed; boundary=BB\n\n--BB\nContent-Type: text/plain\n\nhi\n" +
			"--BB\nContent-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\r\n--BB--\n"
		for _, c := range []struct {
			raw, content string
			inRaw        bool
		}{{qp, "a=b,cd", true}, {cut, "", false}, {mixed, "%PDF-1.4\n", true}} {
			res, err := in.Ingest(ctx, mb, strings.NewReader(c.raw))
			if err != nil {
				t.Fatal(err)
			}
			m, err := db.Message(ctx, res.MessageID)
			if err != nil || len(m.Attachments) != 1 {
				t.Fatalf("message = %+v, %v", m, err)
			}
			a := m.Attachments[0]
			if (a.Part.Blob == m.RawSHA256) != c.inRaw {
				t.Errorf("%s: part = %+v, want in the raw message: %v", m.Subject, a.Part, c.inRaw)
			}
			f, err := db.OpenAttachment(ctx, a)
			if err != nil {
				t.Fatalf("%s: %v", m.Subject, err)
			}
			got, err := io.ReadAll(f)
			f.Close()
			sum := sha256.Sum256(got)
			if err != nil || hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(got)) != a.Size {
				t.Errorf("%s: read %q (%v), not the attachment parsed", m.Subject, got, err)
			}
			if c.content != "" && string(got) != c.content {
				t.Errorf("%s: attachment = %q, want %q", m.Subject, got, c.content)
			}
			if c.inRaw {
				if own, err := db.Blobs().Open(ctx, a.SHA256); !errors.Is(err, store.ErrNotFound) {
					if err == nil {
						own.Close()
					}
					t.Errorf("%s: the decoded attachment was stored a second time", m.Subject)
				}
			}
		}
		if db.Blobs().InDatabase() {
			left, _ := os.ReadDir(filepath.Join(db.DataDir(), "blob-spool"))
			if len(left) != 0 {
				t.Errorf("the spool keeps %d files after the messages were stored", len(left))
			}
		}
	})
}
