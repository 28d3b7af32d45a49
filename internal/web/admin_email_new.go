package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
)

// emailNew shows the form that adds a mailbox signing in with a password
// (IMAP/SMTP), with the usual defaults.
func (h *Handler) emailNew(w http.ResponseWriter, r *http.Request) {
	f := mailboxForm{page: h.base(r, "emails"), Password: true, Provider: "Password (IMAP)", IMAPPort: "993", IMAPSecurity: "tls",
		SMTPSecurity: "starttls", Folders: "INBOX", AfterProcessing: "leave", InitialDays: "14", MaxAgeDays: "90"}
	h.render(w, r, http.StatusOK, "admin_email_form", f)
}

// emailNewSubmit tests the settings (Test connection) or adds the mailbox
// (Add mailbox). Adding tests first too: nothing is saved until the
// server accepted the sign-in and has the folders.
func (h *Handler) emailNewSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := mailboxForm{page: h.base(r, "emails"), Password: true, Provider: "Password (IMAP)"}
	readMailboxForm(r, &f)
	var spec desk.MailboxSpec
	refuse := func() { h.render(w, r, http.StatusUnprocessableEntity, "admin_email_form", f) }
	if !f.applyTo(&spec, r.PostFormValue("password")) {
		refuse()
		return
	}
	err := h.mailboxes.TestConnection(ctx, spec)
	if err != nil {
		if !f.refused(err) {
			h.serverError(w, r, err)
			return
		}
		var ce *desk.ConnectionError
		if errors.As(err, &ce) {
			h.log.Info("mailbox connection test failed", "step", ce.Step, "user_id", current(r).user.ID)
		}
		refuse()
		return
	}
	if r.PostFormValue("action") != "add" {
		login := cmpOr(spec.Username, strings.ToLower(spec.Address))
		f.Tested = "Connection works: signed in to " + f.IMAPHost + " as " + login + " and found " + strings.Join(folderList(spec.Folders), ", ") +
			". Type the password again and choose Add mailbox to save it."
		h.render(w, r, http.StatusOK, "admin_email_form", f)
		return
	}
	mb, err := h.mailboxes.AddMailbox(ctx, spec)
	if err != nil {
		if errors.Is(err, desk.ErrExists) {
			f.Errors = map[string]string{"address": strings.ToLower(f.Address) + " is already a support mailbox: edit it in Admin → Emails."}
			refuse()
			return
		}
		if !f.refused(err) {
			h.serverError(w, r, err)
			return
		}
		refuse()
		return
	}
	h.log.Info("mailbox added", "mailbox_id", mb.ID, "provider", "password", "user_id", current(r).user.ID)
	h.setFlash(w, "added", mb.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(mb.ID, 10), http.StatusSeeOther)
}

func folderList(folders []string) []string {
	if len(folders) == 0 {
		return []string{"INBOX"}
	}
	return folders
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
