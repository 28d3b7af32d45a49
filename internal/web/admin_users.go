package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// Admin -> Users: every user with their role, state and last sign-in, and
// the form that adds one. Every change goes through auth.Service (as for
// the API and the CLI); the page only translates its *auth.ValidationError.

type usersPage struct {
	page
	Users  []userRow
	Form   addUserForm
	Errors map[string]string
}

type userRow struct {
	store.User
	State         string    // store.UserActive, UserDisabled, UserInvited
	InviteExpires time.Time // a pending invitation's end (zero: none)
	Self          bool
}

type addUserForm struct {
	Email, Name, Role, Setup string
}

// users shows Admin -> Users.
func (h *Handler) users(w http.ResponseWriter, r *http.Request) {
	h.renderUsers(w, r, http.StatusOK, addUserForm{Role: store.RoleAgent, Setup: auth.SetupInvite}, nil)
}

func (h *Handler) renderUsers(w http.ResponseWriter, r *http.Request, status int, f addUserForm, errs map[string]string) {
	list, err := h.db.Users(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p := usersPage{page: h.base(r, "users"), Form: f, Errors: errs}
	now := h.now()
	for _, u := range list {
		row := userRow{User: u, State: u.State(), Self: u.ID == current(r).user.ID}
		if row.State == store.UserInvited {
			inv, err := h.db.PendingInvitation(r.Context(), u.ID, now)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				h.serverError(w, r, err)
				return
			}
			row.InviteExpires = inv.ExpiresAt
		}
		p.Users = append(p.Users, row)
	}
	h.render(w, r, status, "admin_users", p)
}

// userAdd adds a user and shows, once, how they get in.
func (h *Handler) userAdd(w http.ResponseWriter, r *http.Request) {
	f := addUserForm{Email: strings.TrimSpace(r.PostFormValue("email")), Name: r.PostFormValue("name"),
		Role: r.PostFormValue("role"), Setup: r.PostFormValue("setup")}
	u, creds, err := h.auth.AddUser(r.Context(), current(r).user, auth.NewUser{Email: f.Email, Name: f.Name, Role: f.Role, Setup: f.Setup})
	if errs, ok := userErrors(err); ok {
		h.renderUsers(w, r, http.StatusUnprocessableEntity, f, errs)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("user added on the page", "user_id", u.ID, "by_user_id", current(r).user.ID)
	h.renderUser(w, r, http.StatusCreated, u.ID, userFlash{Created: true, Creds: h.credentialsView(r, creds)}, nil)
}

// userErrors translates a refusal of auth's user service into the
// messages of a form, by field; ok is false for any other error.
func userErrors(err error) (map[string]string, bool) {
	var v *auth.ValidationError
	if !errors.As(err, &v) {
		return nil, false
	}
	return map[string]string{v.Field: v.Message}, true
}

// credentialsView is what an admin hands to a user, shown once.
type credentialsView struct {
	Password string
	Link     string
	Expires  time.Time
}

func (h *Handler) credentialsView(r *http.Request, c auth.Credentials) *credentialsView {
	v := &credentialsView{Password: c.Password, Expires: c.InviteExpires}
	if c.InviteToken != "" {
		v.Link = h.siteURL(r) + "/invite/" + c.InviteToken
	}
	return v
}

// siteURL is the address users reach Postdesk at: Options.BaseURL, or
// this request's scheme and host.
func (h *Handler) siteURL(r *http.Request) string {
	if h.baseURL != "" {
		return strings.TrimSuffix(h.baseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || h.secureCookies {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
