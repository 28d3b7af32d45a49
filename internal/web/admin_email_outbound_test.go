package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// The edit page of a Microsoft mailbox has its outbound settings: Sent
// copies off (Microsoft saves them itself, and the page says so),
// acknowledgements off with Postdesk's text ready to edit, the
// signature; saving them is one desk call, and a refused template is
// shown beside its field with nothing saved.
func TestEmailEditOutbound(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	ctx := context.Background()
	mb, err := o.h.mailboxes.AddMailbox(ctx, desk.MailboxSpec{Address: supportAddr, Auth: "microsoft"})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/admin/emails/%d/edit", mb.ID)
	res, body := o.get(c, path)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, body, `id="f-save_sent" name="save_sent" value="1" aria-describedby`,
		"Microsoft saves what Postdesk sends to the Sent folder itself, so leave this off",
		`id="f-ack_enabled" name="ack_enabled" value="1" aria-describedby`,
		"Thank you for your email &#34;{{subject}}&#34;. We have received it as ticket #{{ticket}}",
		`<code>{{ticket}}</code> becomes the ticket's number`, `id="f-signature"`, `id="test-connection"`)
	wantNotContains(t, body, `name="save_sent" value="1" checked`, `name="ack_enabled" value="1" checked`)

	form := func(template string) url.Values {
		return url.Values{"csrf": {o.csrf(c)}, "action": {"save"}, "name": {"Support"}, "folders": {"INBOX"}, "after_processing": {"leave"},
			"initial_days": {"14"}, "signature": {"-- \r\nThe support team"}, "ack_enabled": {"1"}, "ack_template": {template}, "save_sent": {"1"}}
	}
	res = o.post(c, path, form("Hello,\r\nwe got \"{{subject}}\" as #{{ticket}}.\r\n"))
	wantStatus(t, res, http.StatusSeeOther)
	got, _ := o.db.Mailbox(ctx, mb.ID)
	srv, _ := o.db.MailboxServer(ctx, mb.ID)
	if !got.AckEnabled || got.AckTemplate != "Hello,\nwe got \"{{subject}}\" as #{{ticket}}." || got.Signature != "-- \nThe support team" || !srv.SaveSent {
		t.Errorf("saved: ack %v %q, signature %q, save sent %v", got.AckEnabled, got.AckTemplate, got.Signature, srv.SaveSent)
	}
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, "Saved the settings of "+supportAddr+".",
		"Settings changed: name; signature; copies of sent replies saved to Sent; acknowledgements on; acknowledgement text")
	_, body = o.get(c, path)
	wantContains(t, body, `name="save_sent" value="1" checked`, `name="ack_enabled" value="1" checked`, "we got &#34;{{subject}}&#34; as #{{ticket}}.")

	res = o.post(c, path, form("Dear {{customer}}, ticket {{ticket}}"))
	wantStatus(t, res, http.StatusUnprocessableEntity)
	body = readBody(res)
	wantContains(t, body, `<p class="form-error" id="f-ack_template-error">{{customer}} is not a placeholder Postdesk knows: use {{ticket}} (the ticket&#39;s number) and {{subject}}`,
		`aria-invalid="true">Dear {{customer}}, ticket {{ticket}}</textarea>`)
	if again, _ := o.db.Mailbox(ctx, mb.ID); again.AckTemplate != got.AckTemplate {
		t.Errorf("a refused template was saved: %q", again.AckTemplate)
	}

	// Test connection of a mailbox that never signed in says so, and saves nothing.
	f := form("Changed {{ticket}}")
	f.Set("action", "test")
	res = o.post(c, path, f)
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, readBody(res), `id="form-error">The mailbox `+supportAddr+" is not connected yet: connect it (sign in with its account), then test it.")
	if again, _ := o.db.Mailbox(ctx, mb.ID); again.AckTemplate != got.AckTemplate {
		t.Errorf("Test connection saved the template: %q", again.AckTemplate)
	}
}

