package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestDownloads(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		logo, report := f.message.Attachments[0], f.message.Attachments[1]

		r := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", report.ID), "")
		if r.status != http.StatusOK || string(r.body) != string(f.report) {
			t.Fatalf("report: status %d, body %q", r.status, r.body)
		}
		for h, want := range map[string]string{
			"Content-Type":           "application/pdf",
			"Content-Disposition":    "attachment; filename*=utf-8''Bericht%20M%C3%A4rz.pdf",
			"X-Content-Type-Options": "nosniff",
			"ETag":                   `"` + report.SHA256 + `"`,
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}

		r = f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", logo.ID), "")
		if r.status != http.StatusOK || string(r.body) != string(f.logo) || r.header.Get("Content-Disposition") != `attachment; filename=logo.png` {
			t.Errorf("logo: status %d, headers %v", r.status, r.header)
		}

		// A conditional request with the ETag is answered 304.
		r = f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", logo.ID), "", withHeader("If-None-Match", `"`+logo.SHA256+`"`))
		if r.status != http.StatusNotModified {
			t.Errorf("If-None-Match: status %d, want 304", r.status)
		}

		r = f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d/raw", f.message.ID), "")
		if r.status != http.StatusOK || string(r.body) != string(f.raw) || r.header.Get("Content-Type") != "message/rfc822" ||
			r.header.Get("X-Content-Type-Options") != "nosniff" ||
			r.header.Get("Content-Disposition") != fmt.Sprintf("attachment; filename=message-%d.eml", f.message.ID) {
			t.Errorf("raw: status %d, headers %v, body %q", r.status, r.header, r.body)
		}

		f.do(t, http.MethodGet, "/api/v1/attachments/999", "").wantError(t, http.StatusNotFound, "attachment 999 not found")
		f.do(t, http.MethodGet, "/api/v1/attachments/-1", "").wantError(t, http.StatusBadRequest, "attachment id must be a positive integer")
		f.do(t, http.MethodGet, "/api/v1/messages/999/raw", "").wantError(t, http.StatusNotFound, "message 999 not found")
		f.do(t, http.MethodGet, "/api/v1/messages/abc/raw", "").wantError(t, http.StatusBadRequest, "message id must be a positive integer")
	})
}

func TestDownloadErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		// A message without stored source, and an attachment whose file is missing.
		m := store.Message{MailboxID: f.mailbox.ID, TicketID: f.ticketID, Direction: "out", Kind: store.KindReply,
			DedupeKey: "mid:reply@x", ReceivedAt: testNow,
			Attachments: []store.Attachment{{Filename: "gone.txt", ContentType: "text/plain", Size: 1}}}
		// The store keeps a row's blob with it: only one lost behind its
		// back can be missing.
		m.Attachments[0].SHA256 = storetest.PutBlob(t, db, "x")
		if err := db.Blobs().Sync(); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error { return tx.InsertMessage(ctx, &m) }); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, storetest.LoseBlobStatement(db), m.Attachments[0].SHA256); err != nil {
			t.Fatal(err)
		}
		db.Blobs().Release(m.Attachments[0].SHA256)
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d/raw", m.ID), "").wantError(t, http.StatusNotFound, fmt.Sprintf("message %d has no stored source", m.ID))

		r := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/attachments/%d", m.Attachments[0].ID), "")
		r.wantError(t, http.StatusInternalServerError, "stored file missing (incident "+r.header.Get("X-Request-Id")+"): this file's content is missing from Postdesk's storage")
		f.waitLog(t, `"msg":"api request failed"`)

		// A pack cut short (a backup restored in part) is damage, said as
		// such rather than sent short. PostgreSQL keeps blobs in its rows.
		if db.Dialect() != "sqlite" {
			return
		}
		packs, err := filepath.Glob(filepath.Join(db.DataDir(), "blobs", "packs", "*.pack"))
		if err != nil || len(packs) == 0 {
			t.Fatalf("no pack holds the raw message: %v %v", packs, err)
		}
		for _, p := range packs {
			if err := os.Truncate(p, 1); err != nil {
				t.Fatal(err)
			}
		}
		r = f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d/raw", f.message.ID), "")
		r.wantError(t, http.StatusInternalServerError, "stored file damaged (incident "+r.header.Get("X-Request-Id")+"): this file's content in the data folder is cut short")
	})
}
