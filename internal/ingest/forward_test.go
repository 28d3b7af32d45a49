package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

var recoveryNow = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// customerMail is the customer's original email, as the mailbox would have
// received it directly.
func customerMail(sent time.Time) string {
	return "From: Ann Customer <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Broken blender\r\n" +
		"Date: " + sent.Format(time.RFC1123Z) + "\r\nMessage-ID: <orig-1@customer.example>\r\n\r\nMy blender broke on day two.\r\n"
}

// otherCustomerMail is another customer's email, about something else.
func otherCustomerMail(sent time.Time) string {
	return strings.NewReplacer("ann@", "bo@", "Ann", "Bo", "orig-1@", "other-1@", "blender", "kettle").Replace(customerMail(sent))
}

// gmailForward is an agent's inline Gmail forward of the customer's email.
func gmailForward(from, msgID string, sent, orig time.Time) string {
	return "From: " + from + "\r\nTo: support@example.com\r\nSubject: Fwd: Broken blender\r\nDate: " + sent.Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + msgID + ">\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" +
		"Found this in my personal inbox, the mailbox was down that day.\r\n\r\n" +
		"---------- Forwarded message ---------\r\n" +
		"From: Ann Customer <ann@customer.example>\r\n" +
		"Date: " + orig.Format("Mon, Jan 2, 2006 at 3:04\u202fPM") + "\r\n" +
		"Subject: Broken blender\r\nTo: <support@example.com>\r\n\r\n\r\nMy blender broke on day two.\r\n"
}

func recoverySetup(t *testing.T, db *store.DB) (store.Mailbox, *ingest.Ingester) {
	t.Helper()
	ctx := context.Background()
	mb := newMailbox(t, db, "support@example.com")
	err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{Email: "agent@example.com", Role: store.RoleAgent, PasswordHash: "x"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb, ingest.New(db, ingest.Options{Now: func() time.Time { return recoveryNow }})
}

func TestForwardRecoveryEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-3 * 24 * time.Hour).Truncate(time.Minute)

		// The mailbox was broken; 3 days later the agent forwards the email.
		res, err := in.Ingest(ctx, mb, strings.NewReader(gmailForward("Agent <agent@example.com>", "fwd-1@example.com", recoveryNow, sent)))
		if err != nil || res.Outcome != ingest.Recovered || res.Class != "forward_recovery" {
			t.Fatalf("forward: %+v %v", res, err)
		}
		tk, err := db.Ticket(ctx, res.TicketID)
		if err != nil || tk.RequesterAddress != "ann@customer.example" || tk.RequesterName != "Ann Customer" ||
			!tk.CreatedAt.Equal(sent) || tk.Subject != "Broken blender" {
			t.Fatalf("ticket = %+v %v (want from ann, created %s)", tk, err, sent)
		}
		msgs, _ := db.TicketMessages(ctx, tk.ID)
		if len(msgs) != 1 || msgs[0].FromAddress != "ann@customer.example" || msgs[0].RecoveredBy != "agent@example.com" ||
			!strings.Contains(msgs[0].TextBody, "blender broke") || msgs[0].RawSHA256 == "" {
			t.Fatalf("recovered message = %+v", msgs)
		}
		notes, _ := db.TicketNotes(ctx, tk.ID)
		var sawWords, sawEvent bool
		for _, n := range notes {
			sawWords = sawWords || (n.Kind == store.NoteInternal && strings.Contains(n.Body, "mailbox was down") && n.AuthorEmail == "agent@example.com")
			sawEvent = sawEvent || (n.Kind == store.NoteEvent && strings.Contains(n.Body, "Recovered from a forward by agent@example.com"))
		}
		if !sawWords || !sawEvent {
			t.Fatalf("notes = %+v", notes)
		}

		// The same forward again (e.g. re-fetched): a plain duplicate.
		again, err := in.Ingest(ctx, mb, strings.NewReader(gmailForward("Agent <agent@example.com>", "fwd-1@example.com", recoveryNow, sent)))
		if err != nil || again.Outcome != ingest.Duplicate || again.TicketID != tk.ID {
			t.Fatalf("same forward again: %+v %v", again, err)
		}
		// Forwarded again (a new forward of the same email): nothing new, a note.
		again, err = in.Ingest(ctx, mb, strings.NewReader(gmailForward("Agent <agent@example.com>", "fwd-2@example.com", recoveryNow.Add(time.Hour), sent)))
		if err != nil || again.Outcome != ingest.Duplicate || again.TicketID != tk.ID {
			t.Fatalf("forwarded twice: %+v %v", again, err)
		}
		// The mailbox catches up on the original later: nothing new either.
		late, err := in.Ingest(ctx, mb, strings.NewReader(customerMail(sent)))
		if err != nil || late.Outcome != ingest.Duplicate || late.TicketID != tk.ID {
			t.Fatalf("original caught up later: %+v %v", late, err)
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 1 {
			t.Fatalf("%d tickets, want 1", n)
		}
		if msgs, _ := db.TicketMessages(ctx, tk.ID); len(msgs) != 1 {
			t.Fatalf("ticket shows %d messages, want the original once", len(msgs))
		}
	})
}

