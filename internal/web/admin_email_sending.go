package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// sendingView is how a mailbox's replies are going out, on its card.
type sendingView struct {
	MailboxID int64
	// State in words: "Nothing waiting", "2 replies queued · 20 held until …".
	State   string
	Problem bool // replies wait or failed
	// Server is where replies are submitted ("smtp.office365.com:587 (STARTTLS)").
	Server      string
	LastSentAt  time.Time
	LastSentRel string
	// Trouble is the newest mailbox-wide sending problem (nil: none).
	Trouble *sendingTrouble
	// Graph: replies are sent through Microsoft Graph, not SMTP.
	Graph bool
	// OfferGraph: Trouble is "SMTP AUTH is disabled" and the mailbox can
	// send through Microsoft Graph instead (the button does it).
	OfferGraph bool
}

// sendingTrouble is a mailbox-wide refusal (SMTP AUTH disabled, Send As
// denied, the sign-in refused, settings that do not work) and what to do.
type sendingTrouble struct {
	Kind     string // "auth_disabled", ...
	Heading  string // "SMTP AUTH is disabled"
	Advice   string // desk.SendingAdvice
	Said     string // the server's words
	At       time.Time
	Rel      string
	TicketID int64
	// Resolved: replies went out after it, so it no longer stands.
	Resolved bool
}

// troubleHeadings name the mailbox-wide kinds (desk.MailboxWideKinds).
var troubleHeadings = map[string]string{
	"auth_disabled":  "SMTP AUTH is disabled",
	"auth_failed":    "The mail server refused the sign-in",
	"send_as_denied": "Not allowed to send as this address",
	"config":         "The SMTP settings do not work",
}

// sendingFor describes a mailbox's sending; nil when it has no SMTP
// settings and never sent anything.
func (h *Handler) sendingFor(r *http.Request, mb store.Mailbox, now time.Time) (*sendingView, error) {
	ctx := r.Context()
	srv, err := h.db.MailboxServer(ctx, mb.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	sum, err := h.db.OutboxSummary(ctx, mb.ID, desk.MailboxWideKinds)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, n := range sum.Counts {
		total += n
	}
	if srv.SMTPHost == "" && total == 0 {
		return nil, nil
	}
	v := &sendingView{MailboxID: mb.ID, State: sendingWords(sum.Counts), LastSentAt: sum.LastSentAt}
	v.Problem = sum.Counts[store.DeliveryHeld]+sum.Counts[store.DeliveryFailed]+sum.Counts[store.DeliveryUnknown] > 0
	switch {
	case srv.SendsWithGraph():
		v.Graph = true
		v.Server = "Microsoft Graph (sendMail; Microsoft 365 keeps the copy in Sent Items)"
	case srv.SMTPHost != "":
		v.Server = endpointWords(srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity)
	default:
		v.Server = "No SMTP server: replies cannot be sent from this address"
		v.Problem = true
	}
	if !sum.LastSentAt.IsZero() {
		v.LastSentRel = agoIn(sum.LastSentAt, now, zoneOf(r.Context()))
	}
	if p := sum.Problem; p != nil {
		v.Trouble = &sendingTrouble{Kind: p.ErrorKind, Heading: troubleHeadings[p.ErrorKind], Advice: desk.SendingAdvice(p.ErrorKind), Said: p.LastError,
			At: p.At, Rel: agoIn(p.At, now, zoneOf(r.Context())), TicketID: p.TicketID, Resolved: sum.LastSentAt.After(p.At)}
	}
	return v, nil
}

// sendingWords counts what waits or failed: "2 replies queued · 20 held
// until the mailbox is reauthenticated · 1 failed"; "Nothing waiting".
func sendingWords(c map[string]int) string {
	var parts []string
	add := func(n int, words string) {
		if n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+words)
		}
	}
	queued := c[store.DeliveryQueued] + c[store.DeliverySending]
	add(queued, plural(queued, "reply", "replies")+" queued")
	held := c[store.DeliveryHeld]
	if len(parts) == 0 {
		add(held, plural(held, "reply", "replies")+" held until the mailbox is reauthenticated")
	} else {
		add(held, "held until the mailbox is reauthenticated")
	}
	failed := c[store.DeliveryFailed]
	if len(parts) == 0 {
		add(failed, plural(failed, "reply", "replies")+" failed")
	} else {
		add(failed, "failed")
	}
	add(c[store.DeliveryUnknown], "with an unknown outcome (see their tickets)")
	if len(parts) == 0 {
		return "Nothing waiting"
	}
	return strings.Join(parts, " · ")
}

// endpointWords is a server as people read it: "smtp.office365.com:587 (STARTTLS)".
func endpointWords(host string, port int, security string) string {
	words := map[string]string{"tls": "TLS", "starttls": "STARTTLS", "none": "no TLS"}[security]
	return host + ":" + strconv.Itoa(port) + " (" + words + ")"
}
