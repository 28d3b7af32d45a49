package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/oauth"
)

// emailNew shows the form that adds a mailbox signing in with a password
// (IMAP/SMTP), with the usual defaults.
func (h *Handler) emailNew(w http.ResponseWriter, r *http.Request) {
	f := mailboxForm{page: h.base(r, "emails"), Password: true, HasServer: true, Provider: "Password (IMAP)", IMAPPort: "993", IMAPSecurity: "tls",
		SMTPSecurity: "starttls", Folders: "INBOX", AfterProcessing: "leave", InitialDays: "14", MaxAgeDays: "90",
		SaveSent: true, SaveSentHint: h.saveSentHint("password"), AckTemplate: desk.DefaultAckTemplate}
	h.render(w, r, http.StatusOK, "admin_email_form", f)
}

// emailNewSubmit tests the settings (Test connection) or adds the mailbox
// (Add mailbox). Adding tests first too: nothing is saved until the
// server accepted the sign-in and has the folders.
func (h *Handler) emailNewSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := mailboxForm{page: h.base(r, "emails"), Password: true, HasServer: true, Provider: "Password (IMAP)", SaveSentHint: h.saveSentHint("password")}
	readMailboxForm(r, &f)
	var spec desk.MailboxSpec
	refuse := func() { h.render(w, r, http.StatusUnprocessableEntity, "admin_email_form", f) }
	if !f.applyTo(&spec, r.PostFormValue("password")) {
		f.refused(h.mailboxes.Check(spec, false)) // the other fields' mistakes too, all at once
		refuse()
		return
	}
	rep, err := h.mailboxes.TestConnection(ctx, spec)
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
	if r.PostFormValue("action") != "add" {
		login := cmpOr(spec.Username, strings.ToLower(spec.Address))
		f.Tested = "Connection works: signed in to " + f.IMAPHost + " as " + login + " and found " + strings.Join(folderList(spec.Folders), ", ")
		if len(rep.Checks) > 1 {
			f.Tested += "; signed in to the SMTP server " + rep.Checks[1].Addr + " (no email sent)"
		}
		f.Tested += ". Type the password again and choose Add mailbox to save it."
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

// logTestFailure logs which server and step of a connection test failed
// (never what the server said: it can name the account).
func (h *Handler) logTestFailure(r *http.Request, err error) {
	var ce *desk.ConnectionError
	switch {
	case errors.As(err, &ce) && ce.Server == desk.ServerSMTP:
		h.log.Info("mailbox connection test failed", "server", ce.Server, "step", ce.SMTPStage, "smtp_kind", ce.SMTPKind.String(), "user_id", current(r).user.ID)
	case errors.As(err, &ce):
		h.log.Info("mailbox connection test failed", "server", ce.Server, "step", ce.Step, "user_id", current(r).user.ID)
	}
}

// saveSentHint explains the Sent-copy setting for a mailbox signing in
// with auth ("password" or a provider's name).
func (h *Handler) saveSentHint(auth string) string {
	if h.oauth != nil {
		if p, ok := h.oauth.Provider(auth); ok && (p.Kind == oauth.KindMicrosoft || p.Kind == oauth.KindGoogle) {
			return providerLabel(h.oauth, auth) + " saves what Postdesk sends to the Sent folder itself, so leave this off: on, each reply would be there twice."
		}
	}
	return "Microsoft 365 and Gmail save sent mail to Sent themselves; most other mail servers do not, so for them Postdesk appends a copy over IMAP (on by default)."
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
