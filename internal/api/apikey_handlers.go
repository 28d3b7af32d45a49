package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// apiKeyResponse is an API key as its owner sees it; the key itself only
// once, in the answer that created it.
type apiKeyResponse struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Expired    bool       `json:"expired"`
	Current    bool       `json:"current"` // the key this request was made with
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Key        string     `json:"key,omitempty"`
}

func toAPIKey(k store.APIKey, current int64, now time.Time) apiKeyResponse {
	return apiKeyResponse{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: utc(k.CreatedAt),
		LastUsedAt: timeOrNil(k.LastUsedAt), ExpiresAt: timeOrNil(k.ExpiresAt), Expired: k.Expired(now), Current: k.ID == current}
}

// getMyAPIKeys lists the keys of the request's user that are not revoked.
func (h *handler) getMyAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.auth.APIKeys(r.Context(), currentUser(r).ID)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	now := time.Now()
	out := make([]apiKeyResponse, 0, len(keys))
	for _, k := range keys {
		out = append(out, toAPIKey(k, info(r).keyID, now))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"api_keys": out})
}

type createAPIKeyRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// createMyAPIKey issues a key for the request's user and answers it once.
func (h *handler) createMyAPIKey(w http.ResponseWriter, r *http.Request) {
	var req createAPIKeyRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	nk := auth.NewAPIKey{UserID: currentUser(r).ID, Name: strings.TrimSpace(req.Name)}
	if req.ExpiresAt != nil {
		nk.ExpiresAt = *req.ExpiresAt
	}
	parent := info(r).key
	nk.Parent = &parent
	key, k, err := h.auth.IssueAPIKey(r.Context(), nk)
	var invalid *auth.InvalidKeyError
	if errors.As(err, &invalid) {
		writeError(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("%s %s", invalid.Field, invalid.Reason))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	h.log.Info("api key created", "request_id", info(r).id, "user_id", k.UserID, "new_api_key_id", k.ID)
	resp := toAPIKey(k, info(r).keyID, time.Now())
	resp.Key = key
	w.Header().Set("Location", Prefix+"me/apikeys/"+fmt.Sprint(k.ID))
	writeJSON(w, r, http.StatusCreated, resp)
}

// deleteMyAPIKey revokes one of the request's user's keys (possibly the
// one it was made with) and answers it. Another user's key is 404, as if
// it did not exist.
func (h *handler) deleteMyAPIKey(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "keyID", "API key")
	if !ok {
		return
	}
	k, err := h.auth.RevokeAPIKey(r.Context(), id, currentUser(r).ID)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("API key %d not found among your keys (or already revoked)", id))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	h.log.Info("api key revoked", "request_id", info(r).id, "user_id", k.UserID, "revoked_api_key_id", k.ID)
	resp := toAPIKey(k, info(r).keyID, time.Now())
	resp.RevokedAt = timeOrNil(k.RevokedAt)
	writeJSON(w, r, http.StatusOK, resp)
}
