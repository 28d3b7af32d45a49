package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// A user's own API keys on their profile: create (a name and an optional
// last day; the key is shown once), list with last use, revoke. The same
// auth.Service calls as the API's /me/apikeys and "postdesk apikey".

type keyView struct {
	store.APIKey
	Expired bool
}

type newKeyView struct {
	Key  string
	Name string
}

func (h *Handler) keyViews(r *http.Request) ([]keyView, error) {
	keys, err := h.auth.APIKeys(r.Context(), current(r).user.ID)
	if err != nil {
		return nil, err
	}
	now := h.now()
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyView{APIKey: k, Expired: k.Expired(now)})
	}
	return out, nil
}

// keyCreate issues a key for the signed-in user and shows it once.
func (h *Handler) keyCreate(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("key_name"))
	expiry := strings.TrimSpace(r.PostFormValue("key_expires"))
	again := profilePage{KeyName: name, KeyExpiry: expiry}
	if name == "" {
		again.Errors = map[string]string{"key_name": "Give the key a name, so you recognise it later (what uses it?)."}
		h.renderProfile(w, r, http.StatusUnprocessableEntity, again, nil)
		return
	}
	var expires time.Time
	if expiry != "" {
		day, err := time.ParseInLocation(time.DateOnly, expiry, zoneOf(r.Context()))
		if err != nil {
			again.Errors = map[string]string{"key_expires": "Enter the last day as a date, like 2027-03-31, or leave it empty."}
			h.renderProfile(w, r, http.StatusUnprocessableEntity, again, nil)
			return
		}
		expires = day.AddDate(0, 0, 1) // it works through that day, in the user's zone
	}
	key, k, err := h.auth.IssueAPIKey(r.Context(), auth.NewAPIKey{UserID: current(r).user.ID, Name: name, ExpiresAt: expires})
	var invalid *auth.InvalidKeyError
	if errors.As(err, &invalid) {
		field, msg := "key_name", "The name "+invalid.Reason+"."
		if invalid.Field == "expires_at" {
			field, msg = "key_expires", "The last day must be today or later."
			if expires.After(time.Now().Add(auth.MaxKeyLifetime)) {
				msg = "The last day must be within 10 years; leave it empty for a key that never expires."
			}
		}
		again.Errors = map[string]string{field: msg}
		h.renderProfile(w, r, http.StatusUnprocessableEntity, again, nil)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("api key created on the profile", "user_id", k.UserID, "api_key_id", k.ID)
	h.renderProfile(w, r, http.StatusCreated, profilePage{NewKey: &newKeyView{Key: key, Name: k.Name}}, nil)
}

// keyRevoke revokes one of the signed-in user's keys.
func (h *Handler) keyRevoke(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such API key.")
		return
	}
	_, err := h.auth.RevokeAPIKey(r.Context(), id, current(r).user.ID)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "There is no such API key: it may have been revoked already. Your keys are on your profile.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.log.Info("api key revoked on the profile", "user_id", current(r).user.ID, "api_key_id", id)
	http.Redirect(w, r, "/profile?done=revoked#apikeys", http.StatusSeeOther)
}
