package fakeidp

import (
	"net/http"
	"strings"
	"time"
)

// liveAccessToken returns the grant and account of an access token that is
// unexpired by the clock and not revoked. Called with idp.mu held.
func (idp *IdP) liveAccessToken(token string, now time.Time) (*accessToken, *account) {
	at, ok := idp.access[token]
	if !ok || !now.Before(at.expires) {
		return nil, nil
	}
	acct, ok := idp.accounts[at.grant.account]
	if !ok || at.grant.epoch < acct.epoch || at.grant.revoked {
		return nil, nil
	}
	return at, acct
}

// handleIntrospect is RFC 7662 token introspection, as Dovecot's oauth2
// passdb calls it (introspection_mode = post: form "token=..."). It needs no
// client authentication. "username" is the account address, or the one
// mailbox the account was granted (see GrantMailbox).
func (idp *IdP) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" { // RFC 7662 2.1: token is REQUIRED
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "token is required"})
		return
	}
	now := idp.clock.Now()
	idp.mu.Lock()
	at, acct := idp.liveAccessToken(token, now)
	var resp map[string]any
	if at != nil {
		username := acct.Address
		if len(acct.mailboxes) == 1 {
			username = acct.mailboxes[0]
		}
		resp = map[string]any{
			"active":     true,
			"username":   username,
			"scope":      strings.Join(at.scopes, " "),
			"client_id":  at.grant.clientID,
			"token_type": "Bearer",
			"exp":        at.expires.Unix(),
			"iat":        at.issued.Unix(),
			"sub":        pairwiseSub(at.grant.clientID, acct.oid),
			"aud":        resourceOf(at.scopes),
			"iss":        idp.issuer(r),
		}
	}
	idp.mu.Unlock()
	if resp == nil {
		// RFC 7662 2.2: an unknown, expired or revoked token is just inactive.
		resp = map[string]any{"active": false}
	}
	idp.log.Debug("fakeidp introspection", "active", resp["active"])
	writeJSON(w, http.StatusOK, resp)
}

// handleUserinfo is the OpenID Connect UserInfo endpoint (Core 5.3) as
// Microsoft Graph's /oidc/userinfo serves it.
func (idp *IdP) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	now := idp.clock.Now()
	idp.mu.Lock()
	var at *accessToken
	var acct *account
	if strings.EqualFold(scheme, "Bearer") && token != "" {
		at, acct = idp.liveAccessToken(token, now)
	}
	var resp map[string]any
	if at != nil {
		resp = map[string]any{
			"sub":                pairwiseSub(at.grant.clientID, acct.oid),
			"name":               acct.Name,
			"email":              acct.Address,
			"preferred_username": acct.Address,
		}
	}
	idp.mu.Unlock()
	if resp == nil {
		// RFC 6750 3.1
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token is missing, invalid or expired."`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{
			"code":    "InvalidAuthenticationToken",
			"message": "Access token is empty, invalid or expired.",
		}})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
