package web

import (
	_ "embed"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// The profile page, for every user: name, time zone, notification choices
// and followed mailboxes (one form), password (its own form, checked like
// a sign-in), and their own API keys (profile_apikeys.go). Changes go
// through auth.Service, as for the API.

//go:embed timezones.txt
var timezoneList string

// zoneNames are the time zones offered, from timezones.txt.
var zoneNames = func() []string {
	var out []string
	for _, l := range strings.Split(timezoneList, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}()

type profilePage struct {
	page
	Name      string
	TimeZone  string // "" shows as UTC
	Zones     []string
	Now       time.Time
	Notify    store.NotifyChoices
	Mailboxes []followView
	Keys      []keyView
	NewKey    *newKeyView // the key just created, shown once
	KeyName   string      // the create form's values after a refusal
	KeyExpiry string
	Flash     string
	Errors    map[string]string
}

type followView struct {
	ID       int64
	Address  string
	Name     string
	Followed bool
}

// profileDone are the sentences of ?done= after a change.
var profileDone = map[string]string{
	"profile":  "Saved your profile.",
	"password": "Changed your password. Your other sessions were signed out.",
	"revoked":  "Revoked the API key: it stops working at once.",
}

// profile shows the signed-in user's profile.
func (h *Handler) profile(w http.ResponseWriter, r *http.Request) {
	h.renderProfile(w, r, http.StatusOK, profilePage{Flash: profileDone[r.URL.Query().Get("done")]}, nil)
}

// renderProfile fills p from the database, keeping the form values a
// refused submission set (p.Name and the rest, when form is non-nil).
func (h *Handler) renderProfile(w http.ResponseWriter, r *http.Request, status int, p profilePage, form *auth.Profile) {
	ctx := r.Context()
	u := current(r).user
	p.page = h.base(r, "profile")
	p.Now = h.now()
	p.Name, p.TimeZone, p.Notify = u.Name, u.TimeZone, u.Notify
	followed, err := h.db.FollowedMailboxes(ctx, u.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if form != nil {
		p.Name, p.TimeZone, p.Notify, followed = form.Name, form.TimeZone, form.Notify, form.Follows
	}
	p.Zones = zoneNames
	if p.TimeZone != "" && !slices.Contains(zoneNames, p.TimeZone) {
		p.Zones = append([]string{p.TimeZone}, zoneNames...)
	}
	mbs, err := h.db.Mailboxes(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, mb := range mbs {
		if !mb.Removed() {
			p.Mailboxes = append(p.Mailboxes, followView{ID: mb.ID, Address: mb.Address, Name: mb.Name, Followed: slices.Contains(followed, mb.ID)})
		}
	}
	if p.Keys, err = h.keyViews(r); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, status, "profile", p)
}

// profileSave saves name, time zone, notification choices and follows.
func (h *Handler) profileSave(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badRequest(w, r, "The form could not be read; reload the page and try again.")
		return
	}
	f := auth.Profile{Name: r.PostFormValue("name"), TimeZone: strings.TrimSpace(r.PostFormValue("time_zone")),
		Notify: store.NotifyChoices{NewTicket: r.PostFormValue("notify_new_ticket") != "",
			CustomerReply: r.PostFormValue("notify_customer_reply") != "", Assigned: r.PostFormValue("notify_assigned") != ""}}
	for _, v := range r.PostForm["follow"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			h.badRequest(w, r, "The form could not be read; reload the page and try again.")
			return
		}
		f.Follows = append(f.Follows, id)
	}
	_, err := h.auth.UpdateProfile(r.Context(), current(r).user.ID, f)
	if errs, ok := userErrors(err); ok {
		h.renderProfile(w, r, http.StatusUnprocessableEntity, profilePage{Errors: errs}, &f)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/profile?done=profile", http.StatusSeeOther)
}

// profilePassword changes the signed-in user's password.
func (h *Handler) profilePassword(w http.ResponseWriter, r *http.Request) {
	s := current(r)
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("confirm_password") {
		h.renderProfile(w, r, http.StatusUnprocessableEntity,
			profilePage{Errors: map[string]string{"confirm_password": "The two new passwords differ: type the same password twice."}}, nil)
		return
	}
	err := h.auth.ChangePassword(r.Context(), s.user.ID, r.PostFormValue("current_password"), next, s.sess.ID, h.clientIP(r))
	var throttled *auth.ThrottledError
	switch {
	case errors.As(err, &throttled):
		wait := retryAfter(w, throttled.RetryAfter)
		h.renderProfile(w, r, http.StatusTooManyRequests,
			profilePage{Errors: map[string]string{"current_password": "Too many wrong passwords. Try again in " + wait + "."}}, nil)
		return
	case errors.Is(err, auth.ErrBusy):
		wait := retryAfter(w, 5*time.Second)
		h.renderProfile(w, r, http.StatusServiceUnavailable,
			profilePage{Errors: map[string]string{"current_password": "Postdesk is busy checking other sign-ins. Nothing was changed: try again in " + wait + "."}}, nil)
		return
	}
	if errs, ok := userErrors(err); ok {
		h.renderProfile(w, r, http.StatusUnprocessableEntity, profilePage{Errors: errs}, nil)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/profile?done=password#password", http.StatusSeeOther)
}
