package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// sendingMailbox is a mailbox with sending settings (it can answer a
// ticket, so it may own one addressed to it; see ownerMailbox).
func sendingMailbox(t *testing.T, db *store.DB, address string) store.Mailbox {
	t.Helper()
	mb := newMailbox(t, db, address)
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.PutMailboxServer(context.Background(), store.MailboxServer{MailboxID: mb.ID, IMAPHost: "imap.example.test", IMAPPort: 993,
			IMAPSecurity: "tls", SMTPHost: "smtp.example.test", SMTPPort: 587, SMTPSecurity: "starttls", AuthMethod: "password",
			Folders: []string{"INBOX"}, InitialDays: 14, MaxAgeDays: 90, Enabled: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func r2email(id, to, cc, subject, inReplyTo, body string) string {
	h := "From: Ann <ann@customer.test>\r\nTo: " + to + "\r\n"
	if cc != "" {
		h += "Cc: " + cc + "\r\n"
	}
	h += "Subject: " + subject + "\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nMessage-ID: <" + id + "@customer.test>\r\n"
	if inReplyTo != "" {
		h += "In-Reply-To: <" + inReplyTo + "@customer.test>\r\nReferences: <" + inReplyTo + "@customer.test>\r\n"
	}
	return h + "\r\n" + body + "\r\n"
}

// quoteEmail is To support@, Cc sales@.
var quoteEmail = r2email("e1", "support@example.com", "sales@example.com", "Quote please", "", "How much for 10?")

// quoteToBoth makes support@ and sales@ (neither can send: the ticket is
// the fetching mailbox's) and an ingest function.
func quoteToBoth(t *testing.T, db *store.DB) (support, sales store.Mailbox, ing func(store.Mailbox, string) ingest.Result) {
	support = newMailbox(t, db, "support@example.com")
	sales = newMailbox(t, db, "sales@example.com")
	in := ingest.New(db, ingest.Options{})
	return support, sales, func(mb store.Mailbox, raw string) ingest.Result {
		t.Helper()
		res, err := in.Ingest(context.Background(), mb, strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
}

// support@ keeps only a duplicate (no ticket) of the email sales@
// fetched first. A follow-up that references the original, sent To
// support@ only, joins the ticket (it was a new one).
func TestFollowUpToOwnerWhoseCopyIsAnAlias(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		support, sales, ing := quoteToBoth(t, db)
		first := ing(sales, quoteEmail)
		if dup := ing(support, quoteEmail); dup.Outcome != ingest.Duplicate {
			t.Fatalf("support's copy: %s", dup.Outcome)
		}
		// "Sorry, forgot: 12 licences" — a reply to her own sent email, To support@ only.
		follow := ing(support, r2email("e2", "support@example.com", "", "Re: Quote please", "e1", "Make it 12."))
		if follow.Outcome != ingest.Joined || follow.TicketID != first.TicketID {
			t.Errorf("follow-up To support@ referencing the original: %s ticket %d, want joined ticket %d", follow.Outcome, follow.TicketID, first.TicketID)
		}
	})
}

// A reply-all to the original (To support@, Cc sales@, In-Reply-To e1)
// arrives in both mailboxes; support@ (whose copy of e1 is the alias)
// fetches it first. It must be one message on the original ticket.
func TestReplyAllFetchedFirstByAliasMailbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		support, sales, ing := quoteToBoth(t, db)
		first := ing(sales, quoteEmail)
		ing(support, quoteEmail)
		reply := r2email("e3", "support@example.com", "sales@example.com", "Re: Quote please", "e1", "Make it 12.")
		a := ing(support, reply)
		b := ing(sales, reply)
		n, _ := db.CountTickets(context.Background(), store.TicketFilter{})
		if n != 1 || a.TicketID != first.TicketID || b.TicketID != first.TicketID {
			t.Errorf("reply-all: support %s ticket %d, sales %s ticket %d; %d tickets; want one ticket %d",
				a.Outcome, a.TicketID, b.Outcome, b.TicketID, n, first.TicketID)
		}
	})
}