// The original arrived first; a forward of it later creates nothing.
func TestForwardOfMailWeHave(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-2 * 24 * time.Hour).Truncate(time.Minute)
		first, err := in.Ingest(ctx, mb, strings.NewReader(customerMail(sent)))
		if err != nil || first.Outcome != ingest.NewTicket {
			t.Fatal(first, err)
		}
		res, err := in.Ingest(ctx, mb, strings.NewReader(gmailForward("agent@example.com", "fwd-9@example.com", recoveryNow, sent)))
		if err != nil || res.Outcome != ingest.Duplicate || res.TicketID != first.TicketID {
			t.Fatalf("forward of stored mail: %+v %v", res, err)
		}
	})
}

func TestForwardRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)

		// From someone who is not an agent: their own email.
		res, err := in.Ingest(ctx, mb, strings.NewReader(gmailForward("Mallory <mallory@evil.example>", "m-1@evil.example", recoveryNow, recoveryNow.Add(-time.Hour))))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("non-agent forward: %+v %v", res, err)
		}
		if tk, _ := db.Ticket(ctx, res.TicketID); tk.RequesterAddress != "mallory@evil.example" {
			t.Fatalf("non-agent forward attributed to %s", tk.RequesterAddress)
		}

		// Older than the 14-day window: the agent's ticket, with a note why.
		old := recoveryNow.Add(-20 * 24 * time.Hour)
		res, err = in.Ingest(ctx, mb, strings.NewReader(gmailForward("agent@example.com", "old-1@example.com", recoveryNow, old)))
		if err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("old forward: %+v %v", res, err)
		}
		tk, _ := db.Ticket(ctx, res.TicketID)
		notes, _ := db.TicketNotes(ctx, tk.ID)
		if tk.RequesterAddress != "agent@example.com" || len(notes) != 1 || !strings.Contains(notes[0].Body, "older than the 14-day recovery window") {
			t.Fatalf("old forward: ticket %+v notes %+v", tk, notes)
		}

		// From the support address itself: recovered too.
		res, err = in.Ingest(ctx, mb, strings.NewReader(strings.Replace(
			gmailForward("support@example.com", "self-1@example.com", recoveryNow, recoveryNow.Add(-time.Hour)), "Broken blender", "Kettle leaks", -1)))
		if err != nil || res.Outcome != ingest.Recovered {
			t.Fatalf("forward from the support address: %+v %v", res, err)
		}
	})
}

// The original replies to an existing ticket: it joins it.
func TestForwardedReplyJoinsTicket(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		first, _ := in.Ingest(ctx, mb, strings.NewReader(customerMail(recoveryNow.Add(-5*24*time.Hour))))
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.SetTicketStatus(ctx, first.TicketID, store.StatusSolved, recoveryNow.Add(-time.Hour))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		fwd := gmailForward("agent@example.com", "fwd-r@example.com", recoveryNow, recoveryNow.Add(-24*time.Hour))
		fwd = strings.Replace(fwd, "Subject: Broken blender\r\nTo:", fmt.Sprintf("Subject: Re: [#%d] Broken blender\r\nTo:", first.TicketID), 1)
		res, err := in.Ingest(ctx, mb, strings.NewReader(fwd))
		if err != nil || res.Outcome != ingest.RecoveredJoined || res.TicketID != first.TicketID {
			t.Fatalf("forwarded reply: %+v %v", res, err)
		}
		// The recovered answer reopens the solved ticket, and says whose
		// forward it came from.
		tk, _ := db.Ticket(ctx, first.TicketID)
		notes, _ := db.TicketNotes(ctx, first.TicketID)
		want := "Status changed from solved to open by an email from ann@customer.example recovered from a forward by agent@example.com"
		if tk.Status != store.StatusOpen || !slices.ContainsFunc(notes, func(n store.Note) bool { return n.Body == want && n.Kind == store.NoteEvent }) {
			t.Errorf("after the recovered answer: status %s, notes %+v; want open and %q", tk.Status, notes, want)
		}
	})
}

