package ingest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

var errRollback = errors.New("rollback")

// Decide changes nothing, and what it decides is what ApplyBatch then does:
// the same outcome, on the same existing ticket.
func TestDecideIsWhatApplyDoes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "support@example.com")
		in := ingest.New(db, ingest.Options{})
		for _, f := range inboxFiles(t) {
			raw, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := in.Prepare(ctx, raw)
			raw.Close()
			if err != nil {
				t.Fatal(err)
			}
			before, _ := db.CountMessages(ctx, mb.ID)
			var d ingest.Decision
			err = db.Write(ctx, func(tx *store.Tx) error {
				var err error
				if d, err = in.Decide(ctx, tx, mb, p); err != nil {
					return err
				}
				if n, _ := tx.CountMessages(ctx, mb.ID); n != before {
					t.Errorf("%s: Decide wrote %d messages", filepath.Base(f), n-before)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			var res []ingest.Result
			err = db.Write(ctx, func(tx *store.Tx) error {
				var err error
				res, err = in.ApplyBatch(ctx, tx, mb, []*ingest.Prepared{p})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Outcome != d.Outcome || len(d.Reasons) == 0 || (d.Outcome != ingest.NewTicket && res[0].TicketID != d.TicketID) {
				t.Errorf("%s: decided %s on ticket %d (%v), applied %s on ticket %d", filepath.Base(f), d.Outcome, d.TicketID, d.Reasons, res[0].Outcome, res[0].TicketID)
			}
		}
	})
}