// Two mailboxes commit, at once, batches holding the same emails in
// opposite orders (PostgreSQL: a lock per email). The locks are taken in
// one order for the whole batch, so neither waits for the other
// crosswise (a deadlock, which PostgreSQL broke after a second by failing
// one batch, to be fetched again): both commit, one ticket per email.
func TestOppositeOrderBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		support := newMailbox(t, db, "support@example.com")
		sales := newMailbox(t, db, "sales@example.com")
		in := ingest.New(db, ingest.Options{})
		prep := func(raw string) *ingest.Prepared {
			s, err := in.Store(strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			p, err := in.Parse(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		const rounds, each = 10, 8
		for r := range rounds {
			var forward []*ingest.Prepared
			for i := range each {
				id := fmt.Sprintf("d%d-%d", r, i)
				forward = append(forward, prep(r2email(id, "support@example.com", "sales@example.com", "Order "+id, "", "one")))
			}
			backward := slices.Clone(forward)
			slices.Reverse(backward)
			errs := make(chan error, 2)
			for mb, ps := range map[store.Mailbox][]*ingest.Prepared{support: forward, sales: backward} {
				go func() {
					errs <- db.Write(ctx, func(tx *store.Tx) error { _, err := in.ApplyBatch(ctx, tx, mb, ps); return err })
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("round %d: a batch failed: %v", r, err)
				}
			}
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != rounds*each {
			t.Errorf("%d tickets, want %d", n, rounds*each)
		}
	})
}

// Group syntax and addresses in any case name the mailboxes all the same.
func TestGroupAndCase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		support := sendingMailbox(t, db, "support@example.com")
		sales := newMailbox(t, db, "sales@example.com")
		in := ingest.New(db, ingest.Options{})
		raw := r2email("g1", "Desk: SUPPORT@Example.COM;", "Sales <Sales@EXAMPLE.com>", "Group", "", "hi")
		a, err := in.Ingest(ctx, sales, strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		b, err := in.Ingest(ctx, support, strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		tk, _ := db.Ticket(ctx, a.TicketID)
		if a.Outcome != ingest.NewTicket || b.Outcome != ingest.Duplicate || tk.MailboxID != support.ID {
			t.Errorf("%s %s owner %d", a.Outcome, b.Outcome, tk.MailboxID)
		}
	})
}

// ticket.created's mailbox (webhooks' data.mailbox) is the ticket's.
func TestEventMailboxIsTheTicketsMailbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		support := sendingMailbox(t, db, "support@example.com")
		sales := newMailbox(t, db, "sales@example.com")
		in := ingest.New(db, ingest.Options{})
		res, err := in.Ingest(ctx, sales, strings.NewReader(r2email("w1", "support@example.com", "sales@example.com", "Hook", "", "hi")))
		if err != nil {
			t.Fatal(err)
		}
		evs, err := db.EventsSince(ctx, 0, 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("%v %v", evs, err)
		}
		if evs[0].MailboxID != support.ID {
			t.Errorf("ticket %d (support@'s, id %d): its ticket.created event names mailbox %d", res.TicketID, support.ID, evs[0].MailboxID)
		}
	})
}

// A Message-ID PostgreSQL would refuse as text (a NUL, bytes that are not
// UTF-8) in an email to two of our mailboxes: the lock and the lookups take
// its cleaned key, and it is one ticket.
func TestTwoMailboxesRefusedBytesInMessageID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		support, sales, ing := quoteToBoth(t, db)
		raw := strings.Replace(quoteEmail, "<e1@customer.test>", "<e1\x00\xff\xfe@customer.test>", 1)
		first, second := ing(sales, raw), ing(support, raw)
		if first.Outcome != ingest.NewTicket || second.Outcome != ingest.Duplicate || second.TicketID != first.TicketID {
			t.Errorf("sales then support: %s %d, %s %d; want one ticket", first.Outcome, first.TicketID, second.Outcome, second.TicketID)
		}
	})
}

// PostgreSQL, two writers of one mailbox (a lease takeover, a retry): an
// email the other writer commits while this batch waits for the email's
// lock (LockMessageKey) is found a duplicate. The batch's duplicate checks
// (PrefetchDedupeKeys) ran before that wait, found it absent, and the
// unique index refused the second row: the batch failed (ErrConflict)
// where it used to find a duplicate (found by a reviewer).
func TestPrefetchAfterTheEmailLocks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() != "postgres" {
			t.Skip("one writer")
		}
		ctx := context.Background()
		mb := newMailbox(t, db, "support@example.com")
		newMailbox(t, db, "sales@example.com")
		in := ingest.New(db, ingest.Options{})
		e := "From: Ann <ann@customer.example>\r\nTo: support@example.com, sales@example.com\r\nSubject: Both\r\n" +
			"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <both@customer.example>\r\n\r\nTo both.\r\n"
		other := strings.ReplaceAll(strings.ReplaceAll(e, "both@", "other@"), "sales@example.com", "x@customer.example")
		first, second := prepareAll(t, in, e), prepareAll(t, in, other, e)
		held, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.Write(ctx, func(tx *store.Tx) error {
				if _, err := in.ApplyBatch(ctx, tx, mb, first); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		go func() { time.Sleep(300 * time.Millisecond); close(release) }()
		var res []ingest.Result
		err := db.Write(ctx, func(tx *store.Tx) (err error) {
			res, err = in.ApplyBatch(ctx, tx, mb, second)
			return err
		})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err != nil || len(res) != 2 || res[1].Outcome != ingest.Duplicate {
			t.Errorf("the email the other writer committed while this batch waited for its lock: %+v %v, want a duplicate", res, err)
		}
	})
}
