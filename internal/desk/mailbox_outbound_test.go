package desk_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The outbound settings of a mailbox, on both databases: Sent copies (on
// by default for password mailboxes, off for Microsoft 365) and
// acknowledgements (off by default; a template whose only placeholders
// are {{ticket}} and {{subject}}), each saved by UpdateMailbox and
// recorded in the mailbox's activity.
func TestOutboundSettings(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		admin, _ := newAdmin(t, db)
		pw, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "help@corp.example", Auth: "password", IMAPHost: "127.0.0.1",
			IMAPSecurity: "none", SMTPHost: "127.0.0.1", SMTPSecurity: "none", Password: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		ms, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "support@corp.example", Auth: "microsoft"})
		if err != nil {
			t.Fatal(err)
		}
		spec, err := admin.Spec(ctx, pw.ID)
		if err != nil || spec.SaveSent == nil || !*spec.SaveSent || spec.AckEnabled || spec.AckTemplate != "" {
			t.Fatalf("a new password mailbox: save sent %v, ack %v %q (%v)", ptr(spec.SaveSent), spec.AckEnabled, spec.AckTemplate, err)
		}
		if got, _ := admin.Spec(ctx, ms.ID); got.SaveSent == nil || *got.SaveSent {
			t.Errorf("a new Microsoft mailbox saves sent copies: %v", ptr(got.SaveSent))
		}

		// Turned on and off through UpdateMailbox, like every other setting.
		off := false
		spec.SaveSent = &off
		spec.AckEnabled, spec.AckTemplate = true, "Hello,\r\n\r\nticket #{{ticket}} ({{subject}}) is open.\r\n"
		if _, err := admin.UpdateMailbox(ctx, pw.ID, spec); err != nil {
			t.Fatal(err)
		}
		srv, _ := db.MailboxServer(ctx, pw.ID)
		mb, _ := db.Mailbox(ctx, pw.ID)
		if srv.SaveSent || !mb.AckEnabled || mb.AckTemplate != "Hello,\n\nticket #{{ticket}} ({{subject}}) is open." {
			t.Errorf("saved: save sent %v, ack %v %q", srv.SaveSent, mb.AckEnabled, mb.AckTemplate)
		}
		if got := desk.AckText(mb.AckTemplate, 42, "Printer"); got != "Hello,\n\nticket #42 (Printer) is open." {
			t.Errorf("ack text = %q", got)
		}
		acts, _ := db.MailboxActivity(ctx, pw.ID, 1)
		if len(acts) != 1 || acts[0].Message != "Settings changed: no copies of sent replies saved to Sent; acknowledgements on; acknowledgement text" {
			t.Errorf("activity = %+v", acts)
		}

		// Postdesk's default text is stored as none, so it follows the default.
		spec, _ = admin.Spec(ctx, pw.ID)
		spec.AckTemplate = desk.DefaultAckTemplate
		if _, err := admin.UpdateMailbox(ctx, pw.ID, spec); err != nil {
			t.Fatal(err)
		}
		if mb, _ := db.Mailbox(ctx, pw.ID); mb.AckTemplate != "" || !mb.AckEnabled {
			t.Errorf("the default text was stored as %q (enabled %v)", mb.AckTemplate, mb.AckEnabled)
		}

		// Refusals name the field and say what to write instead.
		for _, tc := range []struct {
			name     string
			change   func(*desk.MailboxSpec)
			id       int64
			field    string
			contains string
		}{
			{"unknown placeholder", func(s *desk.MailboxSpec) { s.AckTemplate = "Dear {{name}}, ticket {{ticket}}" }, pw.ID,
				"ack_template", "{{name}} is not a placeholder Postdesk knows: use {{ticket}} (the ticket's number) and {{subject}}"},
			{"placeholder with spaces", func(s *desk.MailboxSpec) { s.AckTemplate = "Ticket {{ ticket }}" }, pw.ID,
				"ack_template", "{{ ticket }} is not a placeholder"},
			{"unclosed placeholder", func(s *desk.MailboxSpec) { s.AckTemplate = "Ticket {{ticket is open" }, pw.ID,
				"ack_template", `the placeholder "{{ticket is open" is not closed with }}`},
			{"placeholder opened twice", func(s *desk.MailboxSpec) { s.AckTemplate = "{{ticket {{subject}}" }, pw.ID,
				"ack_template", "is not closed with }}"},
			{"too long", func(s *desk.MailboxSpec) { s.AckTemplate = strings.Repeat("x", desk.MaxAckTemplateBytes+1) }, pw.ID,
				"ack_template", "longer than 8 KB"},
			{"not text", func(s *desk.MailboxSpec) { s.AckTemplate = "a\x00b" }, pw.ID, "ack_template", "not text"},
		} {
			spec, _ := admin.Spec(ctx, tc.id)
			tc.change(&spec)
			_, err := admin.UpdateMailbox(ctx, tc.id, spec)
			var v *desk.ValidationError
			if !errors.As(err, &v) || v.Field != tc.field || !strings.Contains(v.Message, tc.contains) {
				t.Errorf("%s: %v (field %q)", tc.name, err, fieldOf(v))
			}
		}
		if mb, _ := db.Mailbox(ctx, pw.ID); mb.AckTemplate != "" {
			t.Errorf("a refused template was stored: %q", mb.AckTemplate)
		}
		// SetAcknowledgement decides by the same rule.
		if _, err := admin.SetAcknowledgement(ctx, pw.ID, true, "{{Ticket}}"); !errors.Is(err, desk.ErrInvalid) {
			t.Errorf("SetAcknowledgement with {{Ticket}}: %v", err)
		}

		// Acknowledgements need an SMTP server to be sent with.
		noSMTP, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "in@corp.example", Auth: "password", IMAPHost: "127.0.0.1",
			IMAPSecurity: "none", Password: "abc"})
		if err != nil {
			t.Fatal(err)
		}
		bare, _, err := admin.EnsureMailbox(ctx, "imported@corp.example")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{noSMTP.ID, bare.ID} {
			spec, _ := admin.Spec(ctx, id)
			spec.AckEnabled = true
			_, err := admin.UpdateMailbox(ctx, id, spec)
			var v *desk.ValidationError
			if !errors.As(err, &v) || v.Field != "ack_enabled" || !strings.Contains(v.Message, "sent by email") {
				t.Errorf("acknowledgements without SMTP (mailbox %d): %v", id, err)
			}
		}
		// A bare mailbox's template can still be kept (and its name changed).
		spec, _ = admin.Spec(ctx, bare.ID)
		spec.Name, spec.AckTemplate = "Imported", "Ticket {{ticket}}"
		if _, err := admin.UpdateMailbox(ctx, bare.ID, spec); err != nil {
			t.Fatal(err)
		}
		if mb, _ := db.Mailbox(ctx, bare.ID); mb.Name != "Imported" || mb.AckTemplate != "Ticket {{ticket}}" || mb.AckEnabled {
			t.Errorf("bare mailbox = %+v", mb)
		}

		// AddMailbox takes them too.
		on := true
		added, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "new@corp.example", Auth: "microsoft", SaveSent: &on, AckEnabled: true,
			AckTemplate: "Got it: {{subject}}"})
		if err != nil {
			t.Fatal(err)
		}
		spec, _ = admin.Spec(ctx, added.ID)
		if !*spec.SaveSent || !spec.AckEnabled || spec.AckTemplate != "Got it: {{subject}}" {
			t.Errorf("added with outbound settings: %v %v %q", *spec.SaveSent, spec.AckEnabled, spec.AckTemplate)
		}
	})
}

func ptr(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
