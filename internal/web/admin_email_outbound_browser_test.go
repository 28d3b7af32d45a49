package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/browsertest"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// TestBrowserOutboundSettings: in a real Chromium, Test connection of a
// new password mailbox signs in to the real Dovecot (IMAP over TLS) and
// the real Postfix submission (STARTTLS, AUTH through Dovecot) and shows
// each server's result, a wrong SMTP port beside its field; the mailbox's
// outbound settings (Sent copies, acknowledgement and its text, the
// signature) are edited on its page and saved, a mistyped placeholder is
// refused beside the text; the saved mailbox is tested again with its
// stored password; and its card shows how its replies go out.
func TestBrowserOutboundSettings(t *testing.T) {
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, TLS: true, PasswordUsers: map[string]string{helpAddr: helpPass}})
	db := storetest.Open(t, "sqlite")
	bg := context.Background()
	e := &env{t: t, db: db, logs: &logtest.Buffer{}}
	var err error
	if e.user, _, err = auth.CreateUser(bg, db, adminEmail, "Ada Admin", store.RoleAdmin, testPassword); err != nil {
		t.Fatal(err)
	}
	vault, err := store.NewVault(store.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	admin := desk.NewAdmin(db, vault, nil)
	admin.ProbeTLS = stack.TLSConfig()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.h, err = New(Options{DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test", Logger: log, Admin: admin}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	_, imapPort, _ := net.SplitHostPort(stack.IMAPSAddr)
	_, smtpPort, _ := net.SplitHostPort(stack.SubmissionAddr)

	ctx := browsertest.New(t)
	(&oauthEnv{env: e}).browserSignIn(t, ctx)

	// Test connection of a new mailbox: IMAP and SMTP, each in words.
	visit(t, ctx, e.srv.URL+"/admin/emails/new")
	if got := eval[bool](t, ctx, `document.getElementById('f-save_sent').checked && !document.getElementById('f-ack_enabled').checked`); !got {
		t.Error("a new password mailbox: Sent copies should be on and acknowledgements off")
	}
	closed := closedPortWeb(t)
	setFields(t, ctx, map[string]string{"f-address": helpAddr, "f-name": "Help", "f-imap_host": "127.0.0.1", "f-imap_port": imapPort,
		"f-smtp_host": "127.0.0.1", "f-smtp_port": fmt.Sprint(closed), "f-smtp_security": "starttls", "f-password": helpPass})
	if status := click(t, ctx, "#test-connection"); status != 422 {
		t.Errorf("test with a closed SMTP port: status %d", status)
	}
	if got := text(t, ctx, "#test-IMAP"); !strings.HasPrefix(got, "IMAP works "+stack.IMAPSAddr+" Signed in to "+stack.IMAPSAddr+" as "+helpAddr+" and found INBOX.") {
		t.Errorf("IMAP result = %q", got)
	}
	wantSMTP := fmt.Sprintf("Nothing answers at 127.0.0.1:%d (TCP connection refused or timed out)", closed)
	if got := text(t, ctx, "#test-SMTP"); !strings.HasPrefix(got, "SMTP failed") || !strings.Contains(got, wantSMTP) || !strings.HasSuffix(got, "Go to SMTP port") {
		t.Errorf("SMTP result = %q", got)
	}
	if got := text(t, ctx, "#f-smtp_port-error"); !strings.HasPrefix(got, wantSMTP) {
		t.Errorf("beside the SMTP port: %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-test-smtp-refused")
	browsertest.Axe(t, ctx, "add a password mailbox, SMTP refused by Test connection")

	setFields(t, ctx, map[string]string{"f-smtp_port": smtpPort, "f-password": helpPass})
	if status := click(t, ctx, "#test-connection"); status != 200 {
		t.Errorf("test with the right settings: status %d\n%s", status, text(t, ctx, "main"))
	}
	if got := text(t, ctx, "#test-SMTP"); got != "SMTP works "+stack.SubmissionAddr+" Signed in to "+stack.SubmissionAddr+" (STARTTLS) as "+helpAddr+"; no email was sent." {
		t.Errorf("SMTP result = %q", got)
	}
	if got := text(t, ctx, "#test-ok"); !strings.Contains(got, "signed in to the SMTP server "+stack.SubmissionAddr+" (no email sent)") {
		t.Errorf("test ok = %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-test-smtp-ok")
	browsertest.Axe(t, ctx, "add a password mailbox, IMAP and SMTP tested")
	setFields(t, ctx, map[string]string{"f-password": helpPass})
	click(t, ctx, "#add-mailbox")
	mb, err := db.MailboxByAddress(bg, helpAddr)
	if err != nil {
		t.Fatalf("not added: %v\n%s", err, text(t, ctx, "main"))
	}

	// The outbound settings on the mailbox's page: a mistyped
	// placeholder is refused beside the text, then all of it is saved.
	edit := fmt.Sprintf("%s/admin/emails/%d/edit", e.srv.URL, mb.ID)
	visit(t, ctx, edit)
	if got := eval[string](t, ctx, `document.getElementById('f-ack_template').value`); got != desk.DefaultAckTemplate {
		t.Errorf("the acknowledgement's text starts as %q", got)
	}
	eval[bool](t, ctx, `(() => { document.getElementById('f-save_sent').checked = false; document.getElementById('f-ack_enabled').checked = true; return true })()`)
	setFields(t, ctx, map[string]string{"f-ack_template": "Hello,\n\nwe received \"{{subject}}\" as ticket #{{ticket}}, {{name}}.",
		"f-signature": "-- \nThe help desk"})
	if status := click(t, ctx, "#save-mailbox"); status != 422 {
		t.Errorf("an unknown placeholder: status %d", status)
	}
	if got := text(t, ctx, "#f-ack_template-error"); !strings.HasPrefix(got, "{{name}} is not a placeholder Postdesk knows: use {{ticket}} (the ticket's number) and {{subject}}") {
		t.Errorf("beside the acknowledgement = %q", got)
	}
	if got := eval[bool](t, ctx, `!document.getElementById('f-save_sent').checked && document.getElementById('f-ack_enabled').checked`); !got {
		t.Error("the refused form lost the checkboxes as typed")
	}
	browsertest.Screenshot(t, ctx, "emails-edit-ack-refused")
	browsertest.Axe(t, ctx, "edit a mailbox, an unknown placeholder in the acknowledgement")
	setFields(t, ctx, map[string]string{"f-ack_template": "Hello,\n\nwe received \"{{subject}}\" as ticket #{{ticket}}."})
	click(t, ctx, "#save-mailbox")
	if got := text(t, ctx, ".flash"); got != "Saved the settings of "+helpAddr+"." {
		t.Errorf("flash after save = %q", got)
	}
	saved, _ := db.Mailbox(bg, mb.ID)
	srv, _ := db.MailboxServer(bg, mb.ID)
	if srv.SaveSent || !saved.AckEnabled || saved.AckTemplate != "Hello,\n\nwe received \"{{subject}}\" as ticket #{{ticket}}." || saved.Signature != "-- \nThe help desk" {
		t.Errorf("saved: save sent %v, ack %v %q, signature %q", srv.SaveSent, saved.AckEnabled, saved.AckTemplate, saved.Signature)
	}
	if got := activity(t, ctx, mb.ID); !strings.Contains(got, "Settings changed: signature; no copies of sent replies saved to Sent; acknowledgements on; acknowledgement text") {
		t.Errorf("activity = %q", got)
	}

	// The saved mailbox, tested from its page with the stored password.
	visit(t, ctx, edit)
	if got := eval[bool](t, ctx, `!document.getElementById('f-save_sent').checked && document.getElementById('f-ack_enabled').checked`); !got {
		t.Error("the page does not show what was saved")
	}
	if status := click(t, ctx, "#test-connection"); status != 200 {
		t.Errorf("test of the saved mailbox: status %d\n%s", status, text(t, ctx, "main"))
	}
	if got := text(t, ctx, "#test-results li"); !strings.Contains(got, "IMAP works") || !strings.Contains(got, "SMTP works "+stack.SubmissionAddr) {
		t.Errorf("saved mailbox's test = %q", got)
	}
	browsertest.Screenshot(t, ctx, "emails-edit-tested")
	browsertest.Axe(t, ctx, "edit a mailbox, Test connection passed")

	// The card: replies held, failed with SMTP AUTH disabled, sent.
	ticketID, _ := e.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Printer", RequesterAddress: "ann@customer.test"}, store.Message{})
	d := desk.New(db)
	var ids []int64
	for i := range 3 {
		m, err := d.Reply(bg, ticketID, e.user, desk.ReplyInput{Text: fmt.Sprint("Answer ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := db.Write(bg, func(tx *store.Tx) error {
		if _, err := tx.ClaimOutbox(bg, mb.ID, "test", now, now.Add(time.Hour)); err != nil {
			return err
		}
		for _, id := range ids[:2] {
			if ok, err := tx.BeginAttempt(bg, id, "test", now); err != nil || !ok {
				return fmt.Errorf("begin %d: %v %w", id, ok, err)
			}
		}
		if err := tx.MarkSent(bg, ids[0], now, false); err != nil {
			return err
		}
		if err := tx.RecordSentActivity(bg, mb.ID, now); err != nil {
			return err
		}
		return tx.MarkFailed(bg, ids[1], "auth_disabled", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", now.Add(time.Second))
	}); err != nil {
		t.Fatal(err)
	}
	visit(t, ctx, e.srv.URL+"/admin/emails")
	if got := text(t, ctx, fmt.Sprintf("#sending-%d", mb.ID)); got != "1 reply queued · 1 failed" {
		t.Errorf("sending = %q", got)
	}
	if got := text(t, ctx, fmt.Sprintf("#sending-problem-%d", mb.ID)); !strings.Contains(got, "Sending problem: SMTP AUTH is disabled") ||
		!strings.Contains(got, "enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps") {
		t.Errorf("sending problem = %q", got)
	}
	eval[bool](t, ctx, fmt.Sprintf(`(() => { document.getElementById('activity-%d').open = true; return true })()`, mb.ID))
	if got := activity(t, ctx, mb.ID); !strings.Contains(got, "Sent 1 email") {
		t.Errorf("activity = %q", got)
	}
	if w := eval[int](t, ctx, fmt.Sprintf(`Math.ceil(document.querySelector('#mailbox-%d').getBoundingClientRect().right)`, mb.ID)); w > browsertest.Width {
		t.Errorf("the card is %d px wide", w)
	}
	browsertest.Screenshot(t, ctx, "emails-card-sending-problem")
	browsertest.ScreenshotAt(t, ctx, "emails-card-sending-problem-phone", 390, 844)
	browsertest.Axe(t, ctx, "Emails, a mailbox with a sending problem")
	browsertest.AxeAt(t, ctx, "Emails, a mailbox with a sending problem, at phone width", 375, 740)
}

func closedPortWeb(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
