package desk_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Anyone can write to a support address, and an acknowledgement mails
// whomever the email names: a flood of new tickets (forged senders, each
// under the per-address limit) is acknowledged MaxAcksPerMailboxHour
// times and no more; every email still becomes a ticket.
func TestAcknowledgementBudgetPerMailbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		admin, _ := newAdmin(t, db)
		if _, err := admin.SetAcknowledgement(ctx, f.mb.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		in := ingest.New(db, ingest.Options{Acknowledge: f.desk.Acknowledge})
		const flood = desk.MaxAcksPerMailboxHour + 5
		for i := range flood {
			raw := fmt.Sprintf("From: victim%d@customer.test\r\nTo: support@example.com\r\nSubject: You won, claim at http://spam.example/%d\r\nMessage-ID: <flood%d@customer.test>\r\n\r\nhello\r\n", i, i, i)
			if res, err := in.Ingest(ctx, f.mb, strings.NewReader(raw)); err != nil || res.Outcome != ingest.NewTicket {
				t.Fatalf("email %d: %+v %v", i, res, err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM outbox WHERE auto`); n != desk.MaxAcksPerMailboxHour {
			t.Errorf("%d acknowledgements queued for %d new tickets, want %d", n, flood, desk.MaxAcksPerMailboxHour)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM tickets`); n != flood+1 {
			t.Errorf("%d tickets, want %d", n, flood+1)
		}
	})
}