// An agent forwards the customer's email as an attachment (message/rfc822):
// the recovered email keeps the original's own file, readable, on both
// databases; the original arriving directly later is a duplicate. Before,
// the file was dropped (it lies inside the original's part, and only the
// forward's own parts were kept), and with the duplicate it was lost.
func TestForwardAsAttachmentKeepsTheOriginalsFiles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-2 * 24 * time.Hour).Truncate(time.Minute)
		png := bytes.Repeat([]byte("\x89PNG fake image bytes "), 200)
		original := "From: Ann Customer <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Broken blender\r\n" +
			"Date: " + sent.Format(time.RFC1123Z) + "\r\nMessage-ID: <orig-att@customer.example>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nMy blender broke, photo attached.\r\n" +
			"--in\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=blender.png\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64Lines(png) + "--in--\r\n"
		forward := "From: Agent <agent@example.com>\r\nTo: support@example.com\r\nSubject: Fwd: Broken blender\r\n" +
			"Date: " + recoveryNow.Format(time.RFC1123Z) + "\r\nMessage-ID: <fwd-att@example.com>\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: text/plain\r\n\r\nThe mailbox was down.\r\n" +
			"--out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"Broken blender.eml\"\r\n\r\n" +
			original + "\r\n--out--\r\n"
		res, err := in.Ingest(ctx, mb, strings.NewReader(forward))
		if err != nil || res.Outcome != ingest.Recovered {
			t.Fatalf("forward: %+v %v", res, err)
		}
		check := func(when string) {
			t.Helper()
			msgs, err := db.TicketMessages(ctx, res.TicketID)
			if err != nil || len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Filename != "blender.png" {
				t.Fatalf("%s: recovered message %+v %v, want one attachment blender.png", when, msgs, err)
			}
			f, err := db.OpenAttachment(ctx, msgs[0].Attachments[0])
			if err != nil {
				t.Fatalf("%s: open the attachment: %v", when, err)
			}
			got, err := io.ReadAll(f)
			f.Close()
			if err != nil || !bytes.Equal(got, png) {
				t.Fatalf("%s: attachment content %d bytes %v, want the original's %d", when, len(got), err, len(png))
			}
		}
		check("after the forward")
		late, err := in.Ingest(ctx, mb, strings.NewReader(original))
		if err != nil || late.Outcome != ingest.Duplicate || late.TicketID != res.TicketID {
			t.Fatalf("original caught up later: %+v %v", late, err)
		}
		check("after the original came")
	})
}

