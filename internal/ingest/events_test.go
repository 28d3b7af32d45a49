package ingest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// Each new ticket is told once as ticket.created (list mail with "bulk":
// true) and each customer answer once as ticket.customer_replied; replays,
// automatic replies, bounces, loops and an agent's own answer tell nothing.
func TestIngestTellsEachChangeOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "support@example.com")
		err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateUser(ctx, store.User{Email: "agent@example.com", Name: "Agent", Role: "agent"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		in := ingest.New(db, ingest.Options{})
		for range 2 { // the second pass is all duplicates
			for _, f := range inboxFiles(t) {
				if _, err := in.IngestFile(ctx, mb, f); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
		}
		agent := "From: Agent <agent@example.com>\r\nTo: support@example.com\r\nSubject: Re: [#1] note from me\r\n" +
			"Message-ID: <agent-1@example.com>\r\nDate: Thu, 5 Nov 2026 10:00:00 +0000\r\n\r\nI am on it.\r\n"
		res, err := in.Ingest(ctx, mb, strings.NewReader(agent))
		if err != nil || res.Outcome != ingest.Joined {
			t.Fatalf("agent's message: %v %v", res, err)
		}
		events, err := db.EventsSince(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			if e.MailboxID != mb.ID || e.MessageID == 0 || e.ActorUserID != 0 {
				t.Errorf("event %+v lacks its mailbox or message, or has an actor", e)
			}
			got = append(got, fmt.Sprintf("%s %d bulk=%v", e.Kind, e.TicketID, e.Data["bulk"]))
		}
		want := []string{
			"ticket.created 1 bulk=false", "ticket.created 2 bulk=false", "ticket.customer_replied 1 bulk=false",
			"ticket.customer_replied 2 bulk=false", "ticket.created 3 bulk=false", "ticket.created 4 bulk=true",
			"ticket.created 5 bulk=false", "ticket.created 6 bulk=false",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