// The card of a mailbox shows how its replies go out: what waits or
// failed, when the last one went, the newest mailbox-wide refusal with
// what to do (in desk's words, by kind), and the sends in the activity.
func TestEmailsCardSending(t *testing.T) {
	t.Parallel()
	o := newOAuthEnv(t, "sqlite")
	c := o.signedIn()
	ctx := context.Background()
	mb, err := o.h.mailboxes.AddMailbox(ctx, desk.MailboxSpec{Address: supportAddr, Auth: "microsoft"})
	if err != nil {
		t.Fatal(err)
	}
	_, body := o.get(c, "/admin/emails")
	wantContains(t, body, fmt.Sprintf(`id="sending-%d">Nothing waiting</dd>`, mb.ID), "smtp.office365.com:587 (STARTTLS)")
	wantNotContains(t, body, "Sending problem")

	ticketID, _ := o.ticket(store.Ticket{MailboxID: mb.ID, Subject: "Printer", RequesterAddress: "ann@customer.test"}, store.Message{})
	d := desk.New(o.db)
	var ids []int64
	for i := range 4 {
		m, err := d.Reply(ctx, ticketID, o.user, desk.ReplyInput{Text: fmt.Sprintf("Answer %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Not connected: held. Release them as a sign-in would, then send one,
	// refuse one for the whole mailbox and one for its recipient.
	now := time.Now().UTC().Truncate(time.Millisecond)
	write := func(fn func(tx *store.Tx) error) {
		t.Helper()
		if err := o.db.Write(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx *store.Tx) error {
		if _, err := tx.ReleaseHeld(ctx, mb.ID, now); err != nil {
			return err
		}
		_, err := tx.ClaimOutbox(ctx, mb.ID, "test", now, now.Add(time.Hour))
		return err
	})
	for i, outcome := range []func(tx *store.Tx, id int64) error{
		func(tx *store.Tx, id int64) error {
			if err := tx.MarkSent(ctx, id, now.Add(-time.Minute), false); err != nil {
				return err
			}
			return tx.RecordSentActivity(ctx, mb.ID, now.Add(-time.Minute))
		},
		func(tx *store.Tx, id int64) error {
			return tx.MarkFailed(ctx, id, "auth_disabled", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", now)
		},
		func(tx *store.Tx, id int64) error {
			return tx.MarkFailed(ctx, id, "recipient_unknown", "550 5.1.1 no such user", now.Add(time.Second))
		},
	} {
		write(func(tx *store.Tx) error {
			if ok, err := tx.BeginAttempt(ctx, ids[i], "test", now); err != nil || !ok {
				return fmt.Errorf("begin %d: %v %w", ids[i], ok, err)
			}
			return outcome(tx, ids[i])
		})
	}
	// The sender's notice about it (jobs writes "smtp_" and the kind).
	write(func(tx *store.Tx) error {
		return tx.AddNotice(ctx, &store.Notice{MailboxID: mb.ID, Kind: "smtp_auth_disabled", Message: supportAddr + ": replies cannot be sent.", CreatedAt: now})
	})
	_, body = o.get(c, "/admin/emails")
	wantNotContains(t, body, "notice-resolved")
	wantContains(t, body, fmt.Sprintf(`id="sending-%d">1 reply queued · 2 failed</dd>`, mb.ID),
		fmt.Sprintf(`id="sending-problem-%d"`, mb.ID), "<strong>Sending problem: SMTP AUTH is disabled</strong>",
		"SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps.",
		"The server said: “535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.”",
		fmt.Sprintf(`<a href="/tickets/%d">The reply on ticket #%d</a>`, ticketID, ticketID), "Sent 1 email")

	// A reply that goes out afterwards makes it an earlier problem.
	write(func(tx *store.Tx) error {
		if ok, err := tx.BeginAttempt(ctx, ids[3], "test", now); err != nil || !ok {
			return fmt.Errorf("begin: %v %w", ok, err)
		}
		if err := tx.MarkSent(ctx, ids[3], now.Add(time.Minute), false); err != nil {
			return err
		}
		return tx.RecordSentActivity(ctx, mb.ID, now.Add(time.Minute))
	})
	_, body = o.get(c, "/admin/emails")
	wantContains(t, body, fmt.Sprintf(`id="sending-%d">2 replies failed</dd>`, mb.ID), "Earlier sending problem: SMTP AUTH is disabled",
		"Replies have gone out since, so it no longer stands.", "Sent 2 emails", "notice-smtp_auth_disabled notice-resolved", "Replies sent again")
	wantNotContains(t, body, `<p class="sending-advice">`)
}