// base64Lines is data in base64, 76 characters a line.
func base64Lines(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

// An agent forwards to support@ what reached sales@ while sales@ was
// broken: when sales@ catches up, the original is the same email, not a
// second ticket, also when Outlook dated the forward in UTC while its
// header block says the forwarder's local time; a forward of an email
// sales@ already has joins that ticket. A different email with the same
// subject an hour later is still a ticket of its own.
func TestForwardRecoveryAcrossMailboxes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		support, in := recoverySetup(t, db)
		sales := newMailbox(t, db, "sales@example.com")
		paris, err := time.LoadLocation("Europe/Paris")
		if err != nil {
			t.Skip("no time zone data:", err)
		}
		sent := time.Date(2026, 11, 18, 13, 45, 21, 0, paris)

		// The header block says 1:45 PM (Paris); the forward's Date is UTC.
		fwd, err := in.Ingest(ctx, support, strings.NewReader(gmailForward("Agent <agent@example.com>", "fwd-x@example.com", recoveryNow, sent)))
		if err != nil || fwd.Outcome != ingest.Recovered {
			t.Fatalf("forward: %+v %v", fwd, err)
		}
		late, err := in.Ingest(ctx, sales, strings.NewReader(customerMail(sent)))
		if err != nil || late.Outcome != ingest.Duplicate || late.TicketID != fwd.TicketID {
			t.Fatalf("the original reaching sales@ later: %+v %v, want a duplicate of ticket %d", late, err, fwd.TicketID)
		}
		other := strings.Replace(strings.Replace(customerMail(sent.Add(time.Hour)), "orig-1@", "orig-2@", 1), "My blender broke on day two.", "Also, the lid is cracked.", 1)
		if res, err := in.Ingest(ctx, sales, strings.NewReader(other)); err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("another email with the same subject an hour later: %+v %v, want a new ticket", res, err)
		}

		// sales@ has Ben's email; an agent forwards it (attached) to support@.
		ben := "From: Ben <ben@customer.example>\r\nTo: sales@example.com\r\nSubject: Quote\r\nDate: " + recoveryNow.Add(-time.Hour).Format(time.RFC1123Z) +
			"\r\nMessage-ID: <ben-1@customer.example>\r\n\r\nPlease send a quote.\r\n"
		first, err := in.Ingest(ctx, sales, strings.NewReader(ben))
		if err != nil || first.Outcome != ingest.NewTicket {
			t.Fatalf("Ben's email: %+v %v", first, err)
		}
		again, err := in.Ingest(ctx, support, strings.NewReader(attachedForward("fwd-ben@example.com", "Fwd: Quote", "FYI", ben)))
		if err != nil || again.Outcome != ingest.Duplicate || again.TicketID != first.TicketID {
			t.Fatalf("forward of an email sales@ has: %+v %v, want on ticket %d", again, err, first.TicketID)
		}
		// Cara's email, forwarded as an attachment to support@ first, then
		// fetched by sales@ once it works again: the same email.
		cara := "From: Cara <cara@customer.example>\r\nTo: sales@example.com\r\nSubject: Refund\r\nDate: " + recoveryNow.Add(-2*time.Hour).Format(time.RFC1123Z) +
			"\r\nMessage-ID: <cara-1@customer.example>\r\n\r\nMy refund please.\r\n"
		rec, err := in.Ingest(ctx, support, strings.NewReader(attachedForward("fwd-cara@example.com", "Fwd: Refund", "FYI", cara)))
		if err != nil || rec.Outcome != ingest.Recovered {
			t.Fatalf("forward of Cara's email: %+v %v", rec, err)
		}
		caught, err := in.Ingest(ctx, sales, strings.NewReader(cara))
		if err != nil || caught.Outcome != ingest.Duplicate || caught.TicketID != rec.TicketID {
			t.Fatalf("Cara's email reaching sales@ later: %+v %v, want a duplicate of ticket %d", caught, err, rec.TicketID)
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 4 {
			t.Errorf("%d tickets, want 4 (Ann's, Ann's second email, Ben's, Cara's)", n)
		}
	})
}

