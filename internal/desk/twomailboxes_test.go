package desk_test

import (
	"context"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// sales@ is added but not connected yet (no server settings: it can
// neither fetch nor send). An email To sales@, Cc support@ is fetched by
// support@, which works: its ticket must still be acknowledged.
func TestOwnerThatCannotSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		admin, _ := newAdmin(t, db)
		if _, err := admin.SetAcknowledgement(ctx, f.mb.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		var sales store.Mailbox
		if err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			sales, err = tx.CreateMailbox(ctx, "sales@example.com", "")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.SetAcknowledgement(ctx, sales.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		in := ingest.New(db, ingest.Options{Acknowledge: f.desk.Acknowledge})
		raw := "From: ann@customer.test\r\nTo: sales@example.com\r\nCc: support@example.com\r\nSubject: Quote\r\nMessage-ID: <q@customer.test>\r\n\r\nHow much?\r\n"
		res, err := in.Ingest(ctx, f.mb, strings.NewReader(raw))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("%+v %v", res, err)
		}
		tk, _ := db.Ticket(ctx, res.TicketID)
		if n := count(t, db, `SELECT COUNT(*) FROM outbox WHERE auto`); n != 1 {
			t.Errorf("ticket belongs to mailbox %d (support@ is %d, sales@ %d); %d acknowledgements queued, want 1", tk.MailboxID, f.mb.ID, sales.ID, n)
		}
	})
}
