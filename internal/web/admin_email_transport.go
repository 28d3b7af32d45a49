package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// transportView is how a Microsoft 365 mailbox fetches and sends, on its
// card, with the form that changes it.
type transportView struct {
	MailboxID             int64
	Words                 string // "Fetches mail over IMAP, sends replies through SMTP."
	FetchGraph, SendGraph bool
}

// transportFor describes a mailbox's transports; nil unless it signs in
// with a provider that has Microsoft Graph and has server settings.
func (h *Handler) transportFor(ctx context.Context, mb store.Mailbox, a store.MailboxAuth) *transportView {
	if h.oauth == nil || a.Kind != store.AuthOAuth {
		return nil
	}
	if p, ok := h.oauth.Provider(a.Provider); !ok || !oauth.SupportsGraph(p) {
		return nil
	}
	srv, err := h.db.MailboxServer(ctx, mb.ID)
	if err != nil {
		return nil
	}
	return &transportView{MailboxID: mb.ID, Words: desk.TransportWords(srv), FetchGraph: srv.FetchesWithGraph(), SendGraph: srv.SendsWithGraph()}
}

// offerGraph marks the card's sending problem "SMTP AUTH is disabled" as
// one Microsoft Graph solves: the button sends through Graph instead.
func offerGraph(v *mailboxView) {
	if v.Transport == nil || v.Transport.SendGraph || v.Sending == nil || v.Sending.Trouble == nil {
		return
	}
	t := v.Sending.Trouble
	v.Sending.OfferGraph = t.Kind == "auth_disabled" && !t.Resolved
}

// emailTransport chooses how a mailbox fetches and sends (fields "fetch":
// imap or graph, "send": smtp or graph; one may be left out). When the new
// choice needs permissions the sign-in was not granted, the sign-in starts
// at once; otherwise Admin -> Emails says what changed.
func (h *Handler) emailTransport(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	ch, err := h.mailboxes.SetTransports(r.Context(), mb.ID, r.PostFormValue("fetch"), r.PostFormValue("send"))
	if msg, ok := desk.Message(err); ok {
		h.errorPage(w, r, errorPage{Status: http.StatusUnprocessableEntity, Heading: "Transport not changed", Message: msg,
			LinkURL: "/admin/emails#mailbox-" + strconv.FormatInt(mb.ID, 10), LinkText: "Back to Emails"})
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "Mailbox "+mb.Address+" doesn't exist any more.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox transport changed", "mailbox_id", mb.ID, "fetch", r.PostFormValue("fetch"), "send", r.PostFormValue("send"),
		"needs_sign_in", ch.NeedsSignIn, "requeued", ch.Requeued, "user_id", current(r).user.ID)
	if ch.NeedsSignIn {
		a, _ := h.db.MailboxAuth(r.Context(), mb.ID)
		h.beginSignIn(w, r, mb, a.Account != "" && a.Account != a.Address)
		return
	}
	h.setFlash(w, "transport", mb.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(mb.ID, 10), http.StatusSeeOther)
}
