package desk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// recordingEnqueuer records wake-ups, or fails them.
type recordingEnqueuer struct {
	woke []int64
	fail error
}

func (e *recordingEnqueuer) EnqueueSend(ctx context.Context, tx *store.Tx, mailboxID int64) error {
	if e.fail != nil {
		return e.fail
	}
	e.woke = append(e.woke, mailboxID)
	return nil
}

type replyFixture struct {
	db       *store.DB
	desk     *desk.Desk
	enq      *recordingEnqueuer
	mb       store.Mailbox
	ticketID int64
	agent    store.User
}

// newReplyFixture makes a password mailbox with SMTP settings and a
// ticket with two customer emails and an earlier reply.
func newReplyFixture(t *testing.T, db *store.DB) *replyFixture {
	t.Helper()
	ctx := context.Background()
	admin, _ := newAdmin(t, db)
	mb, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "support@example.com", Name: "Example Support", Auth: "password",
		IMAPHost: "imap.example.com", SMTPHost: "smtp.example.com", Password: "pw", Signature: "Example Support\nexample.com"})
	if err != nil {
		t.Fatal(err)
	}
	f := &replyFixture{db: db, enq: &recordingEnqueuer{}, mb: mb}
	f.desk = desk.New(db, desk.WithEnqueuer(f.enq))
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	err = db.Write(ctx, func(tx *store.Tx) error {
		var err error
		f.agent, err = tx.CreateUser(ctx, store.User{Email: "agent@example.com", Name: "Agent", Role: store.RoleAgent, PasswordHash: "x"})
		if err != nil {
			return err
		}
		f.ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Printer on fire", RequesterAddress: "jane@customer.test",
			RequesterName: "Jane Cooper", CreatedAt: at})
		if err != nil {
			return err
		}
		msgs := []store.Message{
			{Direction: "in", Kind: store.KindEmail, MessageID: "first@customer.test", FromAddress: "jane@customer.test", FromName: "Jane Cooper",
				To: "support@example.com", TextBody: "It burns.", ReceivedAt: at},
			{Direction: "out", Kind: store.KindReply, MessageID: "pd.1@example.com", InReplyTo: "first@customer.test", References: []string{"first@customer.test"},
				FromAddress: "support@example.com", TextBody: "Unplug it.", ReceivedAt: at.Add(time.Minute)},
			{Direction: "in", Kind: store.KindEmail, MessageID: "second@customer.test", InReplyTo: "pd.1@example.com",
				References: []string{"first@customer.test", "pd.1@example.com"}, FromAddress: "jane@customer.test", FromName: "Jane Cooper",
				To: "Example Support <support@example.com>", Cc: "Bob <bob@customer.test>, support@example.com", TextBody: "Done, still smoking.", ReceivedAt: at.Add(2 * time.Minute)},
		}
		for i := range msgs {
			m := &msgs[i]
			m.MailboxID, m.TicketID, m.DedupeKey = mb.ID, f.ticketID, store.DedupeKey(m.MessageID, "")
			if err := tx.InsertMessage(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// count counts rows of a table (test-only SQL).
func count(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if db.Dialect() == "postgres" {
		for i := 1; strings.Contains(query, "?"); i++ {
			query = strings.Replace(query, "?", "$"+string(rune('0'+i)), 1)
		}
	}
	if err := db.SQL().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReply(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)

		form, err := f.desk.ReplyForm(ctx, f.ticketID)
		if err != nil {
			t.Fatal(err)
		}
		if !form.CanSend || form.Held || strings.Join(form.To, ",") != "Jane Cooper <jane@customer.test>" ||
			strings.Join(form.Cc, ",") != "Bob <bob@customer.test>" || form.Signature == "" || form.MaxAttachmentBytes != desk.MaxReplyAttachmentBytes {
			t.Errorf("form = %+v", form)
		}

		m, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Call the fire brigade.\r\n", Cc: form.Cc, Status: store.StatusPending,
			Attachments: []desk.Upload{{Filename: "steps.txt", ContentType: "text/plain", Data: []byte("1. run")}}})
		if err != nil {
			t.Fatal(err)
		}
		if m.Delivery == nil || m.Delivery.State != store.DeliveryQueued || m.Direction != "out" || m.Kind != store.KindReply ||
			m.AuthorUserID != f.agent.ID || m.TextBody != "Call the fire brigade." {
			t.Fatalf("reply = %+v (delivery %+v)", m, m.Delivery)
		}
		if len(f.enq.woke) != 1 || f.enq.woke[0] != f.mb.ID {
			t.Errorf("sender woken for %v, want [%d]", f.enq.woke, f.mb.ID)
		}
		if !strings.HasSuffix(m.MessageID, "@example.com") || m.DedupeKey != store.DedupeKey(m.MessageID, "") {
			t.Errorf("Message-ID %q, dedupe key %q", m.MessageID, m.DedupeKey)
		}
		// The stored source is the email: parse it back.
		rf, err := db.Blobs().Open(context.Background(), m.RawSHA256)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := mailmsg.Parse(rf, mailmsg.ParseOptions{})
		rf.Close()
		if err != nil {
			t.Fatal(err)
		}
		if parsed.MessageID != m.MessageID || len(parsed.InReplyTo) != 1 || parsed.InReplyTo[0] != "second@customer.test" ||
			strings.Join(parsed.References, " ") != "first@customer.test pd.1@example.com second@customer.test" {
			t.Errorf("threading: id %q in-reply-to %v references %v", parsed.MessageID, parsed.InReplyTo, parsed.References)
		}
		if parsed.Subject != "Re: Printer on fire [#"+itoa(f.ticketID)+"]" || len(parsed.From) != 1 || parsed.From[0].Address != "support@example.com" ||
			parsed.From[0].Name != "Example Support" || len(parsed.To) != 1 || parsed.To[0].Address != "jane@customer.test" ||
			len(parsed.Cc) != 1 || parsed.Cc[0].Address != "bob@customer.test" {
			t.Errorf("header: subject %q from %v to %v cc %v", parsed.Subject, parsed.From, parsed.To, parsed.Cc)
		}
		for _, want := range []string{"Call the fire brigade.", "Example Support\nexample.com", "Done, still smoking.", "Unplug it."} {
			if !strings.Contains(parsed.Text, want) {
				t.Errorf("body lacks %q:\n%s", want, parsed.Text)
			}
		}
		if len(parsed.Attachments) != 1 || parsed.Attachments[0].Filename != "steps.txt" || len(m.Attachments) != 1 {
			t.Errorf("attachments: parsed %v, stored %v", parsed.Attachments, m.Attachments)
		}
		o, err := db.OutboxItem(ctx, m.ID)
		if err != nil || strings.Join(o.Recipients, ",") != "jane@customer.test,bob@customer.test" || o.EnvelopeFrom != "support@example.com" {
			t.Errorf("outbox = %+v, %v", o, err)
		}
		tk, err := db.Ticket(ctx, f.ticketID)
		if err != nil || tk.Status != store.StatusPending {
			t.Errorf("status = %q, %v", tk.Status, err)
		}
		notes, err := db.TicketNotes(ctx, f.ticketID)
		// The reply took the unassigned ticket (assign_test.go), then changed its status.
		if err != nil || len(notes) != 2 || notes[0].Body != "Taken by Agent with a reply" || !strings.Contains(notes[1].Body, "open to pending") {
			t.Errorf("notes = %+v, %v", notes, err)
		}
		msgs, err := db.TicketMessages(ctx, f.ticketID)
		if err != nil || len(msgs) != 4 || msgs[3].Delivery == nil || msgs[3].Delivery.State != store.DeliveryQueued {
			t.Fatalf("ticket messages = %d, %v", len(msgs), err)
		}
	})
}

