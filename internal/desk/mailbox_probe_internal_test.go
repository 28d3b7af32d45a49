package desk

import (
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// smtpAdvice decides by kind and stage; the cases Postfix does not give
// in TestConnectionSMTP.
func TestSMTPAdviceByKind(t *testing.T) {
	srv := store.MailboxServer{SMTPHost: "smtp.office365.com", SMTPPort: 587, SMTPSecurity: "starttls", AuthMethod: "xoauth2"}
	for _, tc := range []struct {
		err      smtpsend.Error
		password bool
		field    string
		starts   string
	}{
		{smtpsend.Error{Kind: smtpsend.KindAuthFailed, Stage: smtpsend.StageAuth, Code: 535, Enhanced: "5.7.3", Message: "Authentication unsuccessful"}, false,
			"", `The SMTP server refused the mailbox's sign-in as a@corp.example. It said: "535 5.7.3 Authentication unsuccessful". Reauthenticate the mailbox`},
		{smtpsend.Error{Kind: smtpsend.KindAuthDisabled, Stage: smtpsend.StageAuth, Code: 535, Enhanced: "5.7.139"}, false,
			"", "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps"},
		{smtpsend.Error{Kind: smtpsend.KindConfig, Stage: smtpsend.StageAuth}, true,
			"smtp_port", "smtp.office365.com:587 does not offer sign-in with XOAUTH2: check the port and security"},
		{smtpsend.Error{Kind: smtpsend.KindThrottled, Stage: smtpsend.StageAuth, Code: 421, Enhanced: "4.7.0", Message: "Too many connections"}, false,
			"", `The SMTP server asks Postdesk to slow down (it said "421 4.7.0 Too many connections")`},
		{smtpsend.Error{Kind: smtpsend.KindTemporary, Stage: smtpsend.StageAuth, Code: 454, Enhanced: "4.7.0", Message: "Temporary authentication failure"}, true,
			"", "The SMTP server could not take the sign-in right now"},
		{smtpsend.Error{Kind: smtpsend.KindPermanent, Stage: smtpsend.StageConnect, Code: 554, Message: "No SMTP service here"}, true,
			"", `The SMTP server refused (it said "554 No SMTP service here")`},
	} {
		se := tc.err
		field, msg := smtpAdvice(&se, tc.password, "smtp.office365.com:587", srv, "a@corp.example", smtpWords(&se))
		if field != tc.field || !strings.HasPrefix(msg, tc.starts) {
			t.Errorf("%s at %s: field %q, %q", se.Kind, se.Stage, field, msg)
		}
	}
}
