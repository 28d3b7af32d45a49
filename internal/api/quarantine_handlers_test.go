package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type quarantineJSON struct {
	ID         int64  `json:"id"`
	MailboxID  int64  `json:"mailbox_id"`
	Mailbox    string `json:"mailbox"`
	Origin     string `json:"origin"`
	SourceName string `json:"source_name"`
	RawSize    int64  `json:"raw_size"`
	Error      string `json:"error"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	MessageID  *int64 `json:"message_id"`
	TicketID   *int64 `json:"ticket_id"`
	SourceURL  string `json:"source_url"`
	RetryURL   string `json:"retry_url"`
}

// withIngest serves the fixture's API again, with an ingester (retries).
func withIngest(t *testing.T, f *fixture) *ingest.Ingester {
	t.Helper()
	in := ingest.New(f.db, ingest.Options{})
	srv := httptest.NewServer(api.New(api.Options{DB: f.db, Auth: f.auth, Desk: desk.New(f.db), Ingest: in}))
	t.Cleanup(srv.Close)
	f.srv = srv
	return in
}

// An email the database refuses is quarantined (here by an import); the
// API lists it to admins only, serves its source, and retries it: refused
// again while the cause lasts (422, the error recorded), stored once it is
// fixed (200, with its ticket), and then 409.
func TestQuarantineAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		in := withIngest(t, f)
		drop := storetest.PoisonTrigger(t, db)
		raw := []byte("From: Mallory <m@customer.test>\r\nTo: support@example.com\r\nSubject: poison\r\nMessage-ID: <p@customer.test>\r\n\r\nRefused.\r\n")
		_, err := in.IngestOrQuarantine(ctx, f.mailbox, bytes.NewReader(raw), ingest.Failed{Origin: store.OriginImport, SourceName: "p.eml"})
		var qe *ingest.QuarantinedError
		if !errors.As(err, &qe) {
			t.Fatalf("ingest of a refused email: %v, want it quarantined", err)
		}
		id := qe.Row.ID
		path := fmt.Sprintf("/api/v1/quarantine/%d", id)

		// Agents may not see it.
		f.do(t, "GET", "/api/v1/quarantine", "").wantError(t, http.StatusForbidden, "only admins")
		f.do(t, "POST", path+"/retry", "").wantError(t, http.StatusForbidden, "only admins")

		var list struct{ Quarantine []quarantineJSON }
		f.do(t, "GET", "/api/v1/quarantine", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Quarantine) != 1 {
			t.Fatalf("list = %+v", list)
		}
		q := list.Quarantine[0]
		if q.ID != id || q.Mailbox != "support@example.com" || q.Origin != "import" || q.SourceName != "p.eml" || q.State != "open" ||
			q.RawSize != int64(len(raw)) || q.SourceURL != path+"/source" || q.RetryURL != path+"/retry" || q.MessageID != nil {
			t.Errorf("listed = %+v", q)
		}
		var other store.Mailbox
		if err := db.Write(context.Background(), func(tx *store.Tx) error {
			var err error
			other, err = tx.CreateMailbox(context.Background(), "billing@example.com", "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		f.do(t, "GET", fmt.Sprintf("/api/v1/quarantine?mailbox_id=%d", other.ID), "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Quarantine) != 0 {
			t.Errorf("another mailbox's list = %+v", list)
		}
		f.do(t, "GET", "/api/v1/quarantine?state=closed", "", asAdmin(f)).wantError(t, http.StatusBadRequest, "state must be")
		f.do(t, "GET", "/api/v1/quarantine?mailbox_id=999", "", asAdmin(f)).wantError(t, http.StatusBadRequest, "there is no mailbox 999")
		f.do(t, "GET", "/api/v1/quarantine?foo=1", "", asAdmin(f)).wantError(t, http.StatusBadRequest, `unknown query parameter "foo"; GET /api/v1/quarantine accepts mailbox_id, state`)

		src := f.do(t, "GET", path+"/source", "", asAdmin(f))
		if src.status != http.StatusOK || !bytes.Equal(src.body, raw) || src.header.Get("Content-Type") != "message/rfc822" {
			t.Fatalf("source: %d %q %q", src.status, src.header.Get("Content-Type"), src.body)
		}
		f.do(t, "GET", "/api/v1/quarantine/999999/source", "", asAdmin(f)).wantError(t, http.StatusNotFound, "not found")

		// Still refused.
		f.do(t, "POST", path+"/retry", "", asAdmin(f)).wantError(t, http.StatusUnprocessableEntity, "poison")
		f.do(t, "GET", path, "", asAdmin(f)).decode(t, http.StatusOK, &q)
		if q.State != "retried" || q.Attempts != 2 {
			t.Errorf("after a failed retry: %+v", q)
		}
		// Fixed.
		drop()
		f.do(t, "POST", path+"/retry", "", asAdmin(f)).decode(t, http.StatusOK, &q)
		if q.State != "resolved" || q.MessageID == nil || q.TicketID == nil {
			t.Fatalf("after the fix: %+v", q)
		}
		if tk, err := db.Ticket(ctx, *q.TicketID); err != nil || tk.Subject != "poison" {
			t.Fatalf("ticket of the retried email: %+v, %v", tk, err)
		}
		f.do(t, "POST", path+"/retry", "", asAdmin(f)).wantError(t, http.StatusConflict, "already stored")
		f.do(t, "GET", "/api/v1/quarantine", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Quarantine) != 0 {
			t.Errorf("open list after the retry = %+v", list)
		}
		f.do(t, "GET", "/api/v1/quarantine?state=all", "", asAdmin(f)).decode(t, http.StatusOK, &list)
		if len(list.Quarantine) != 1 {
			t.Errorf("all = %+v", list)
		}
	})
}
