package web

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/postdesk/postdesk/internal/store"
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
	var mb store.Mailbox
	err := h.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		if mb, err = tx.CreateMailbox(ctx, f.Address, f.Name); err != nil {
			return err
		}
		return tx.SetMailboxAuthKind(ctx, mb.ID, store.AuthOAuth, f.Provider, h.now().UTC())
	})
	if errors.Is(err, store.ErrConflict) {
		refuse(strings.ToLower(f.Address) + " is already a support mailbox: use its Reauthenticate button below.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("mailbox added", "mailbox_id", mb.ID, "provider", f.Provider, "user_id", current(r).user.ID)
	h.beginSignIn(w, r, mb, f.AllowChange)
}
