package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/postdesk/postdesk/internal/store"
)

// One user in Admin -> Users: role, disable or enable, reset password.
// Role and state changes redirect back with a sentence (?done=); a reset
// answers with the new credentials at once, since they are shown once.

type userPage struct {
	page
	U          store.User
	State      string
	Self       bool
	Keys       int               // API keys not revoked
	Invitation *store.Invitation // pending, if any
	Flash      string
	Created    bool             // just added: the heading says so
	Creds      *credentialsView // shown once
	Errors     map[string]string
}

// userFlash is what a user's page says above its facts.
type userFlash struct {
	Created bool
	Creds   *credentialsView
	Done    string
}

// doneText are the sentences of ?done= after a change.
var doneText = map[string]string{
	"role":     "Saved the role.",
	"disabled": "Disabled: their sessions ended and their API keys stopped working.",
	"enabled":  "Enabled: they can sign in again, and their API keys work again.",
}

// userShow shows one user.
func (h *Handler) userShow(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such user.")
		return
	}
	h.renderUser(w, r, http.StatusOK, id, userFlash{Done: doneText[r.URL.Query().Get("done")]}, nil)
}

func (h *Handler) renderUser(w http.ResponseWriter, r *http.Request, status int, id int64, f userFlash, errs map[string]string) {
	ctx := r.Context()
	u, err := h.db.User(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "There is no such user: it may have been removed. Open Admin → Users for the list.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	keys, err := h.auth.APIKeys(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p := userPage{page: h.base(r, "users"), U: u, State: u.State(), Self: u.ID == current(r).user.ID, Keys: len(keys),
		Flash: f.Done, Created: f.Created, Creds: f.Creds, Errors: errs}
	if inv, err := h.db.PendingInvitation(ctx, u.ID, h.now()); err == nil {
		p.Invitation = &inv
	} else if !errors.Is(err, store.ErrNotFound) {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, status, "admin_user", p)
}

// userRole changes a user's role.
func (h *Handler) userRole(w http.ResponseWriter, r *http.Request) {
	h.userChange(w, r, "role", func(id int64) error {
		_, err := h.auth.SetRole(r.Context(), current(r).user, id, r.PostFormValue("role"))
		return err
	})
}

// userDisable disables a user: their sessions and API keys stop at once.
func (h *Handler) userDisable(w http.ResponseWriter, r *http.Request) {
	h.userChange(w, r, "disabled", func(id int64) error {
		_, err := h.auth.SetDisabled(r.Context(), current(r).user, id, true)
		return err
	})
}

// userEnable enables a disabled user.
func (h *Handler) userEnable(w http.ResponseWriter, r *http.Request) {
	h.userChange(w, r, "enabled", func(id int64) error {
		_, err := h.auth.SetDisabled(r.Context(), current(r).user, id, false)
		return err
	})
}

// userChange runs one change and redirects back, or shows its refusal.
func (h *Handler) userChange(w http.ResponseWriter, r *http.Request, done string, change func(id int64) error) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such user.")
		return
	}
	err := change(id)
	if errs, ok := userErrors(err); ok {
		if msg, ok := errs[""]; ok {
			delete(errs, "")
			errs[done] = msg
		}
		h.renderUser(w, r, http.StatusUnprocessableEntity, id, userFlash{}, errs)
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "There is no such user: it may have been removed. Open Admin → Users for the list.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/users/"+strconv.FormatInt(id, 10)+"?done="+done, http.StatusSeeOther)
}

// userReset gives a user a new password or invitation link, shown once.
func (h *Handler) userReset(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such user.")
		return
	}
	creds, err := h.auth.ResetPassword(r.Context(), current(r).user, id, r.PostFormValue("setup"))
	if errs, ok := userErrors(err); ok {
		h.renderUser(w, r, http.StatusUnprocessableEntity, id, userFlash{}, map[string]string{"reset": firstMessage(errs)})
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "There is no such user: it may have been removed. Open Admin → Users for the list.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.renderUser(w, r, http.StatusOK, id, userFlash{Creds: h.credentialsView(r, creds)}, nil)
}

// firstMessage is the one message of a form's errors.
func firstMessage(errs map[string]string) string {
	for _, m := range errs {
		return m
	}
	return ""
}
