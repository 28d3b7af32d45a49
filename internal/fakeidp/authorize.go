package fakeidp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// authRequest is a validated authorization request (RFC 6749 4.1.1 with
// RFC 7636 4.3 and OpenID Connect Core 3.1.2.1 parameters).
type authRequest struct {
	tenant      string
	clientID    string
	redirectURI string
	scope       string
	scopes      []string
	state       string
	challenge   string
	method      string
	nonce       string
	prompt      string
	loginHint   string
	app         App
}

// authParams are the request parameters the sign-in forms carry along.
var authParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state",
	"code_challenge", "code_challenge_method", "nonce", "prompt", "login_hint", "response_mode"}

// parseAuthRequest validates an authorization request. An error in the
// client or the redirect URI is shown on a page (pageErr): the redirect URI
// cannot be trusted yet. Any later error is sent back to the redirect URI
// (redirectErr), with req set.
func (idp *IdP) parseAuthRequest(tenant string, v url.Values) (req *authRequest, pageErr, redirectErr *aadError) {
	req = &authRequest{
		tenant:      tenant,
		clientID:    v.Get("client_id"),
		redirectURI: v.Get("redirect_uri"),
		scope:       v.Get("scope"),
		scopes:      strings.Fields(v.Get("scope")),
		state:       v.Get("state"),
		challenge:   v.Get("code_challenge"),
		method:      v.Get("code_challenge_method"),
		nonce:       v.Get("nonce"),
		prompt:      v.Get("prompt"),
		loginHint:   v.Get("login_hint"),
	}
	if req.clientID == "" {
		return nil, errMissingParam("client_id"), nil
	}
	idp.mu.Lock()
	app, ok := idp.apps[req.clientID]
	if ok {
		req.app = *app
	}
	idp.mu.Unlock()
	if !ok {
		return nil, errUnknownApp(req.clientID, tenant), nil
	}
	if req.redirectURI == "" {
		return nil, errMissingParam("redirect_uri"), nil
	}
	if !slices.Contains(req.app.RedirectURIs, req.redirectURI) {
		return nil, errRedirectMismatch(req.redirectURI, req.clientID), nil
	}
	switch {
	case v.Get("response_type") != "code":
		return req, nil, errResponseType(v.Get("response_type"))
	case v.Get("response_mode") != "" && v.Get("response_mode") != "query":
		return req, nil, newAAD(400, "invalid_request", 900144, "response_mode '%s' is not supported by this stand-in; use 'query'.", v.Get("response_mode"))
	case len(req.scopes) == 0:
		return req, nil, errMissingParam("scope")
	case req.challenge == "":
		return req, nil, errPKCERequired("The request must include 'code_challenge' (this stand-in requires PKCE).")
	case req.method != "S256":
		return req, nil, errPKCERequired("code_challenge_method must be 'S256' (this stand-in refuses 'plain').")
	}
	switch req.prompt {
	case "", "login", "none", "consent", "select_account":
	default:
		return req, nil, newAAD(400, "invalid_request", 90023, "Invalid prompt value '%s'.", req.prompt)
	}
	return req, nil, nil
}

// handleAuthorize shows the sign-in page (or answers prompt=none).
func (idp *IdP) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	req, pageErr, redirectErr := idp.parseAuthRequest(r.PathValue("tenant"), r.URL.Query())
	switch {
	case pageErr != nil:
		idp.renderError(w, pageErr)
		return
	case redirectErr != nil:
		idp.redirectError(w, r, req, redirectErr)
		return
	}
	if req.prompt == "none" {
		key := idp.sessionAccount(r)
		if key == "" {
			idp.redirectError(w, r, req, errLoginRequired())
			return
		}
		idp.redirectCode(w, r, req, key)
		return
	}
	idp.renderSignIn(w, r, req, r.URL.Query(), "")
}

// handleAuthorizePost receives the sign-in form and the consent form.
func (idp *IdP) handleAuthorizePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if ticket := r.PostForm.Get("ticket"); ticket != "" {
		idp.handleConsent(w, r, ticket)
		return
	}
	req, pageErr, redirectErr := idp.parseAuthRequest(r.PathValue("tenant"), r.PostForm)
	switch {
	case pageErr != nil:
		idp.renderError(w, pageErr)
		return
	case redirectErr != nil:
		idp.redirectError(w, r, req, redirectErr)
		return
	}
	if r.PostForm.Get("action") == "cancel" {
		idp.log.Info("fakeidp sign-in cancelled", "client_id", req.clientID)
		idp.redirectError(w, r, req, errDeclined())
		return
	}

	address := r.PostForm.Get("account") // picked from the list
	if address == "" {
		address = r.PostForm.Get("email")
	}
	key := accountKey(address)
	idp.mu.Lock()
	acct, ok := idp.accounts[key]
	var password string
	if ok {
		password = acct.Password
	}
	idp.mu.Unlock()
	switch {
	case !ok:
		idp.renderSignIn(w, r, req, r.PostForm, fmt.Sprintf("AADSTS50034: The user account %s does not exist in the %s directory.", address, req.tenant))
		return
	case r.PostForm.Get("account") == "" && (password == "" || r.PostForm.Get("password") != password):
		idp.log.Info("fakeidp sign-in failed", "account", key, "reason", "bad password")
		idp.renderSignIn(w, r, req, r.PostForm, "Your account or password is incorrect. (AADSTS50126: Error validating credentials due to invalid username or password.)")
		return
	}

	idp.mu.Lock()
	consented := idp.consents[key+" "+req.clientID]
	idp.mu.Unlock()
	if idp.opts.RequireConsent && (!consented || req.prompt == "consent") {
		idp.setSession(w, key)
		idp.renderConsent(w, r, req, key)
		return
	}
	idp.setSession(w, key)
	idp.redirectCode(w, r, req, key)
}

