package web

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
)

// emailAdd adds a support mailbox that signs in with OAuth and goes
// straight on to its provider's sign-in page.
func (h *Handler) emailAdd(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := addMailboxForm{
		Address:     strings.TrimSpace(r.PostFormValue("address")),
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Provider:    r.PostFormValue("provider"),
		AllowChange: r.PostFormValue("allow_change") == "1",
	}
	refuse := func(msg string) {
		f.Error = msg
		h.renderEmails(w, r, http.StatusUnprocessableEntity, emailsForm{add: &f})
	}
	if h.oauth == nil {
		refuse("No sign-in provider is configured, so a mailbox cannot be connected yet.")
		return
	}
	if a, err := mail.ParseAddress(f.Address); err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		refuse("Enter the mailbox's email address, like support@example.com.")
		return
	}
	if _, ok := h.oauth.Provider(f.Provider); !ok {
		refuse("Choose how the mailbox signs in.")
		return
	}
	// desk decides, as for the API and the CLI: the provider's servers, and
	// a server row so that the mailbox is fetched once connected.
	mb, err := h.mailboxes.AddMailbox(ctx, desk.MailboxSpec{Address: f.Address, Name: f.Name, Auth: f.Provider})
	var invalid *desk.ValidationError
	switch {
	case errors.Is(err, desk.ErrExists):
		refuse(strings.ToLower(f.Address) + " is already a support mailbox: use its Reauthenticate button below.")
		return
	case errors.As(err, &invalid) && invalid.Field == "address":
		refuse("Enter the mailbox's email address, like support@example.com.")
		return
	case errors.As(err, &invalid):
		refuse(userMessage(err))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox added", "mailbox_id", mb.ID, "provider", f.Provider, "user_id", current(r).user.ID)
	h.beginSignIn(w, r, mb, f.AllowChange)
}
