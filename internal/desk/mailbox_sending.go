package desk

import (
	"slices"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// MailboxWideKinds are the delivery error kinds (store.Delivery.ErrorKind)
// whose cause concerns every reply of a mailbox, not one reply: Admin ->
// Emails shows the newest on the mailbox's card.
var MailboxWideKinds = []string{"auth_disabled", "auth_failed", "send_as_denied", "config"}

// SendingAdvice says, for admins, what a mailbox-wide sending problem
// (one of MailboxWideKinds) means and what to do about it; "" for another
// kind. The server's own words are the delivery's LastError.
func SendingAdvice(kind string) string {
	switch kind {
	case "auth_disabled":
		return "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, " +
			"Users → mailbox → Mail → Manage email apps. Then check it with Test connection (Edit settings) and send the failed replies again from their tickets."
	case "auth_failed":
		return "The mail server refused the mailbox's sign-in when sending: reauthenticate the mailbox (or, for a password mailbox, enter the new password in Edit settings). " +
			"Replies wait meanwhile and go out, in order, right after."
	case "send_as_denied":
		return "The signed-in account may not send as this address: grant it Send As on the mailbox (Microsoft 365 admin center, the mailbox → Delegation), " +
			"or reauthenticate signed in as the mailbox itself. Then send the failed replies again from their tickets."
	case "config":
		return "The mailbox's SMTP settings do not work as set: check the server, port and security in Edit settings and run Test connection. Replies are tried again meanwhile."
	}
	return ""
}

// sendingNoticeKinds are the kinds of the notices the outbox sender writes
// about a mailbox-wide refusal ("smtp_" and the smtpsend kind; a refused
// sign-in is a needs_reauth notice, which ResolveNotice resolves).
var sendingNoticeKinds = []string{"smtp_auth_disabled", "smtp_send_as_denied", "smtp_config"}

// ResolveSendingNotice reports what resolved a notice about a mailbox-wide
// sending refusal, given when the mailbox's server last accepted a reply:
// one sent after the notice shows the cause was fixed. ok is false while
// the notice stands, or for a notice of another kind.
func ResolveSendingNotice(n store.Notice, lastSentAt time.Time) (r Resolution, ok bool) {
	if !slices.Contains(sendingNoticeKinds, n.Kind) || !lastSentAt.After(n.CreatedAt) {
		return Resolution{}, false
	}
	return Resolution{By: "Replies sent again", At: lastSentAt}, true
}