// pendingSignIn is a signed-in account waiting for its consent.
type pendingSignIn struct {
	req     *authRequest
	account string
	expires time.Time
}

func (idp *IdP) handleConsent(w http.ResponseWriter, r *http.Request, ticket string) {
	idp.mu.Lock()
	p, ok := idp.pending[ticket]
	delete(idp.pending, ticket)
	if ok && idp.clock.Now().After(p.expires) {
		ok = false
	}
	if ok && r.PostForm.Get("action") == "accept" {
		idp.consents[p.account+" "+p.req.clientID] = true
	}
	idp.mu.Unlock()
	if !ok {
		idp.renderError(w, newAAD(400, "invalid_request", 90014, "The sign-in session has expired. Start the sign-in again."))
		return
	}
	if r.PostForm.Get("action") != "accept" {
		idp.redirectError(w, r, p.req, errDeclined())
		return
	}
	idp.redirectCode(w, r, p.req, p.account)
}

// issueCode stores a single-use authorization code (RFC 6749 4.1.2) bound to
// the client, redirect URI, PKCE challenge, scopes, account and nonce.
func (idp *IdP) issueCode(req *authRequest, key string) string {
	now := idp.clock.Now()
	code := "1.A" + randomToken(48)
	idp.mu.Lock()
	defer idp.mu.Unlock()
	for c, ac := range idp.codes { // drop dead codes as we go
		if now.After(ac.expires) {
			delete(idp.codes, c)
		}
	}
	var epoch int
	if acct, ok := idp.accounts[key]; ok {
		epoch = acct.epoch
	}
	idp.codes[code] = &authCode{
		grant: &grant{
			epoch:    epoch,
			clientID: req.clientID,
			account:  key,
			scopes:   req.scopes,
			nonce:    req.nonce,
			authTime: now,
		},
		redirectURI: req.redirectURI,
		challenge:   req.challenge,
		expires:     now.Add(AuthorizationCodeLifetime),
	}
	return code
}

func (idp *IdP) redirectCode(w http.ResponseWriter, r *http.Request, req *authRequest, key string) {
	code := idp.issueCode(req, key)
	idp.log.Info("fakeidp sign-in", "account", key, "client_id", req.clientID)
	http.Redirect(w, r, callbackURL(req, url.Values{"code": {code}, "session_state": {newUUID()}}), http.StatusFound)
}

func (idp *IdP) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, e *aadError) {
	http.Redirect(w, r, callbackURL(req, url.Values{
		"error":             {e.err},
		"error_description": {e.description(idp.clock.Now())},
	}), http.StatusFound)
}

// callbackURL adds params and the request's state to the redirect URI.
func callbackURL(req *authRequest, params url.Values) string {
	u, err := url.Parse(req.redirectURI)
	if err != nil { // registered redirect URIs are trusted to parse
		return req.redirectURI
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

const sessionCookie = "fakeidp_session"

// setSession remembers the signed-in account in a cookie, for prompt=none.
func (idp *IdP) setSession(w http.ResponseWriter, key string) {
	id := randomToken(24)
	idp.mu.Lock()
	idp.sessions[id] = key
	idp.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (idp *IdP) sessionAccount(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.sessions[c.Value]
}

// SignIn runs the sign-in page's decision without a browser: for the
// authorization URL authURL (as built by oauth2.Config.AuthCodeURL) it signs
// in account, consents, and returns the redirect URI the browser would be
// sent to (with code and state, or with error and error_description when the
// request is refused after its redirect URI was validated). A request refused
// before that, or an unknown account, is an error.
func (idp *IdP) SignIn(authURL, account string) (*url.URL, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("parse authorization url: %w", err)
	}
	tenant, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	req, pageErr, redirectErr := idp.parseAuthRequest(tenant, u.Query())
	if pageErr != nil {
		return nil, fmt.Errorf("fakeidp: %s: AADSTS%d: %s", pageErr.err, pageErr.code, pageErr.text)
	}
	var target string
	if redirectErr != nil {
		target = callbackURL(req, url.Values{"error": {redirectErr.err}, "error_description": {redirectErr.description(idp.clock.Now())}})
	} else {
		key := accountKey(account)
		idp.mu.Lock()
		_, ok := idp.accounts[key]
		if ok {
			idp.consents[key+" "+req.clientID] = true
		}
		idp.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("sign in %q: %w", account, ErrUnknown)
		}
		target = callbackURL(req, url.Values{"code": {idp.issueCode(req, key)}, "session_state": {newUUID()}})
	}
	return url.Parse(target)
}
