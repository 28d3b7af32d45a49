package smtpsend

import (
	"net/textproto"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stage    string
		code     int
		enhanced string
		message  string
		want     Kind
	}{
		{StageAuth, 535, "5.7.139", "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", KindAuthDisabled},
		{StageAuth, 535, "5.7.3", "Authentication unsuccessful", KindAuthFailed},
		{StageAuth, 535, "5.7.8", "Username and Password not accepted", KindAuthFailed},
		{StageAuth, 535, "", "authentication failed", KindAuthFailed},
		{StageAuth, 534, "5.7.9", "Application-specific password required", KindAuthFailed},
		{StageAuth, 454, "4.7.0", "Temporary authentication failure", KindTemporary},
		{StageAuth, 504, "5.5.4", "Unrecognized authentication type", KindPermanent},
		{StageMail, 432, "4.3.2", "STOREDRV.ClientSubmit; sender thread limit exceeded", KindThrottled},
		{StageData, 451, "4.3.2", "System not accepting network messages", KindThrottled},
		{StageData, 554, "5.2.0", "STOREDRV.Submission.Exception:SubmissionQuotaExceededException", KindThrottled},
		{StageRcpt, 452, "4.5.3", "Too many recipients", KindThrottled},
		{StageMail, 421, "4.7.0", "Try again later, closing connection", KindThrottled},
		{StageMail, 421, "", "Service not available", KindTemporary},
		{StageMail, 550, "5.7.60", "SMTP; Client does not have permissions to send as this sender", KindSendAsDenied},
		{StageData, 554, "5.2.252", "SendAsDenied; a not allowed to send as b", KindSendAsDenied},
		{StageMail, 553, "5.7.1", "<ceo@example.com>: Sender address rejected: not owned by user a@example.com", KindSendAsDenied},
		{StageRcpt, 553, "5.7.1", "<ceo@example.com>: Sender address rejected: not owned by user a@example.com", KindSendAsDenied},
		{StageData, 550, "5.7.1", "Message rejected as spam", KindPermanent},
		{StageRcpt, 554, "5.7.1", "Relay access denied", KindPermanent},
		{StageRcpt, 550, "5.1.1", "User unknown", KindRecipientUnknown},
		{StageRcpt, 550, "5.1.10", "RESOLVER.ADR.RecipientNotFound", KindRecipientUnknown},
		{StageRcpt, 501, "5.1.3", "Bad recipient address syntax", KindRecipientUnknown},
		{StageMail, 553, "5.1.8", "Sender address rejected: Domain not found", KindPermanent},
		{StageRcpt, 450, "4.1.1", "Recipient address rejected: unverified address", KindTemporary},
		{StageRcpt, 550, "", "No such user", KindPermanent},
		{StageData, 552, "5.3.4", "Message size exceeds fixed limit", KindPermanent},
		{StageData, 451, "4.4.5", "Insufficient system storage", KindTemporary},
		{StageData, 250, "2.0.0", "out of sequence", KindTemporary},
	}
	for _, tt := range tests {
		if got := classify(tt.stage, tt.code, tt.enhanced, tt.message); got != tt.want {
			t.Errorf("classify(%s, %d %s %q) = %v, want %v", tt.stage, tt.code, tt.enhanced, tt.message, got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"  Requested action aborted\n  try later \r\n": "Requested action aborted try later",
		"a\x00b\x1bc\td":         "abc d",
		strings.Repeat("é", 600): strings.Repeat("é", 500) + "…",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReply feeds server replies (code and text as go-smtp and the
// STARTTLS prelude parse them) through the error path: never a panic, and
// Message is always one valid line.
func FuzzReply(f *testing.F) {
	f.Add(535, "5.7.139 Authentication unsuccessful")
	f.Add(550, "5.1.1 <a@b>: User unknown\n5.1.1 more")
	f.Add(421, "4.7.0")
	f.Add(554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")
	f.Add(0, "9999999999.1.1 x")
	f.Fuzz(func(t *testing.T, code int, text string) {
		for _, stage := range []string{StageConnect, StageTLS, StageAuth, StageMail, StageRcpt, StageData} {
			e := replyError(stage, "", toSMTPError(&textproto.Error{Code: code, Msg: text}))
			if strings.ContainsAny(e.Message, "\r\n") || !utf8.ValidString(e.Message) && utf8.ValidString(text) {
				t.Fatalf("Message %q", e.Message)
			}
			if e.Kind < KindTemporary || e.Kind > KindConfig {
				t.Fatalf("kind %v", e.Kind)
			}
			_ = e.Error()
		}
	})
}