func itoa(n int64) string {
	var b []byte
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// A reply is one transaction: when any step fails (here the wake-up, the
// last one), nothing of it is left.
func TestReplyFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		boom := errors.New("queue unavailable")
		f.enq.fail = boom
		_, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "hello", Status: store.StatusSolved})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the enqueuer's", err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messages WHERE direction = 'out' AND ticket_id = ? AND message_id <> 'pd.1@example.com'`, f.ticketID); n != 0 {
			t.Errorf("%d outgoing messages left", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM outbox`); n != 0 {
			t.Errorf("%d outbox rows left", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM notes`); n != 0 {
			t.Errorf("%d notes left", n)
		}
		if tk, _ := db.Ticket(ctx, f.ticketID); tk.Status != store.StatusOpen {
			t.Errorf("status = %s, want open", tk.Status)
		}
	})
}

func TestReplyRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		for _, c := range []struct {
			name  string
			in    desk.ReplyInput
			field string
		}{
			{"empty", desk.ReplyInput{Text: " \n\t"}, "text"},
			{"too long", desk.ReplyInput{Text: strings.Repeat("x", desk.MaxReplyTextBytes+1)}, "text"},
			{"bad cc", desk.ReplyInput{Text: "hi", Cc: []string{"not an address"}}, "cc"},
			{"cc injection", desk.ReplyInput{Text: "hi", Cc: []string{"a@b.test\r\nBcc: x@y.test"}}, "cc"},
			{"bad to", desk.ReplyInput{Text: "hi", To: []string{"@nowhere"}}, "to"},
			{"to ourselves", desk.ReplyInput{Text: "hi", To: []string{strings.ToUpper(f.mb.Address)}}, "to"},
			{"cc ourselves", desk.ReplyInput{Text: "hi", Cc: []string{"Support <" + f.mb.Address + ">"}}, "cc"},
			{"status", desk.ReplyInput{Text: "hi", Status: "closed"}, "status"},
			{"attachments", desk.ReplyInput{Text: "hi", Attachments: []desk.Upload{{Filename: "big", Data: make([]byte, desk.MaxReplyAttachmentBytes+1)}}}, "attachments"},
		} {
			_, err := f.desk.Reply(ctx, f.ticketID, f.agent, c.in)
			var v *desk.ValidationError
			if !errors.As(err, &v) || v.Field != c.field {
				t.Errorf("%s: err = %v, want a ValidationError about %q", c.name, err, c.field)
			}
		}
		if _, err := f.desk.Reply(ctx, 9999, f.agent, desk.ReplyInput{Text: "hi"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown ticket: %v", err)
		}
		// A mailbox without SMTP settings.
		var other int64
		if err := db.Write(ctx, func(tx *store.Tx) error {
			mb, err := tx.CreateMailbox(ctx, "import@example.com", "")
			if err != nil {
				return err
			}
			other, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "x", RequesterAddress: "a@b.test", CreatedAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, err := f.desk.Reply(ctx, other, f.agent, desk.ReplyInput{Text: "hi"})
		var v *desk.ValidationError
		if !errors.Is(err, desk.ErrNoSMTP) || !errors.As(err, &v) || v.Field != "" {
			t.Errorf("no SMTP: %v", err)
		}
		if form, err := f.desk.ReplyForm(ctx, other); err != nil || form.CanSend {
			t.Errorf("form without SMTP = %+v, %v", form, err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM outbox`); n != 0 {
			t.Errorf("%d outbox rows after refusals", n)
		}
	})
}

// A mailbox that needs re-authentication holds replies; failed and unknown
// replies can be retried or marked sent.
func TestReplyHeldRetryAndMarkSent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		now := time.Now().UTC()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.SetAuthState(ctx, f.mb.ID, store.AuthNeedsReauth, store.CodePasswordRefused, "refused", now)
		}); err != nil {
			t.Fatal(err)
		}
		if form, _ := f.desk.ReplyForm(ctx, f.ticketID); !form.Held || !form.CanSend {
			t.Errorf("form = %+v, want held", form)
		}
		m, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "later"})
		if err != nil || m.Delivery.State != store.DeliveryHeld || len(f.enq.woke) != 0 {
			t.Fatalf("held reply: %+v, %v, woke %v", m.Delivery, err, f.enq.woke)
		}
		if err := f.desk.RetryReply(ctx, m.ID, f.agent); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("retry of a held reply: %v", err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.SetAuthState(ctx, f.mb.ID, store.AuthOK, "", "", now); err != nil {
				return err
			}
			if _, err := tx.ReleaseHeld(ctx, f.mb.ID, now); err != nil {
				return err
			}
			if _, err := tx.ClaimOutbox(ctx, f.mb.ID, "w", now, now.Add(time.Minute)); err != nil {
				return err
			}
			if _, err := tx.BeginAttempt(ctx, m.ID, "w", now); err != nil {
				return err
			}
			return tx.MarkUnknown(ctx, m.ID, "stopped", now)
		}); err != nil {
			t.Fatal(err)
		}
		if err := f.desk.MarkReplySent(ctx, m.ID, f.agent); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Message(ctx, m.ID); got.Delivery.State != store.DeliverySent {
			t.Errorf("after MarkReplySent: %+v", got.Delivery)
		}
		if err := f.desk.MarkReplySent(ctx, m.ID, f.agent); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("mark sent twice: %v", err)
		}
		m2, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "again"})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.BeginAttempt(ctx, m2.ID, "w", now); err != nil {
				return err
			}
			return tx.MarkFailed(ctx, m2.ID, "recipient_unknown", "550 5.1.1 no such user", now)
		}); err != nil {
			t.Fatal(err)
		}
		f.enq.woke = nil
		if err := f.desk.RetryReply(ctx, m2.ID, f.agent); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Message(ctx, m2.ID); got.Delivery.State != store.DeliveryQueued || len(f.enq.woke) != 1 {
			t.Errorf("after retry: %+v, woke %v", got.Delivery, f.enq.woke)
		}
		notes, _ := db.TicketNotes(ctx, f.ticketID)
		notes = slices.DeleteFunc(notes, func(n store.Note) bool { return strings.HasPrefix(n.Body, "Taken by") }) // the first reply's (assign_test.go)
		if len(notes) != 2 || !strings.Contains(notes[0].Body, "as sent") || !strings.Contains(notes[1].Body, "again") {
			t.Errorf("timeline = %+v", notes)
		}
		if err := f.desk.RetryReply(ctx, 1, f.agent); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retry of a customer's email: %v", err)
		}
	})
}

// A reply sent with a key is sent once however many times it comes: the
// same key on the same ticket by the same agent returns the first reply
// (its status change is not made again), even from two transactions at
// once; another key, or none, is another reply.
func TestReplyKeySendsOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		outgoing := func() int {
			return count(t, db, `SELECT COUNT(*) FROM messages WHERE ticket_id = ? AND direction = 'out'`, f.ticketID)
		}
		before := outgoing()
		first, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "On our way.", Status: store.StatusPending, Key: "form-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.desk.SetStatus(ctx, f.ticketID, f.agent, store.StatusOpen); err != nil {
			t.Fatal(err)
		}
		again, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "On our way.", Status: store.StatusPending, Key: "form-1"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != first.ID || again.Delivery == nil || outgoing() != before+1 || len(f.enq.woke) != 1 {
			t.Errorf("the same key again: message %d (first %d, delivery %+v), %d outgoing (want %d), sender woken %d times",
				again.ID, first.ID, again.Delivery, outgoing(), before+1, len(f.enq.woke))
		}
		if tk, err := db.Ticket(ctx, f.ticketID); err != nil || tk.Status != store.StatusOpen {
			t.Errorf("the repeated reply set the status again: %q (%v)", tk.Status, err)
		}
		for _, in := range []desk.ReplyInput{{Text: "Second.", Key: "form-2"}, {Text: "Third."}, {Text: "Fourth."}} {
			m, err := f.desk.Reply(ctx, f.ticketID, f.agent, in)
			if err != nil || m.ID == first.ID {
				t.Errorf("reply %q: %d, %v", in.Text, m.ID, err)
			}
		}
		if got := outgoing(); got != before+4 {
			t.Errorf("%d outgoing messages, want %d", got, before+4)
		}

		// Two submissions of one form at the same moment.
		var wg sync.WaitGroup
		ids := make([]int64, 4)
		errs := make([]error, 4)
		for i := range ids {
			wg.Go(func() {
				m, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Racing.", Key: "form-race"})
				ids[i], errs[i] = m.ID, err
			})
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Errorf("concurrent submission %d: message %d, %v (first %d)", i, ids[i], errs[i], ids[0])
			}
		}
		if got := outgoing(); got != before+5 {
			t.Errorf("%d outgoing messages after four concurrent submissions of one form, want %d", got, before+5)
		}

		_, err = f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Bad key.", Key: "line\nbreak"})
		var v *desk.ValidationError
		if !errors.As(err, &v) || v.Field != "key" {
			t.Errorf("a key with a line break: %v", err)
		}

		// The key again with other text: refused, nothing sent, the
		// first reply's status change not repeated.
		n := outgoing()
		_, err = f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Something else.", Status: store.StatusSolved, Key: "form-1"})
		if !errors.As(err, &v) || v.Field != "key" || !errors.Is(err, desk.ErrReplyKeyUsed) || outgoing() != n {
			t.Errorf("the key again with other text: %v, %d outgoing (want %d)", err, outgoing(), n)
		}
		if tk, _ := db.Ticket(ctx, f.ticketID); tk.Status == store.StatusSolved {
			t.Error("the refused reply set the status")
		}
		// The same key by another agent, or on another ticket, is another reply.
		other := f.agent
		err = db.Write(ctx, func(tx *store.Tx) error {
			var err error
			other, err = tx.CreateUser(ctx, store.User{Email: "other@example.com", Name: "Other", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := f.desk.Reply(ctx, f.ticketID, other, desk.ReplyInput{Text: "On our way.", Key: "form-1"}); err != nil || m.ID == first.ID {
			t.Errorf("the key by another agent: %d, %v", m.ID, err)
		}
		var ticket2 int64
		err = db.Write(ctx, func(tx *store.Tx) error {
			var err error
			ticket2, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mb.ID, Subject: "Other", RequesterAddress: "jane@customer.test", CreatedAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := f.desk.Reply(ctx, ticket2, f.agent, desk.ReplyInput{Text: "On our way.", Key: "form-1"}); err != nil || m.ID == first.ID || m.TicketID != ticket2 {
			t.Errorf("the key on another ticket: %+v, %v", m, err)
		}

		// An email that took the Message-ID a key's reply would have (its
		// sender guessed the key) is never answered as that reply.
		squat := desk.KeyedReplyID(f.mb, f.ticketID, f.agent.ID, "guessed")
		err = db.Write(ctx, func(tx *store.Tx) error {
			return tx.InsertMessage(ctx, &store.Message{MailboxID: f.mb.ID, Direction: "in", Kind: store.KindEmail, MessageID: squat,
				DedupeKey: store.DedupeKey(squat, ""), FromAddress: "mallory@evil.test", TextBody: "ha", ReceivedAt: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
		n = outgoing()
		if _, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "For real.", Key: "guessed"}); !errors.As(err, &v) || v.Field != "key" || outgoing() != n {
			t.Errorf("a key whose Message-ID an email took: %v", err)
		}
	})
}

// A keyed and an unkeyed reply at the same moment on one ticket, with the
// same attachment, both go out: every reply locks the ticket before it
// writes its blobs. (When only a keyed reply locked it first, PostgreSQL
// found a deadlock about one run in six.)
func TestReplyConcurrentSameAttachment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		for round := range 20 {
			file := []desk.Upload{{Filename: "same.txt", ContentType: "text/plain", Data: []byte(fmt.Sprintf("round %d", round))}}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Go(func() {
					in := desk.ReplyInput{Text: fmt.Sprintf("Reply %d of round %d.", i, round), Attachments: file}
					if i == 0 {
						in.Key = fmt.Sprintf("k%d", round)
					}
					_, errs[i] = f.desk.Reply(ctx, f.ticketID, f.agent, in)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, reply %d: %v", round, i, err)
				}
			}
		}
	})
}

// The reply form's Cc is reply-all's: the latest email's sender (when not
// the requester) with its To and Cc, then those the last reply copied. It
// once dropped the colleague who had just asked a question, and everyone
// the latest email did not copy again; a name with a comma, as the store
// keeps it, is read too.
func TestReplyFormCcIsReplyAll(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db) // Jane's latest email copies Bob
		add := func(m store.Message) {
			t.Helper()
			m.MailboxID, m.TicketID, m.DedupeKey = f.mb.ID, f.ticketID, store.DedupeKey(m.MessageID, "")
			m.ReceivedAt = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.InsertMessage(ctx, &m) }); err != nil {
				t.Fatal(err)
			}
		}
		cc := func() string {
			t.Helper()
			form, err := f.desk.ReplyForm(ctx, f.ticketID)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(form.Cc, "; ")
		}
		// The agent answers all; Bob answers all, with a question.
		add(store.Message{Direction: "out", Kind: store.KindReply, MessageID: "pd.2@example.com", FromAddress: "support@example.com",
			To: "Jane Cooper <jane@customer.test>", Cc: "Bob <bob@customer.test>, Boss, The <boss@customer.test>", TextBody: "Is it out?"})
		add(store.Message{Direction: "in", Kind: store.KindEmail, MessageID: "third@customer.test", FromAddress: "bob@customer.test", FromName: "Bob",
			To: "support@example.com", Cc: "Jane Cooper <jane@customer.test>", TextBody: "When is the renewal?"})
		if got, want := cc(), `Bob <bob@customer.test>; "Boss, The" <boss@customer.test>`; got != want {
			t.Errorf("after Bob's question: Cc %q, want %q", got, want)
		}
		// Jane writes alone: Bob and the boss stay copied.
		add(store.Message{Direction: "in", Kind: store.KindEmail, MessageID: "fourth@customer.test", FromAddress: "jane@customer.test",
			FromName: "Jane Cooper", To: "support@example.com", TextBody: "Any news?"})
		if got, want := cc(), `Bob <bob@customer.test>; "Boss, The" <boss@customer.test>`; got != want {
			t.Errorf("after Jane's email without Cc: Cc %q, want %q", got, want)
		}
		// What the form offers is sent as it is.
		form, err := f.desk.ReplyForm(ctx, f.ticketID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "It ships today.", Cc: form.Cc, Seen: form.Seen}); err != nil {
			t.Errorf("the reply with the offered Cc: %v", err)
		}
		// An agent who emailed the ticket from their mail program is not copied.
		add(store.Message{Direction: "in", Kind: store.KindEmail, MessageID: "fifth@customer.test", FromAddress: "agent@example.com", FromName: "Agent",
			To: "support@example.com", Cc: "Bob <bob@customer.test>", TextBody: "Looping in support."})
		if got := cc(); strings.Contains(got, "agent@example.com") {
			t.Errorf("after an agent's email: Cc %q offers the agent", got)
		}
	})
}

// A reply written before the conversation's newest message (another
// agent's reply, the customer's new email) is refused until seen: two
// agents answering one ticket at once sent the customer two replies.
func TestReplyRefusedWhenTheConversationMovedOn(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newReplyFixture(t, db)
		var maria store.User
		if err := db.Write(ctx, func(tx *store.Tx) (err error) {
			maria, err = tx.CreateUser(ctx, store.User{Email: "maria@example.com", Name: "Maria Santos", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		seen := func() int64 {
			t.Helper()
			form, err := f.desk.ReplyForm(ctx, f.ticketID)
			if err != nil {
				t.Fatal(err)
			}
			return form.Seen
		}
		opened := seen() // both agents open the ticket
		if _, err := f.desk.Reply(ctx, f.ticketID, maria, desk.ReplyInput{Text: "On it.", Seen: opened}); err != nil {
			t.Fatalf("Maria's reply: %v", err)
		}
		_, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Unplug it.", Seen: opened})
		var v *desk.ValidationError
		if !errors.Is(err, desk.ErrReplyStale) || !errors.As(err, &v) || v.Field != "seen_message_id" ||
			!strings.HasPrefix(v.Message, "Maria Santos replied a moment ago, after you opened this ticket") {
			t.Fatalf("a reply from a page opened before Maria's: %v", err)
		}
		// Maria again from her page: her own reply is no news to her.
		if _, err := f.desk.Reply(ctx, f.ticketID, maria, desk.ReplyInput{Text: "And unplug it.", Seen: opened}); err != nil {
			t.Errorf("Maria's second reply from the same page: %v", err)
		}
		// Seen again, it goes; then the customer writes, and it is refused.
		now := seen()
		if _, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Unplug it.", Seen: now}); err != nil {
			t.Fatalf("the reply once seen: %v", err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			m := store.Message{MailboxID: f.mb.ID, TicketID: f.ticketID, Direction: "in", Kind: store.KindEmail, MessageID: "third@customer.test",
				DedupeKey: store.DedupeKey("third@customer.test", ""), FromAddress: "jane@customer.test", FromName: "Jane Cooper", TextBody: "It's out.", ReceivedAt: time.Now()}
			return tx.InsertMessage(ctx, &m)
		}); err != nil {
			t.Fatal(err)
		}
		_, err = f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Good.", Seen: seen() - 1})
		if m, _ := desk.Message(err); !errors.Is(err, desk.ErrReplyStale) || !strings.HasPrefix(m, "Jane Cooper wrote again a moment ago") {
			t.Errorf("a reply written before the customer's new email: %v", err)
		}
		if _, err := f.desk.Reply(ctx, f.ticketID, f.agent, desk.ReplyInput{Text: "Good."}); err != nil {
			t.Errorf("a reply that does not say what it saw (an API client): %v", err)
		}
	})
}