// Outlook's "Forward as attachment" of several emails at once: each
// original is filed as its sender's (only the first was, and the others
// were lost); one too old to recover is named in a note; an original
// arriving directly later is a duplicate; new tickets are told as events.
func TestForwardOfSeveralAttachedOriginals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		email := func(from, subject, id, text string, sent time.Time) string {
			return "From: " + from + "\r\nTo: support@example.com\r\nSubject: " + subject + "\r\nDate: " + sent.Format(time.RFC1123Z) +
				"\r\nMessage-ID: <" + id + ">\r\n\r\n" + text + "\r\n"
		}
		ann := email("Ann <ann@customer.example>", "Blender", "ann-1@customer.example", "It broke.", recoveryNow.Add(-time.Hour))
		ben := email("Ben <ben@other.example>", "Toaster", "ben-1@other.example", "It burns.", recoveryNow.Add(-2*time.Hour))
		old := email("Carl <carl@old.example>", "Kettle", "carl-1@old.example", "It leaks.", recoveryNow.Add(-20*24*time.Hour))
		fwd := attachedForward("fwd-3@example.com", "FW: three emails", "These came in while the mailbox was down.", ann, ben, old)
		before, err := db.LastEventID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := in.Ingest(ctx, mb, strings.NewReader(fwd))
		if err != nil || res.Outcome != ingest.Recovered {
			t.Fatalf("forward: %+v %v", res, err)
		}
		list, err := db.Tickets(ctx, store.TicketFilter{})
		if err != nil {
			t.Fatal(err)
		}
		requesters := map[string]int64{}
		for _, tk := range list {
			requesters[tk.RequesterAddress] = tk.ID
		}
		if len(list) != 2 || requesters["ann@customer.example"] != res.TicketID || requesters["ben@other.example"] == 0 {
			t.Fatalf("tickets %+v, want Ann's and Ben's", list)
		}
		msgs, err := db.TicketMessages(ctx, requesters["ben@other.example"])
		if err != nil || len(msgs) != 1 || !strings.Contains(msgs[0].TextBody, "It burns") || msgs[0].RecoveredBy != "agent@example.com" {
			t.Fatalf("Ben's ticket: %+v %v", msgs, err)
		}
		benNotes, err := db.TicketNotes(ctx, requesters["ben@other.example"])
		if err != nil {
			t.Fatal(err)
		}
		var words bool
		for _, n := range benNotes {
			words = words || (n.Kind == store.NoteInternal && strings.Contains(n.Body, "These came in while the mailbox was down."))
		}
		if !words {
			t.Errorf("Ben's ticket lacks the agent's words: %+v", benNotes)
		}
		notes, err := db.TicketNotes(ctx, res.TicketID)
		if err != nil {
			t.Fatal(err)
		}
		var carl bool
		for _, n := range notes {
			carl = carl || (strings.Contains(n.Body, "carried another email too") && strings.Contains(n.Body, "carl@old.example"))
		}
		if !carl {
			t.Errorf("no note about Carl's email, too old to recover: %+v", notes)
		}
		evs, err := db.EventsSince(ctx, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		created := map[int64]bool{}
		for _, e := range evs {
			if e.Kind == store.EventTicketCreated {
				created[e.TicketID] = true
			}
		}
		if !created[res.TicketID] || !created[requesters["ben@other.example"]] || len(evs) != 2 {
			t.Errorf("events %+v, want ticket.created for Ann's and Ben's", evs)
		}
		late, err := in.Ingest(ctx, mb, strings.NewReader(ben))
		if err != nil || late.Outcome != ingest.Duplicate || late.TicketID != requesters["ben@other.example"] {
			t.Fatalf("Ben's email arriving directly later: %+v %v", late, err)
		}
		again, err := in.Ingest(ctx, mb, strings.NewReader(fwd))
		if err != nil || again.Outcome != ingest.Duplicate {
			t.Fatalf("the same forward again: %+v %v", again, err)
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 2 {
			t.Errorf("%d tickets, want 2", n)
		}
	})
}

