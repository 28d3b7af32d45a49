package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// deliveryView is what the ticket page says about an outgoing message's
// delivery: a badge, one sentence of what happened, what to do about it,
// and which buttons it offers. It is the only place where the pages turn a
// store.Delivery into words; the API answers the state, the server's words
// and the kind as they are.
type deliveryView struct {
	State    string // store.Delivery* (also the badge's CSS modifier)
	Label    string // the badge: "Queued", "Sending", "Sent", "Held", "Not sent", "Unknown"
	Tone     string // "ok", "busy", "warn" or "danger"
	Sentence string // what happened
	Advice   string // what to do next ("" when nothing)
	LinkURL  string // where an admin fixes the cause ("" when none or not an admin)
	LinkText string
	Retry    bool // offer "Send again"
	MarkSent bool // offer "Mark as sent"
}

// deliveryFacts is what describeDelivery needs besides the delivery itself.
type deliveryFacts struct {
	MailboxID      int64
	MailboxAddress string         // the From address: the mailbox replies are sent as
	Admin          bool           // the viewer may fix mailbox settings (links are shown)
	Loc            *time.Location // the viewer's time zone (nil: UTC)
}

// describeDelivery puts an outgoing message's delivery into words for the
// ticket page.
func describeDelivery(d store.Delivery, f deliveryFacts) deliveryView {
	v := deliveryView{State: d.State}
	emails := "/admin/emails#mailbox-" + strconv.FormatInt(f.MailboxID, 10)
	switch d.State {
	case store.DeliveryQueued:
		v.Label, v.Tone = "Queued", "busy"
		v.Sentence = "Queued: sending in a moment."
		if d.ErrorKind == store.Released {
			v.Sentence = "Queued: the mailbox was signed in again; its new mail is fetched first (up to 2 minutes), so that this reply does not overlook a newer email."
		}
		if d.Attempts > 0 && d.LastError != "" {
			v.Label, v.Tone = "Retrying", "warn"
			v.Sentence = "Not sent yet: " + d.LastError
			v.Advice = retryAt(d.NextAttemptAt, f.Loc)
		}
	case store.DeliverySending:
		v.Label, v.Tone = "Sending", "busy"
		v.Sentence = "Sending now."
	case store.DeliverySent:
		v.Label, v.Tone = "Sent", "ok"
		v.Sentence = "Sent."
		if !d.SentAt.IsZero() {
			v.Sentence = "Sent " + pageTime(d.SentAt, f.Loc) + "."
		}
	case store.DeliveryHeld:
		v.Label, v.Tone = "Held", "warn"
		v.Sentence = "Held: " + f.MailboxAddress + " needs reauthentication; it will be sent when an admin signs in again."
		if f.Admin {
			v.LinkURL, v.LinkText = emails, "Reauthenticate "+f.MailboxAddress
		}
	case store.DeliveryFailed:
		v.Label, v.Tone = "Not sent", "danger"
		v.Sentence = "Not sent."
		if d.LastError != "" {
			v.Sentence = "Not sent: " + d.LastError
		}
		v.Retry = true
		switch d.ErrorKind {
		case "auth_disabled":
			v.Advice = "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps, then send again."
		case "send_as_denied":
			v.Advice = "The signed-in account may not send as " + f.MailboxAddress + ": grant it Send As permission for this address, then send again."
		case "recipient_unknown":
			v.Advice = "The recipient address does not exist: check it and send again."
		case "stale":
			v.Advice = "Read the customer's newer email first; then Send again if this reply still fits, or write a new one."
		case "bounced":
			v.Label = "Bounced"
			v.Sentence = "Sent, but it came back undelivered: " + strings.TrimPrefix(d.LastError, store.BouncedWords)
			v.Advice = "Check the address, then write the reply again to the right one (Send again sends it to the same address)."
		case "auth_failed":
			v.Advice = "The mail server refused the mailbox's sign-in: " + f.MailboxAddress + " needs reauthentication in Admin → Emails; then send again."
			if f.Admin {
				v.LinkURL, v.LinkText = emails, "Reauthenticate "+f.MailboxAddress
			}
		case "throttled", "temporary":
			if !d.NextAttemptAt.IsZero() {
				v.Advice, v.Retry = retryAt(d.NextAttemptAt, f.Loc), false
			} else {
				v.Advice = "The server refused it for now: send again in a few minutes."
			}
		case "config":
			v.Advice = "The mailbox's SMTP settings do not work: an admin can correct them in Admin → Emails; then send again."
			if f.Admin {
				v.LinkURL, v.LinkText = "/admin/emails/"+strconv.FormatInt(f.MailboxID, 10)+"/edit", "Edit the SMTP settings of "+f.MailboxAddress
			}
		default:
			v.Advice = "The server refused it: check the addresses and the attachments, then send again."
		}
	case store.DeliveryUnknown:
		v.Label, v.Tone = "Unknown", "danger"
		v.Sentence = "Postdesk stopped while sending this reply and cannot tell whether the server accepted it: check with the customer, then Send again or Mark as sent."
		v.Retry, v.MarkSent = true, true
	default:
		v.Label, v.Tone = d.State, "warn"
		v.Sentence = "Delivery state: " + d.State + "."
	}
	return v
}

// retryAt says when Postdesk tries again, in loc.
func retryAt(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "Postdesk will retry in a moment."
	}
	return "Postdesk will retry at " + pageTime(t, loc) + "."
}
