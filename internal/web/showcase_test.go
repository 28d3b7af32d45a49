package web

import (
	"context"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// seedShowcase fills the database with a realistic helpdesk: a few
// tickets in every state, and one conversation with HTML mail, a reply,
// notes, an auto-reply, attachments and a parse problem (e.showcaseID).
func seedShowcase(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	var billing store.Mailbox
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		billing, err = tx.CreateMailbox(ctx, "billing@example.com", "Billing")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range []store.Ticket{
		{Subject: "Refund for order #4471", RequesterName: "Jonas Berg", RequesterAddress: "jonas.berg@kundenmail.test", MailboxID: billing.ID, Status: store.StatusPending},
		{Subject: "Weekly product digest", RequesterName: "Acme Newsletter", RequesterAddress: "news@acme-mail.test", Bulk: true, Status: store.StatusSolved},
		{Subject: "Can't log in after password reset", RequesterName: "Priya Raman", RequesterAddress: "priya@raman-consulting.test"},
		{Subject: "Invoice address needs to change before the next billing run at the end of the month", RequesterAddress: "accounts@bigcorp.test", MailboxID: billing.ID},
	} {
		tk.CreatedAt = now.Add(-time.Duration(30*(i+1)) * time.Hour)
		e.ticket(tk, store.Message{TextBody: "Hello,\n\nsee subject.\n\nThanks"})
	}
	id, _ := e.ticket(store.Ticket{Subject: "Printer on fire (again)", RequesterName: "Ann Smith", RequesterAddress: "ann@customer.test", CreatedAt: now.Add(-3 * time.Hour)},
		store.Message{
			SentAt: now.Add(-3 * time.Hour), To: "Support <support@example.com>", Cc: "Bob Lee <bob@customer.test>",
			TextBody: "Hi,\n\nour office printer caught fire again this morning.\nPhotos attached.\n\nAnn",
			HTMLBody: `<div style="font-family:Arial"><p>Hi,</p><p>our office printer <b>caught fire</b> again this morning. Photos attached.</p>` +
				`<p><img src="cid:logo@x" alt="Ann's logo" width="40" height="40"> <img src="https://tracker.example/open.gif" width="1" height="1"></p>` +
				`<blockquote>On Monday you wrote:<br>Have you tried turning it off and on again?</blockquote><p>Ann Smith<br>Office manager</p></div>`,
			Problems: []string{"part 3 (winmail.dat): unknown transfer encoding"},
			Attachments: []store.Attachment{
				{Filename: "printer-front.jpg", ContentType: "image/jpeg", Size: 284_113, SHA256: e.blob("jpeg-front")},
				{Filename: "Rapport d'incident été.pdf", ContentType: "application/pdf", Size: 1_203_881, SHA256: e.blob("%PDF-1.7")},
				{Filename: "logo.png", ContentType: "image/png", Size: int64(len(tinyPNG)), SHA256: e.blob(tinyPNG), ContentID: "logo@x", Inline: true},
			},
		})
	err = e.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.AddNote(ctx, &store.Note{TicketID: id, Kind: store.NoteInternal, AuthorUserID: e.user.ID,
			Body: "Third time this month. Checking whether their model is on the recall list.", CreatedAt: now.Add(-150 * time.Minute)}); err != nil {
			return err
		}
		if err := tx.InsertMessage(ctx, &store.Message{MailboxID: e.mailbox.ID, TicketID: id, Direction: "out", Kind: store.KindReply,
			DedupeKey: "reply-1", FromAddress: "support@example.com", FromName: "Example Support", To: "ann@customer.test", AuthorUserID: e.user.ID,
			TextBody: "Hi Ann,\n\nplease unplug it and keep everyone away. A technician is on the way.\n\nBest,\nSupport", ReceivedAt: now.Add(-140 * time.Minute)}); err != nil {
			return err
		}
		if err := tx.InsertMessage(ctx, &store.Message{MailboxID: e.mailbox.ID, TicketID: id, Direction: "in", Kind: store.KindAutoReply,
			DedupeKey: "auto-1", FromAddress: "bob@customer.test", FromName: "Bob Lee", AutoReason: "Auto-Submitted: auto-replied",
			TextBody: "I am out of the office until Monday.", ReceivedAt: now.Add(-139 * time.Minute)}); err != nil {
			return err
		}
		return tx.AddNote(ctx, &store.Note{TicketID: id, Kind: store.NoteEvent, AuthorUserID: e.user.ID,
			Body: "Status changed from pending to open by agent@example.com", CreatedAt: now.Add(-100 * time.Minute)})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.showcaseID = id
	e.banners = []Banner{{Level: BannerWarning, Title: "support@example.com needs reauthentication in 6 days.",
		Text: "Mail stops arriving when its authorization runs out.", LinkURL: "/tickets", LinkText: "Reauthenticate"}}
}