// Anyone can write an agent's or a customer's address in From. When the
// receiving server's Authentication-Results (the topmost) say the email
// failed its checks, an agent's "forward" is a stranger's email (it filed
// any text as any customer's, signed by the agent), and a subject naming a
// ticket does not join it (the next reply copied the forger's Cc). Mail
// that passed, or carries no results, is trusted as before.
func TestForgedSenderGainsNoTrust(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-24 * time.Hour)
		forged := "Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=evil.test; dmarc=fail (p=reject) header.from=example.com\r\n"
		passed := "Authentication-Results: mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n"

		res, err := in.Ingest(ctx, mb, strings.NewReader(forged+gmailForward("Agent <agent@example.com>", "forged-1@evil.test", recoveryNow, sent)))
		if err != nil || res.Outcome != ingest.NewTicket || res.Class == "forward_recovery" {
			t.Fatalf("forged agent forward: %+v %v, want a new ticket of its own", res, err)
		}
		if tk, _ := db.Ticket(ctx, res.TicketID); tk.RequesterAddress == "ann@customer.example" {
			t.Fatalf("the forged forward was filed as the customer's")
		}
		ok, err := in.Ingest(ctx, mb, strings.NewReader(passed+gmailForward("Agent <agent@example.com>", "real-1@example.com", recoveryNow, sent)))
		if err != nil || ok.Outcome != ingest.Recovered {
			t.Fatalf("the agent's real forward: %+v %v", ok, err)
		}

		tag := fmt.Sprintf("[#%d]", ok.TicketID)
		followUp := func(trace, id string) ingest.Result {
			t.Helper()
			raw := trace + "From: Ann Customer <ann@customer.example>\r\nCc: \"Ann (home)\" <attacker@evil.test>\r\nTo: support@example.com\r\nSubject: Re: Broken blender " + tag +
				"\r\nDate: " + recoveryNow.Format(time.RFC1123Z) + "\r\nMessage-ID: <" + id + ">\r\n\r\nPlease copy my home address.\r\n"
			r, err := in.Ingest(ctx, mb, strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := followUp(forged, "f1@evil.test"); r.Outcome != ingest.NewTicket || r.TicketID == ok.TicketID {
			t.Errorf("a forged follow-up naming %s: %s on ticket %d, want a ticket of its own", tag, r.Outcome, r.TicketID)
		}
		if r := followUp("", "f2@customer.example"); r.Outcome != ingest.Joined || r.TicketID != ok.TicketID {
			t.Errorf("the customer's follow-up without results: %s on ticket %d, want joined to %d", r.Outcome, r.TicketID, ok.TicketID)
		}
	})
}

// Two emails alike but for their Message-IDs (an hourly alert) are two
// emails: the 08:00 one arriving directly is not the twin of the 07:00
// one an agent forwarded as an attachment (it was dropped as a duplicate).
func TestRecoveredTwinNeedsTheSameMessageID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		alert := func(id string, at time.Time, pct int) string {
			return "From: monitor@customer.example\r\nTo: support@example.com\r\nSubject: Disk alert on web1\r\nDate: " + at.Format(time.RFC1123Z) +
				"\r\nMessage-ID: <" + id + ">\r\n\r\nDisk usage on web1 is high: " + strconv.Itoa(pct) + " percent.\r\n"
		}
		seven := recoveryNow.Add(-3 * time.Hour).Truncate(time.Hour)
		fwd := attachedForward("fwd-alert@example.com", "Fwd: alert", "FYI", alert("a7@monitor.example", seven, 91))
		if res, err := in.Ingest(ctx, mb, strings.NewReader(fwd)); err != nil || res.Outcome != ingest.Recovered {
			t.Fatalf("forward: %+v %v", res, err)
		}
		if res, err := in.Ingest(ctx, mb, strings.NewReader(alert("a8@monitor.example", seven.Add(time.Hour), 99))); err != nil || res.Outcome != ingest.NewTicket {
			t.Fatalf("the 08:00 alert: %+v %v, want a ticket of its own", res, err)
		}
	})
}

// attachedForward is the agent's forward, at recoveryNow, of originals
// attached as message/rfc822 parts below their note (Outlook's "Forward
// as attachment").
func attachedForward(messageID, subject, note string, originals ...string) string {
	raw := "From: Agent <agent@example.com>\r\nTo: support@example.com\r\nSubject: " + subject + "\r\nDate: " + recoveryNow.Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + messageID + ">\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" + note + "\r\n"
	for _, o := range originals {
		raw += "--b\r\nContent-Type: message/rfc822\r\n\r\n" + o + "\r\n"
	}
	return raw + "--b--\r\n"
}

// A forward and, after it in the same batch, the original it recovers (a
// mailbox catching up on both), after an unrelated email: the original is the recovered one's
// duplicate, though the batch began with no recovered email stored (on
// SQLite the transaction remembers what it stored: MayHoldRecovered).
func TestForwardAndOriginalInOneBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-3 * 24 * time.Hour).Truncate(time.Minute)
		other := otherCustomerMail(sent)
		res, err := applyBatch(t, db, in, mb, other, gmailForward("Agent <agent@example.com>", "fwd-1@example.com", recoveryNow, sent), customerMail(sent))
		if err != nil || len(res) != 3 {
			t.Fatalf("batch: %+v %v", res, err)
		}
		if res[0].Outcome != ingest.NewTicket || res[1].Outcome != ingest.Recovered || res[2].Outcome != ingest.Duplicate || res[2].TicketID != res[1].TicketID {
			t.Fatalf("another email, a forward, its original = %+v, want a new ticket, recovered, then its duplicate", res)
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 2 {
			t.Fatalf("%d tickets, want 2", n)
		}
	})
}

