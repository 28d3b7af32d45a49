package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/store"
)

// emailEdit shows a mailbox's settings in a form: name, folders, what
// happens after processing, how far back to import, the catch-up limit,
// the signature; and for a password mailbox its servers and password.
func (h *Handler) emailEdit(w http.ResponseWriter, r *http.Request) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	spec, err := h.mailboxes.Spec(r.Context(), mb.ID)
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "Mailbox "+mb.Address+" doesn't exist any more.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	f := mailboxForm{page: h.base(r, "emails"), ID: mb.ID}
	f.fromSpec(spec)
	f.Provider, f.SaveSentHint = h.authLabel(spec.Auth), h.saveSentHint(spec.Auth)
	h.render(w, r, http.StatusOK, "admin_email_form", f)
}

// emailEditSubmit saves the form through desk.Admin.UpdateMailbox, like the
// API's PATCH and the CLI's mailbox update; Test connection (action
// "test") tries the settings as typed, with the stored password or token,
// and saves nothing.
func (h *Handler) emailEditSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	spec, err := h.mailboxes.Spec(ctx, mb.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	f := mailboxForm{page: h.base(r, "emails"), ID: mb.ID, Address: mb.Address, Password: spec.Auth == "password", HasServer: spec.Auth != "",
		Provider: h.authLabel(spec.Auth), SaveSentHint: h.saveSentHint(spec.Auth)}
	readMailboxForm(r, &f)
	refuse := func() { h.render(w, r, http.StatusUnprocessableEntity, "admin_email_form", f) }
	if !f.applyTo(&spec, r.PostFormValue("password")) {
		if spec.Auth == "password" { // an OAuth mailbox's checks depend on its provider's settings: UpdateMailbox's own
			f.refused(h.mailboxes.Check(spec, true)) // the other fields' mistakes too, all at once
		}
		refuse()
		return
	}
	if r.PostFormValue("action") == "test" {
		rep, err := h.mailboxes.TestMailbox(ctx, mb.ID, spec)
		f.tested(rep)
		if err != nil {
			if len(rep.Checks) == 0 && !f.refused(err) {
				h.serverError(w, r, err)
				return
			}
			h.logTestFailure(r, err)
			refuse()
			return
		}
		f.Tested = "Connection works. Nothing was saved: choose Save to keep changes."
		h.render(w, r, http.StatusOK, "admin_email_form", f)
		return
	}
	up, err := h.mailboxes.UpdateMailbox(ctx, mb.ID, spec)
	if err != nil {
		if !f.refused(err) {
			h.serverError(w, r, err)
			return
		}
		refuse()
		return
	}
	h.log.Info("mailbox settings changed", "mailbox_id", mb.ID, "sign_in_forgotten", up.SignInForgotten, "user_id", current(r).user.ID)
	h.setFlash(w, "saved", mb.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(mb.ID, 10), http.StatusSeeOther)
}

// authLabel is how a mailbox signs in, for people.
func (h *Handler) authLabel(auth string) string {
	if auth == "password" {
		return "Password (IMAP)"
	}
	return providerLabel(h.oauth, auth)
}

// emailPause stops fetching a mailbox until it is resumed.
func (h *Handler) emailPause(w http.ResponseWriter, r *http.Request) { h.setPaused(w, r, true) }

// emailResume fetches a paused mailbox again, from where it stopped.
func (h *Handler) emailResume(w http.ResponseWriter, r *http.Request) { h.setPaused(w, r, false) }

func (h *Handler) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	mb, ok := h.mailboxFromPath(w, r)
	if !ok {
		return
	}
	if _, err := h.mailboxes.SetPaused(r.Context(), mb.ID, paused); err != nil {
		if msg, ok := userSentence(err); ok {
			h.errorPage(w, r, errorPage{Status: http.StatusUnprocessableEntity, Heading: "Not changed", Message: msg,
				LinkURL: "/admin/emails#mailbox-" + strconv.FormatInt(mb.ID, 10), LinkText: "Back to Emails"})
			return
		}
		h.serverError(w, r, err)
		return
	}
	kind := "resumed"
	if paused {
		kind = "paused"
	}
	h.log.Info("mailbox "+kind, "mailbox_id", mb.ID, "user_id", current(r).user.ID)
	h.setFlash(w, kind, mb.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(mb.ID, 10), http.StatusSeeOther)
}
