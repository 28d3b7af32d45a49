package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type want struct {
	outcome ingest.Outcome
	ticket  int64
	kind    string
}

// The inbox fixtures arrive in file-name order; each line says what the
// message must become.
var inboxWant = map[string]want{
	"01_outlook_new.eml":            {ingest.NewTicket, 1, store.KindEmail},
	"02_gmail_new_with_pdf.eml":     {ingest.NewTicket, 2, store.KindEmail},
	"03_gmail_reply_to_outlook.eml": {ingest.Joined, 1, store.KindEmail},
	"04_apple_mail_subject_ref.eml": {ingest.Joined, 2, store.KindEmail},
	"05_thunderbird_new_latin1.eml": {ingest.NewTicket, 3, store.KindEmail},
	"06_mailing_list.eml":           {ingest.NewTicket, 4, store.KindEmail},
	"07_out_of_office.eml":          {ingest.Attached, 1, store.KindAutoReply},
	"08_bounce_unknown.eml":         {ingest.Ignored, 0, store.KindBounce},
	"09_loop_from_support.eml":      {ingest.Ignored, 0, store.KindLoop},
	"10_broken_mime_no_msgid.eml":   {ingest.NewTicket, 5, store.KindEmail},
	"11_8bit_garbage_no_msgid.eml":  {ingest.NewTicket, 6, store.KindEmail},
	"12_auto_reply_unknown.eml":     {ingest.Ignored, 0, store.KindAutoReply},
}

func inboxFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/inbox/*.eml")
	if err != nil || len(files) != len(inboxWant) {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	sort.Strings(files)
	return files
}

func newMailboxB(b *testing.B, db *store.DB) store.Mailbox {
	return newMailbox(b, db, "support@example.com")
}

func newMailbox(t testing.TB, db *store.DB, address string) store.Mailbox {
	t.Helper()
	var mb store.Mailbox
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		var err error
		mb, err = tx.CreateMailbox(context.Background(), address, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestInboxBecomesTheRightTicketsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "support@example.com")
		in := ingest.New(db, ingest.Options{})
		for _, f := range inboxFiles(t) {
			w := inboxWant[filepath.Base(f)]
			res, err := in.IngestFile(ctx, mb, f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if res.Outcome != w.outcome || res.TicketID != w.ticket || res.Kind != w.kind {
				t.Errorf("%s: got %s ticket %d kind %s (%s); want %s ticket %d kind %s",
					filepath.Base(f), res.Outcome, res.TicketID, res.Kind, res.Reason, w.outcome, w.ticket, w.kind)
			}
		}
		n, _ := db.CountTickets(ctx, store.TicketFilter{})
		msgs, _ := db.CountMessages(ctx, mb.ID)
		if n != 6 || msgs != len(inboxWant) {
			t.Fatalf("after first pass: %d tickets, %d messages; want 6, %d", n, msgs, len(inboxWant))
		}

		// A second pass over the same files changes nothing.
		for _, f := range inboxFiles(t) {
			res, err := in.IngestFile(ctx, mb, f)
			if err != nil {
				t.Fatalf("%s again: %v", f, err)
			}
			if res.Outcome != ingest.Duplicate || res.TicketID != inboxWant[filepath.Base(f)].ticket {
				t.Errorf("%s again: %s ticket %d, want duplicate of ticket %d", f, res.Outcome, res.TicketID, inboxWant[filepath.Base(f)].ticket)
			}
		}
		n2, _ := db.CountTickets(ctx, store.TicketFilter{})
		msgs2, _ := db.CountMessages(ctx, mb.ID)
		if n2 != n || msgs2 != msgs {
			t.Fatalf("second pass changed counts: %d tickets, %d messages", n2, msgs2)
		}

		// What the tickets say.
		t1, _ := db.Ticket(ctx, 1)
		if t1.RequesterAddress != "j.mueller@kunde.example" || t1.RequesterName != "Jürgen Müller" || t1.MessageCount != 2 || t1.Status != store.StatusOpen {
			t.Errorf("ticket 1 = %+v", t1)
		}
		t3, _ := db.Ticket(ctx, 3)
		if t3.Subject != "Problème de connexion à mon compte" || t3.RequesterName != "Françoise Lefèvre" {
			t.Errorf("ticket 3 (latin-1) = %q from %q", t3.Subject, t3.RequesterName)
		}
		if t4, _ := db.Ticket(ctx, 4); !t4.Bulk {
			t.Errorf("ticket 4 (mailing list) not marked bulk")
		}
		m2, _ := db.TicketMessages(ctx, 2)
		if len(m2) != 2 || len(m2[0].Attachments) != 1 || m2[0].Attachments[0].Filename != "delivery-note.pdf" {
			t.Fatalf("ticket 2 messages/attachments = %+v", m2)
		}
		// The attachment is kept once: as its part of the raw message.
		att := m2[0].Attachments[0]
		if att.Part.Blob != m2[0].RawSHA256 || att.Part.Length == 0 {
			t.Errorf("attachment part = %+v, want a span of raw message %s", att.Part, m2[0].RawSHA256)
		}
		if own, err := db.Blobs().Open(ctx, att.SHA256); !errors.Is(err, store.ErrNotFound) {
			if err == nil {
				own.Close()
			}
			t.Errorf("the decoded attachment was stored a second time (open: %v)", err)
		}
		f, err := db.OpenAttachment(ctx, att)
		if err != nil {
			t.Fatalf("attachment: %v", err)
		}
		pdf, _ := io.ReadAll(f)
		f.Close()
		if !strings.HasPrefix(string(pdf), "%PDF-1.4") {
			t.Errorf("attachment content = %q", pdf)
		}
		m1, _ := db.TicketMessages(ctx, 1)
		if len(m1) != 3 || m1[2].Kind != store.KindAutoReply || !m1[2].NoAutoAnswer {
			t.Errorf("ticket 1 should hold 2 emails and the out-of-office: %d messages", len(m1))
		}
		m5, _ := db.TicketMessages(ctx, 5)
		if len(m5) != 1 || len(m5[0].Problems) == 0 || !strings.Contains(m5[0].TextBody, "The app crashes") {
			t.Errorf("broken MIME message lost its text or problems: %+v", m5)
		}
		// The raw source is kept byte for byte.
		raw, _ := os.ReadFile("testdata/inbox/11_8bit_garbage_no_msgid.eml")
		m6, _ := db.TicketMessages(ctx, 6)
		rf, err := db.Blobs().Open(context.Background(), m6[0].RawSHA256)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rf)
		rf.Close()
		if string(got) != string(raw) {
			t.Errorf("raw source not kept as received")
		}
	})
}

func TestSupportAddressesAreNeverCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{SupportAddresses: []string{"Sales@Example.com"}})
		raw := "From: Sales <sales@example.com>\r\nTo: help@example.com\r\nSubject: hi\r\nMessage-ID: <s1@example.com>\r\n\r\nhi\r\n"
		res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
		if err != nil || res.Outcome != ingest.Ignored || res.Kind != store.KindLoop {
			t.Fatalf("mail from a configured support address: %+v %v", res, err)
		}
	})
}

func TestReplyToIsTheRequester(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{})
		raw := "From: Web Form <noreply@shop.example>\r\nReply-To: \"Kim Lee\" <kim@customer.example>\r\nTo: help@example.com\r\nSubject: Contact form\r\n\r\nPlease call me.\r\n"
		res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("%+v %v", res, err)
		}
		tk, _ := db.Ticket(ctx, res.TicketID)
		if tk.RequesterAddress != "kim@customer.example" || tk.RequesterName != "Kim Lee" {
			t.Errorf("requester = %q <%s>", tk.RequesterName, tk.RequesterAddress)
		}
		// Same bytes again (no Message-ID): deduplicated by content hash.
		res2, err := in.Ingest(ctx, mb, strings.NewReader(raw))
		if err != nil || res2.Outcome != ingest.Duplicate || res2.TicketID != res.TicketID {
			t.Fatalf("second delivery: %+v %v", res2, err)
		}
	})
}

// Concurrent delivery of the same message stores it once.
func TestConcurrentDuplicatesStoreOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{})
		raw := "From: a@b.example\r\nTo: help@example.com\r\nSubject: race\r\nMessage-ID: <race@b.example>\r\n\r\nx\r\n"
		errs := make(chan error, 8)
		outcomes := make(chan ingest.Outcome, 8)
		for range 8 {
			go func() {
				res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
				errs <- err
				outcomes <- res.Outcome
			}()
		}
		created := 0
		for range 8 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
			if <-outcomes == ingest.NewTicket {
				created++
			}
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 1 || created != 1 {
			t.Fatalf("%d tickets, %d new_ticket outcomes; want 1, 1", n, created)
		}
	})
}

// A customer's answer reopens a solved ticket and says so on its
// timeline, dated when the answer arrived (not by its Date header, which is
// the sender's clock), so it follows the agent's change it undoes. An
// agent's own email on the thread neither reopens nor counts.
func TestCustomerAnswerReopens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		t0 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
		now := t0
		in := ingest.New(db, ingest.Options{Now: func() time.Time { return now }})
		first := "From: Kim <kim@customer.example>\r\nTo: help@example.com\r\nSubject: Broken\r\nMessage-ID: <k1@customer.example>\r\n" +
			"Date: " + t0.Format(time.RFC1123Z) + "\r\n\r\nIt broke.\r\n"
		res, err := in.Ingest(ctx, mb, strings.NewReader(first))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("first: %+v %v", res, err)
		}
		ticket := res.TicketID
		err = db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.CreateUser(ctx, store.User{Email: "ann@help.example", Role: store.RoleAgent}); err != nil {
				return err
			}
			if _, err := tx.SetTicketStatus(ctx, ticket, store.StatusSolved, t0.Add(time.Hour)); err != nil {
				return err
			}
			return tx.AddNote(ctx, &store.Note{TicketID: ticket, Kind: store.NoteEvent, Body: "Status changed from open to solved by ann@help.example", CreatedAt: t0.Add(time.Hour)})
		})
		if err != nil {
			t.Fatal(err)
		}

		// The agent writes on the thread from her mail client: shown, but the
		// ticket stays solved.
		now = t0.Add(90 * time.Minute)
		own := "From: Ann <ann@help.example>\r\nTo: kim@customer.example\r\nCc: help@example.com\r\nSubject: Re: Broken\r\nMessage-ID: <a1@help.example>\r\n" +
			"In-Reply-To: <k1@customer.example>\r\nDate: " + now.Format(time.RFC1123Z) + "\r\n\r\nFixed, I think.\r\n"
		if res, err := in.Ingest(ctx, mb, strings.NewReader(own)); err != nil || res.Outcome != ingest.Joined {
			t.Fatalf("agent's email: %+v %v", res, err)
		}
		if tk, err := db.Ticket(ctx, ticket); err != nil || tk.Status != store.StatusSolved || tk.MessageCount != 1 {
			t.Fatalf("after the agent's own email: status %q, %d emails from the customer (%v); want solved, 1", tk.Status, tk.MessageCount, err)
		}

		// Kim answers; her clock says 2020, and the server received it
		// before the agent solved the ticket, but it is fetched after.
		now = t0.Add(2 * time.Hour)
		answer := "From: Kim <kim@customer.example>\r\nTo: help@example.com\r\nSubject: Re: Broken\r\nMessage-ID: <k2@customer.example>\r\n" +
			"In-Reply-To: <a1@help.example>\r\nDate: Wed, 01 Jan 2020 10:00:00 +0000\r\n\r\nStill broken.\r\n"
		p, err := in.Prepare(ctx, strings.NewReader(answer))
		if err != nil {
			t.Fatal(err)
		}
		p.ReceivedAt = t0.Add(30 * time.Minute) // the server's INTERNALDATE, as mail sync sets it
		var results []ingest.Result
		err = db.Write(ctx, func(tx *store.Tx) error {
			var err error
			results, err = in.ApplyBatch(ctx, tx, mb, []*ingest.Prepared{p})
			return err
		})
		if err != nil || len(results) != 1 || results[0].Outcome != ingest.Joined || results[0].TicketID != ticket {
			t.Fatalf("answer: %+v %v", results, err)
		}
		tk, err := db.Ticket(ctx, ticket)
		if err != nil || tk.Status != store.StatusOpen || tk.MessageCount != 2 || tk.UpdatedAt.Before(now) {
			t.Fatalf("after the answer: status %q, %d emails, last activity %v (%v); want open, 2, %v", tk.Status, tk.MessageCount, tk.UpdatedAt, err, now)
		}
		notes, err := db.TicketNotes(ctx, ticket)
		if err != nil || len(notes) != 2 {
			t.Fatalf("notes = %+v, %v; want the agent's change and the reopen", notes, err)
		}
		if got := notes[1]; got.Body != "Status changed from solved to open by an email from kim@customer.example" || !got.CreatedAt.Equal(now) {
			t.Errorf("last event %q at %v, want the reopen at %v", got.Body, got.CreatedAt, now)
		}

		// An agent who filed a ticket of her own answers as its customer.
		now = t0.Add(3 * time.Hour)
		mine := "From: Ann <ann@help.example>\r\nTo: help@example.com\r\nSubject: My laptop\r\nMessage-ID: <a2@help.example>\r\n\r\nIt is slow.\r\n"
		res, err = in.Ingest(ctx, mb, strings.NewReader(mine))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("agent's own ticket: %+v %v", res, err)
		}
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.SetTicketStatus(ctx, res.TicketID, store.StatusSolved, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		now = t0.Add(4 * time.Hour)
		again := "From: Ann <ann@help.example>\r\nTo: help@example.com\r\nSubject: Re: My laptop\r\nMessage-ID: <a3@help.example>\r\nIn-Reply-To: <a2@help.example>\r\n\r\nStill slow.\r\n"
		if r2, err := in.Ingest(ctx, mb, strings.NewReader(again)); err != nil || r2.TicketID != res.TicketID {
			t.Fatalf("agent's answer on her own ticket: %+v %v", r2, err)
		}
		if tk, _ := db.Ticket(ctx, res.TicketID); tk.Status != store.StatusOpen || tk.MessageCount != 2 {
			t.Errorf("her own ticket after her answer: %s, %d emails; want open, 2", tk.Status, tk.MessageCount)
		}
	})
}

// A file with no header at all (empty, a picture, a text file) is
// quarantined with its source, where an admin sees it, not made a ticket
// nobody could answer; mail with any header, however mangled, is still mail.
func TestNotAnEmailIsQuarantined(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{})
		random := make([]byte, 3000)
		for i := range random {
			random[i] = byte(i*7919 + i/3)
		}
		for name, raw := range map[string]string{
			"empty":  "",
			"text":   "Postdesk notes\n\nThis folder holds exported mail.\n",
			"binary": "\x89PNG\r\n\x1a\n" + string(random),
		} {
			_, err := in.IngestOrQuarantine(ctx, mb, strings.NewReader(raw), ingest.Failed{Origin: store.OriginImport, SourceName: name})
			var q *ingest.QuarantinedError
			if !errors.As(err, &q) || !errors.Is(err, ingest.ErrNotEmail) {
				t.Errorf("%s: %v, want it quarantined as not an email", name, err)
			}
		}
		if n, err := db.CountTickets(ctx, store.TicketFilter{}); err != nil || n != 0 {
			t.Errorf("%d tickets (%v), want none", n, err)
		}
		for name, raw := range map[string]string{
			"subject only":         "Subject: Help\r\n\r\nhelp\r\n",
			"from only":            "From: kim@customer.example\r\n\r\nhelp\r\n",
			"from without address": "From: Kim\r\n\r\nhelp\r\n",
			"bcc only":             "Bcc: kim@customer.example\r\n\r\nhelp\r\n",
			"x-header only":        "X-Mailer: old\r\n\r\nhelp\r\n",
			"received only":        "Received: from a by b\r\n\r\nhelp\r\n",
		} {
			res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
			if err != nil || res.Outcome != ingest.NewTicket {
				t.Errorf("%s: %+v %v, want a new ticket", name, res, err)
			}
		}
	})
}

// A subject naming a ticket ([#N]) joins it only from one of the ticket's
// people (its requester, a sender or recipient of one of its messages) or
// one of ours: from anyone else it opens a ticket of its own. A stranger's
// "[#1] my account number" joined another customer's ticket, and the next
// reply quoted it to that customer.
func TestSubjectTagJoinsOnlyFromTheTicketsPeople(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{Agents: []string{"maria@help.example"}})
		mail := func(from, cc, subject, id string) ingest.Result {
			t.Helper()
			raw := "From: " + from + "\r\nTo: help@example.com\r\n"
			if cc != "" {
				raw += "Cc: " + cc + "\r\n"
			}
			raw += "Subject: " + subject + "\r\nMessage-ID: <" + id + "@example.net>\r\nDate: " + time.Now().Format(time.RFC1123Z) + "\r\n\r\nHello.\r\n"
			res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		first := mail(`"Doe, Ann" <Ann@Weird-Co.example>`, `"Boss, The" <boss@weird-co.example>`, "Renewal", "m1")
		if first.Outcome != ingest.NewTicket {
			t.Fatalf("first email: %+v", first)
		}
		tag := fmt.Sprintf("[#%d]", first.TicketID)
		// Automatic mail naming the ticket by subject only is held to the
		// same rule: a stranger's "out of office" or delivery report is not
		// put on the ticket (it was, text and links shown to agents), and
		// does not make its sender one of the ticket's people; the
		// requester's own is attached.
		for _, c := range []struct {
			from, kind string
			want       ingest.Outcome
		}{
			{"Mallory <mallory@stranger.example>", "Auto-Submitted: auto-replied", ingest.Ignored},
			{"MAILER-DAEMON@stranger.example", "Content-Type: multipart/report; report-type=delivery-status; boundary=b", ingest.Ignored},
			{"Ann <ann@weird-co.example>", "Auto-Submitted: auto-replied", ingest.Attached},
		} {
			auto := "From: " + c.from + "\r\nTo: help@example.com\r\n" + c.kind + "\r\nSubject: " + tag +
				" away\r\nMessage-ID: <auto-" + strings.ReplaceAll(c.from, " ", "") + ">\r\n\r\nAway.\r\n"
			res, err := in.Ingest(ctx, mb, strings.NewReader(auto))
			if err != nil || res.Outcome != c.want || (c.want == ingest.Attached) != (res.TicketID == first.TicketID) {
				t.Errorf("automatic mail from %s: %+v %v, want %s", c.from, res, err, c.want)
			}
		}
		for _, c := range []struct {
			from string
			want ingest.Outcome
		}{
			{"Mallory <mallory@stranger.example>", ingest.NewTicket},
			{"ann@weird-co.example", ingest.Joined},             // the requester
			{"The Boss <BOSS@weird-co.example>", ingest.Joined}, // on Cc of the first email
			{"Maria <maria@help.example>", ingest.Joined},       // an agent
			{"Eve <eve@weird-co.example>", ingest.NewTicket},    // same company, not on the ticket
		} {
			res := mail(c.from, "", tag+" my account number", "m-"+strings.ReplaceAll(c.from, " ", ""))
			if res.Outcome != c.want || (c.want == ingest.Joined) != (res.TicketID == first.TicketID) {
				t.Errorf("%s %s: %s on ticket %d (%s), want %s", c.from, tag, res.Outcome, res.TicketID, res.Reason, c.want)
			}
		}
	})
}

// An email that reuses the Message-ID of a different stored email (a
// scanner that numbers every email alike, or a forger) was dropped as a
// duplicate, and lost. It is stored as its own, with the clash among its
// problems; the same email delivered again is still stored once, also
// with other bytes (another Received line).
func TestMessageIDReusedByAnotherEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{})
		email := func(trace, from, subject, body string) string {
			return trace + "From: " + from + "\r\nTo: help@example.com\r\nSubject: " + subject +
				"\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nMessage-ID: <1@scanner>\r\n\r\n" + body + "\r\n"
		}
		a := email("", "scanner@cust-a.test", "Scanned document", "Your scan.")
		b := email("", "bob@cust-b.test", "My server is down, urgent", "Please call me.")
		for _, c := range []struct {
			name, raw string
			want      ingest.Outcome
		}{
			{"A", a, ingest.NewTicket},
			{"B, another email under A's Message-ID", b, ingest.NewTicket},
			{"A again", a, ingest.Duplicate},
			{"A again, another Received line", email("Received: from relay2.example.net\r\n", "scanner@cust-a.test", "Scanned document", "Your scan."), ingest.Duplicate},
			{"A sent again, dated anew", strings.Replace(a, "09:00:00", "09:00:07", 1), ingest.Duplicate},
			{"B again", b, ingest.Duplicate},
		} {
			res, err := in.Ingest(ctx, mb, strings.NewReader(c.raw))
			if err != nil || res.Outcome != c.want {
				t.Fatalf("%s: %+v %v, want %s", c.name, res, err, c.want)
			}
		}
		list, err := db.Tickets(ctx, store.TicketFilter{MailboxID: mb.ID})
		if err != nil || len(list) != 2 {
			t.Fatalf("tickets %d %v, want 2", len(list), err)
		}
		msgs, err := db.TicketMessages(ctx, list[0].ID) // the newest: B's
		if err != nil || len(msgs) != 1 || msgs[0].FromAddress != "bob@cust-b.test" || !strings.Contains(msgs[0].TextBody, "Please call me") {
			t.Fatalf("B's ticket: %+v %v", msgs, err)
		}
		if p := strings.Join(msgs[0].Problems, "\n"); !strings.Contains(p, "Message-ID <1@scanner> is also that of message") || !strings.Contains(p, "scanner@cust-a.test") {
			t.Errorf("B's problems do not name the clash: %q", p)
		}
		// A follow-up naming the id joins the first holder's ticket: the
		// clashing email anchors no thread (it took A's customer's answers
		// to B's ticket, and the agent's reply to B).
		followUp := "From: scanner@cust-a.test\r\nTo: help@example.com\r\nSubject: Re: Scanned document\r\nIn-Reply-To: <1@scanner>\r\nMessage-ID: <2@scanner-reply>\r\n\r\nThanks.\r\n"
		if res, err := in.Ingest(ctx, mb, strings.NewReader(followUp)); err != nil || res.Outcome != ingest.Joined || res.TicketID != list[1].ID {
			t.Errorf("a follow-up to <1@scanner>: %+v %v, want joined to A's ticket %d", res, err, list[1].ID)
		}
	})
}

// An agent answers a notification email (it comes from the support
// address): it became a ticket with the agent as its customer. It is
// never a ticket: the agent's words (above the quote) become an internal
// note on the ticket a single notification was about; an answer to a
// digest, or from someone else, is recorded as ignored.
func TestAnswerToANotification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb := newMailbox(t, db, "help@example.com")
		in := ingest.New(db, ingest.Options{})
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateUser(ctx, store.User{Email: "maria@help.example", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		first, err := in.Ingest(ctx, mb, strings.NewReader("From: jane@customer.example\r\nTo: help@example.com\r\nSubject: Printer\r\nMessage-ID: <p1@customer.example>\r\n\r\nIt burns.\r\n"))
		if err != nil || first.Outcome != ingest.NewTicket {
			t.Fatalf("first: %+v %v", first, err)
		}
		err = db.Write(ctx, func(tx *store.Tx) error {
			for i, subject := range []string{fmt.Sprintf("jane@customer.example answered on #%d: Printer", first.TicketID), "3 updates on your Postdesk tickets"} {
				m := store.Message{MailboxID: mb.ID, Direction: "out", Kind: store.KindNotification, MessageID: fmt.Sprintf("n%d@help.example", i),
					DedupeKey: store.DedupeKey(fmt.Sprintf("n%d@help.example", i), ""), Subject: subject, FromAddress: "help@example.com", ReceivedAt: time.Now()}
				if err := tx.InsertMessage(ctx, &m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		answer := func(from, inReplyTo, id, words string) ingest.Result {
			t.Helper()
			raw := "From: " + from + "\r\nTo: help@example.com\r\nSubject: Re: notification\r\nIn-Reply-To: <" + inReplyTo + ">\r\nMessage-ID: <" + id + ">\r\n\r\n" +
				words + "\r\n\r\nOn Tue, Maria wrote:\r\n> jane answered on #1\r\n"
			res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		for _, c := range []struct{ from, to, id string }{
			{"Maria <maria@help.example>", "n0@help.example", "a1@help.example"},
			{"Maria <maria@help.example>", "n1@help.example", "a2@help.example"}, // a digest: names no ticket
			{"someone@else.example", "n0@help.example", "a3@else.example"},
		} {
			if res := answer(c.from, c.to, c.id, "I'll call her back today."); res.Outcome != ingest.Ignored || res.TicketID != 0 {
				t.Errorf("%s answering %s: %s on ticket %d, want ignored", c.from, c.to, res.Outcome, res.TicketID)
			}
		}
		// An answer to a digest that names its ticket: a note there.
		answer("Maria <maria@help.example>", "n1@help.example", "a4@help.example", fmt.Sprintf("Please resend #%d to carl@customer.example.", first.TicketID))
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 1 {
			t.Errorf("%d tickets, want 1", n)
		}
		notes, err := db.TicketNotes(ctx, first.TicketID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range notes {
			if n.Kind == store.NoteInternal {
				got = append(got, n.Body)
			}
		}
		if want := []string{"maria@help.example answered a notification email:\n\nI'll call her back today.",
			fmt.Sprintf("maria@help.example answered a notification email:\n\nPlease resend #%d to carl@customer.example.", first.TicketID)}; !slices.Equal(got, want) {
			t.Errorf("internal notes %q, want %q", got, want)
		}
	})
}

// One email addressed to two of our mailboxes (To support@, Cc sales@) is
// delivered to each: it is one ticket, acknowledged once, whichever
// mailbox fetches it first; the other keeps its copy as a duplicate. A
// different email under the same Message-ID, and copies sent Bcc to both
// (neither names the other mailbox), are their own.
func TestOneEmailToTwoMailboxes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		support := sendingMailbox(t, db, "support@example.com")
		sales := sendingMailbox(t, db, "sales@example.com")
		var acked []int64
		in := ingest.New(db, ingest.Options{Acknowledge: func(ctx context.Context, tx *store.Tx, ticketID int64, m store.Message) (bool, error) {
			acked = append(acked, ticketID)
			return true, nil
		}})
		email := func(id, to, cc, subject, body string) string {
			return "Delivered-To: " + to + "\r\nFrom: Ann <ann@customer.test>\r\nTo: " + to + "\r\nCc: " + cc + "\r\nSubject: " + subject +
				"\r\nDate: Tue, 01 Dec 2026 09:00:00 +0000\r\nMessage-ID: <" + id + "@customer.test>\r\n\r\n" + body + "\r\n"
		}
		ingestTo := func(mb store.Mailbox, raw string) ingest.Result {
			t.Helper()
			res, err := in.Ingest(ctx, mb, strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		// The server's copy for each mailbox differs (its own Delivered-To).
		first := ingestTo(support, email("q1", "support@example.com", "sales@example.com", "Quote please", "How much for 10?"))
		second := ingestTo(sales, "X-Copy: sales\r\n"+email("q1", "support@example.com", "sales@example.com", "Quote please", "How much for 10?"))
		if first.Outcome != ingest.NewTicket || second.Outcome != ingest.Duplicate || second.TicketID != first.TicketID {
			t.Errorf("support then sales: %s %d, %s %d; want one ticket", first.Outcome, first.TicketID, second.Outcome, second.TicketID)
		}
		if !strings.Contains(strings.Join(second.Decisions, "; "), "also sent to support@example.com") {
			t.Errorf("the duplicate's reasons: %q", second.Decisions)
		}
		// The other order.
		first = ingestTo(sales, email("q2", "sales@example.com", "support@example.com", "Invoice", "Please resend it."))
		second = ingestTo(support, email("q2", "sales@example.com", "support@example.com", "Invoice", "Please resend it."))
		if first.Outcome != ingest.NewTicket || second.Outcome != ingest.Duplicate || second.TicketID != first.TicketID {
			t.Errorf("sales then support: %s %d, %s %d; want one ticket", first.Outcome, first.TicketID, second.Outcome, second.TicketID)
		}
		// Whichever fetches first, the ticket is the mailbox's it is
		// addressed To (its replies and acknowledgement go from there).
		toSupport := ingestTo(sales, email("q4", "support@example.com", "sales@example.com", "Licence", "Renew it."))
		if dup := ingestTo(support, email("q4", "support@example.com", "sales@example.com", "Licence", "Renew it.")); dup.Outcome != ingest.Duplicate {
			t.Errorf("q4 in support@: %s", dup.Outcome)
		}
		// The customer answers all (To support@, Cc sales@), naming their
		// first email: it joins the ticket once, in whichever order.
		reply := func(id, inReplyTo string) string {
			return strings.Replace(email(id, "support@example.com", "sales@example.com", "Re: Licence", "Any news?"), "\r\n\r\n",
				"\r\nIn-Reply-To: <"+inReplyTo+"@customer.test>\r\n\r\n", 1)
		}
		for i, order := range [][]store.Mailbox{{support, sales}, {sales, support}} {
			id := fmt.Sprintf("q4-reply-%d", i)
			for _, mb := range order {
				if res := ingestTo(mb, reply(id, "q4")); res.TicketID != toSupport.TicketID {
					t.Errorf("the answer %s in %s: %s on ticket %d, want ticket %d", id, mb.Address, res.Outcome, res.TicketID, toSupport.TicketID)
				}
			}
		}
		if msgs, err := db.TicketMessages(ctx, toSupport.TicketID); err != nil || len(msgs) != 3 {
			t.Errorf("ticket %d has %d messages (%v), want the email and two answers once each", toSupport.TicketID, len(msgs), err)
		}
		for id, want := range map[int64]store.Mailbox{toSupport.TicketID: support, first.TicketID: sales} {
			if tk, err := db.Ticket(ctx, id); err != nil || tk.MailboxID != want.ID {
				t.Errorf("ticket %d belongs to mailbox %d (%v), want %s's", id, tk.MailboxID, err, want.Address)
			}
		}
		// Fetched again (a reset checkpoint): still a duplicate in each.
		for _, mb := range []store.Mailbox{support, sales} {
			if res := ingestTo(mb, email("q2", "sales@example.com", "support@example.com", "Invoice", "Please resend it.")); res.Outcome != ingest.Duplicate {
				t.Errorf("%s again: %s", mb.Address, res.Outcome)
			}
		}
		// Another email under q2's Message-ID, and a Bcc copy of a third.
		if res := ingestTo(support, strings.Replace(email("q2", "support@example.com", "sales@example.com", "Server down", "Call me."), "Ann <ann@customer.test>", "bob@other.test", 1)); res.Outcome != ingest.NewTicket {
			t.Errorf("another email under a Message-ID sales@ has: %s", res.Outcome)
		}
		// Bcc to both: neither copy names the other mailbox (a Bcc to
		// sales@ of an email To support@ does, and is found).
		ingestTo(support, email("q3", "bea@customer.test", "ann@customer.test", "Bcc", "Hello."))
		if res := ingestTo(sales, email("q3", "bea@customer.test", "ann@customer.test", "Bcc", "Hello.")); res.Outcome != ingest.NewTicket {
			t.Errorf("copies Bcc to both (they name neither): %s, want its own ticket", res.Outcome)
		}
		n, err := db.CountTickets(ctx, store.TicketFilter{})
		if err != nil || n != 6 || len(acked) != 6 {
			t.Errorf("%d tickets (%v), %d acknowledgements; want 6 and 6", n, err, len(acked))
		}
	})
}