// An agent added while the ingester runs forwards a customer's email at
// once, before the parse's copy of our addresses (read once a second) has
// them: the transaction finds the sender an agent, the forward is searched
// then, the original recovered, and the original arriving later is its
// duplicate, not a second ticket.
func TestForwardByAgentAddedThisSecond(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		sent := recoveryNow.Add(-3 * 24 * time.Hour).Truncate(time.Minute)
		other := otherCustomerMail(sent)
		if _, err := in.Ingest(ctx, mb, strings.NewReader(other)); err != nil {
			t.Fatal(err)
		}
		err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateUser(ctx, store.User{Email: "new@example.com", Role: store.RoleAgent, PasswordHash: "x"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := in.Ingest(ctx, mb, strings.NewReader(gmailForward("New Agent <new@example.com>", "fwd-9@example.com", recoveryNow, sent)))
		if err != nil || res.Outcome != ingest.Recovered {
			t.Errorf("forward by an agent added just before: %+v %v, want recovered", res, err)
		}
		orig, err := in.Ingest(ctx, mb, strings.NewReader(customerMail(sent)))
		if err != nil || orig.Outcome != ingest.Duplicate || orig.TicketID != res.TicketID {
			t.Errorf("the original after its forward: %+v %v, want a duplicate of the recovered one", orig, err)
		}
	})
}

// A batch's duplicate checks are one statement (store's
// PrefetchDedupeKeys): an email stored before, an email twice in the
// batch, and a different email under a Message-ID the batch stores are
// still told apart.
func TestDuplicatesInOneBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		mb, in := recoverySetup(t, db)
		mail := func(id, from, body string) string {
			return "From: " + from + "\r\nTo: support@example.com\r\nSubject: About " + id + "\r\n" +
				"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@customer.example>\r\n\r\n" + body + "\r\n"
		}
		before := mail("c", "carl@customer.example", "stored before the batch")
		if _, err := in.Ingest(ctx, mb, strings.NewReader(before)); err != nil {
			t.Fatal(err)
		}
		a := mail("a", "ann@customer.example", "the first email")
		batch := []string{a, mail("b", "bob@customer.example", "another"), a, before, mail("a", "dan@customer.example", "a different email, the same Message-ID")}
		res, err := applyBatch(t, db, in, mb, batch...)
		if err != nil || len(res) != len(batch) {
			t.Fatalf("batch: %+v %v", res, err)
		}
		want := []ingest.Outcome{ingest.NewTicket, ingest.NewTicket, ingest.Duplicate, ingest.Duplicate, ingest.NewTicket}
		for i, r := range res {
			if r.Outcome != want[i] {
				t.Errorf("email %d: %s (%s), want %s", i, r.Outcome, r.Reason, want[i])
			}
		}
		if res[2].TicketID != res[0].TicketID {
			t.Errorf("the second copy of an email: ticket %d, want %d", res[2].TicketID, res[0].TicketID)
		}
		if n, _ := db.CountTickets(ctx, store.TicketFilter{}); n != 4 {
			t.Errorf("%d tickets, want 4", n)
		}
	})
}

// applyBatch prepares raws and applies them as one batch in one
// transaction, as mail sync does.
func applyBatch(t *testing.T, db *store.DB, in *ingest.Ingester, mb store.Mailbox, raws ...string) ([]ingest.Result, error) {
	t.Helper()
	ctx := context.Background()
	ps := prepareAll(t, in, raws...)
	var res []ingest.Result
	err := db.Write(ctx, func(tx *store.Tx) (err error) {
		res, err = in.ApplyBatch(ctx, tx, mb, ps)
		return err
	})
	return res, err
}

// prepareAll stores and parses raws (Ingester.Prepare).
func prepareAll(t *testing.T, in *ingest.Ingester, raws ...string) []*ingest.Prepared {
	t.Helper()
	var ps []*ingest.Prepared
	for _, raw := range raws {
		p, err := in.Prepare(context.Background(), strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}
