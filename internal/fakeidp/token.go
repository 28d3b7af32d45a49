package fakeidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// tokenResponse is Microsoft's successful token response (RFC 6749 5.1).
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// handleToken is the token endpoint (RFC 6749 3.2).
func (idp *IdP) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		idp.writeTokenError(w, r, newAAD(400, "invalid_request", 900144, "The request body must be form-encoded."))
		return
	}
	grantType := r.PostForm.Get("grant_type")
	resp, account, e := idp.token(r, grantType)
	if e != nil {
		idp.delay(r)
		idp.log.Info("fakeidp token request refused", "grant_type", grantType, "account", account,
			"client_id", r.PostForm.Get("client_id"), "error", e.err, "aadsts", e.code)
		idp.writeTokenError(w, r, e)
		return
	}
	idp.log.Info("fakeidp token issued", "grant_type", grantType, "account", account, "client_id", r.PostForm.Get("client_id"))
	if !idp.delay(r) {
		idp.log.Info("fakeidp token answer not delivered: the client went away", "grant_type", grantType, "account", account)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// token runs a token request; account is the account it concerned, if known.
func (idp *IdP) token(r *http.Request, grantType string) (resp *tokenResponse, account string, e *aadError) {
	now := idp.clock.Now()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.tokenRequests++
	if idp.unavailable > 0 {
		idp.unavailable--
		return nil, "", errTemporarilyUnavailable()
	}
	app, e := idp.authenticateClient(r, now)
	if e != nil {
		return nil, "", e
	}
	switch grantType {
	case "authorization_code":
		return idp.redeemCode(r, app, now)
	case "refresh_token":
		return idp.redeemRefresh(r, app, now)
	case "":
		return nil, "", errMissingParam("grant_type")
	}
	return nil, "", errUnsupportedGrant(grantType)
}

// authenticateClient checks client_id and, for a confidential client, its
// secret from the form or HTTP Basic (RFC 6749 2.3.1). Called with idp.mu
// held.
func (idp *IdP) authenticateClient(r *http.Request, now time.Time) (*App, *aadError) {
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: both are form-urlencoded before Basic encoding.
		if u, err := url.QueryUnescape(user); err == nil {
			user = u
		}
		if p, err := url.QueryUnescape(pass); err == nil {
			pass = p
		}
		if clientID != "" && clientID != user {
			return nil, newAAD(401, "invalid_client", 7000215, "The client_id in the Authorization header does not match the request body.")
		}
		clientID, secret = user, pass
	}
	if clientID == "" {
		return nil, errMissingParam("client_id")
	}
	app, ok := idp.apps[clientID]
	if !ok {
		return nil, errUnknownApp(clientID, r.PathValue("tenant"))
	}
	if app.ClientSecret == "" {
		return app, nil // public client
	}
	switch {
	case secret == "":
		return nil, errSecretMissing()
	case subtle.ConstantTimeCompare([]byte(secret), []byte(app.ClientSecret)) != 1:
		return nil, errSecretInvalid(clientID)
	case !app.SecretExpiresAt.IsZero() && !now.Before(app.SecretExpiresAt):
		return nil, errSecretExpired(clientID)
	}
	return app, nil
}

