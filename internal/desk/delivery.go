package desk

import "github.com/postdesk/postdesk/internal/store"

// DeliveryAdvice says, in plain words for agents and admins, what a
// delivery's error kind (store.Delivery.ErrorKind) means and what to do;
// "" for no error. The server's own words are store.Delivery.LastError.
func DeliveryAdvice(kind string) string {
	switch kind {
	case "":
		return ""
	case "auth_disabled":
		return "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center (Users → the mailbox → Mail → Manage email apps), then send the reply again."
	case "auth_failed":
		return "The mail server refused the mailbox's sign-in: an admin reauthenticates the mailbox in Admin → Emails; held replies go out right after."
	case "send_as_denied":
		return "The signed-in account may not send as this address: grant it Send As on the mailbox (or sign in as the mailbox itself), then send the reply again."
	case "recipient_unknown":
		return "The recipient's address does not exist: check it, then write the reply again to the right address."
	case "throttled":
		return "The mail server asked Postdesk to slow down: the reply is sent again automatically."
	case "temporary":
		return "The mail server could not take the reply right now: it is sent again automatically."
	case "config":
		return "The mailbox's SMTP settings do not work: an admin checks them in Admin → Emails."
	case "outcome_unknown":
		return "Postdesk stopped between handing the reply to the mail server and hearing its answer, and could not check the Sent folder: ask the customer whether it arrived, then choose Send again or Mark as sent."
	case "permanent":
		return "The mail server refused the reply for good (its words are shown): fix what it names, then send the reply again."
	case "stale":
		return "The customer wrote again while this reply waited for the mailbox's sign-in: read their email, then Send again if the reply still fits, or write a new one."
	case "bounced":
		return "The recipient's mail system returned the reply undelivered (its words are shown): check the address, then write the reply again to the right one; Send again sends it to the same address."
	}
	return "The reply could not be sent (" + kind + ")."
}

// DeliveryWords names a delivery state for people.
func DeliveryWords(d store.Delivery) string {
	switch d.State {
	case store.DeliveryQueued:
		if !d.NextAttemptAt.IsZero() {
			return "queued: will try again"
		}
		return "queued"
	case store.DeliverySending:
		return "sending"
	case store.DeliverySent:
		return "sent"
	case store.DeliveryHeld:
		return "held: mailbox needs reauthentication"
	case store.DeliveryFailed:
		return "failed"
	case store.DeliveryUnknown:
		return "unknown: may or may not have arrived"
	}
	return d.State
}
