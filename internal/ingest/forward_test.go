package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
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