// redeemCode is the authorization_code grant (RFC 6749 4.1.3, RFC 7636 4.6).
func (idp *IdP) redeemCode(r *http.Request, app *App, now time.Time) (*tokenResponse, string, *aadError) {
	code := r.PostForm.Get("code")
	if code == "" {
		return nil, "", errMissingParam("code")
	}
	ac, ok := idp.codes[code]
	if !ok || ac.grant.clientID != app.ClientID {
		return nil, "", errCodeInvalid()
	}
	key := ac.grant.account
	if ac.redeemed {
		return nil, key, errCodeRedeemed()
	}
	if now.After(ac.expires) {
		return nil, key, newAAD(400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	}
	// Whatever happens next, the code is spent (RFC 6749 4.1.2: single use).
	ac.redeemed = true
	if got := r.PostForm.Get("redirect_uri"); got != ac.redirectURI {
		return nil, key, errCodeReplyMismatch(got, ac.redirectURI)
	}
	verifier := r.PostForm.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	if verifier == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge {
		return nil, key, errVerifier()
	}
	acct, ok := idp.accounts[key]
	if !ok {
		return nil, key, errGrantInvalid()
	}
	if ac.grant.epoch < acct.epoch {
		return nil, key, idp.refreshError(50173, &refreshToken{grant: ac.grant, issued: ac.grant.authTime}, app, acct, now)
	}
	return idp.issueTokens(r, ac.grant, ac.grant.scopes, acct, now), key, nil
}

// redeemRefresh is the refresh_token grant (RFC 6749 6) with rotation.
func (idp *IdP) redeemRefresh(r *http.Request, app *App, now time.Time) (*tokenResponse, string, *aadError) {
	token := r.PostForm.Get("refresh_token")
	if token == "" {
		return nil, "", errMissingParam("refresh_token")
	}
	rt, ok := idp.refresh[token]
	if !ok {
		return nil, "", errRefreshMalformed()
	}
	key := rt.grant.account
	if rt.grant.clientID != app.ClientID {
		return nil, key, errGrantInvalid()
	}
	acct, ok := idp.accounts[key]
	if !ok {
		return nil, key, errGrantInvalid()
	}
	acct.refreshCount++
	if rt.superseded {
		idp.spentTokenPresented(rt, acct, app, now)
	}
	switch {
	case rt.grant.revoked:
		return nil, key, errGrantRevoked()
	case rt.grant.epoch < acct.epoch:
		return nil, key, idp.refreshError(50173, rt, app, acct, now)
	case acct.refreshErr != 0:
		code := acct.refreshErr
		if acct.refreshErrOnce {
			acct.refreshErr, acct.refreshErrOnce = 0, false
		}
		return nil, key, idp.refreshError(code, rt, app, acct, now)
	case rt.superseded && idp.opts.RefreshTokenReuse == ReuseRefused:
		return nil, key, errGrantInvalid()
	case now.Sub(rt.issued) > idp.opts.RefreshTokenInactivity:
		return nil, key, idp.refreshError(700082, rt, app, acct, now)
	case idp.opts.MaxSessionAge > 0 && now.Sub(rt.grant.authTime) > idp.opts.MaxSessionAge:
		return nil, key, idp.refreshError(70043, rt, app, acct, now)
	}
	scopes := rt.grant.scopes
	if s := strings.Fields(r.PostForm.Get("scope")); len(s) > 0 {
		for _, sc := range s {
			if !hasScope(rt.grant.scopes, sc) && !oidcScope(sc) {
				return nil, key, idp.refreshError(65001, rt, app, acct, now)
			}
		}
		scopes = s
	}
	rt.superseded = true
	return idp.issueTokens(r, rt.grant, scopes, acct, now), key, nil
}

// issueTokens mints an access token, a refresh token (with offline_access)
// and an id_token (with openid). Called with idp.mu held.
func (idp *IdP) issueTokens(r *http.Request, g *grant, scopes []string, acct *account, now time.Time) *tokenResponse {
	idp.sweep(now)
	lifetime := idp.opts.AccessTokenLifetime
	access := "EwB" + randomToken(96)
	idp.access[access] = &accessToken{grant: g, scopes: slices.Clone(scopes), issued: now, expires: now.Add(lifetime)}
	resp := &tokenResponse{
		TokenType:    "Bearer",
		Scope:        strings.Join(slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == "offline_access" }), " "),
		ExpiresIn:    int(lifetime / time.Second),
		ExtExpiresIn: int(lifetime / time.Second),
		AccessToken:  access,
	}
	if hasScope(g.scopes, "offline_access") {
		refresh := "1.AXkA" + randomToken(120)
		idp.refresh[refresh] = &refreshToken{grant: g, issued: now}
		resp.RefreshToken = refresh
	}
	if hasScope(g.scopes, "openid") {
		// Signing cannot fail with a valid RSA key; an empty id_token would
		// show up in any test that reads it.
		resp.IDToken, _ = idp.idToken(r, g, acct, now)
	}
	return resp
}

// sweep drops expired tokens now and then, so a long demo does not grow
// without bound. Called with idp.mu held.
func (idp *IdP) sweep(now time.Time) {
	idp.issued++
	if idp.issued%256 != 0 {
		return
	}
	for k, at := range idp.access {
		if now.After(at.expires) {
			delete(idp.access, k)
		}
	}
	for k, rt := range idp.refresh {
		// Kept twice their lifetime, to answer AADSTS700082 rather than
		// "malformed" for a while.
		if now.Sub(rt.issued) > 2*idp.opts.RefreshTokenInactivity {
			delete(idp.refresh, k)
		}
	}
}

func hasScope(scopes []string, s string) bool { return slices.Contains(scopes, s) }

func oidcScope(s string) bool {
	switch s {
	case "openid", "profile", "email", "offline_access":
		return true
	}
	return false
}
