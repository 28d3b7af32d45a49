package fakeidp

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
)

type hiddenField struct{ Name, Value string }

type accountView struct {
	Address, Name string
	HasPassword   bool
	Hinted        bool
}

type signInView struct {
	AppName  string
	ClientID string
	Tenant   string
	Action   string
	Hidden   []hiddenField
	Accounts []accountView
	Email    string
	Error    string
}

type consentView struct {
	AppName  string
	ClientID string
	Account  string
	Scopes   []string
	Action   string
	Ticket   string
}

type errorView struct {
	Code        int
	Error       string
	Description string
	TraceID     string
	Timestamp   string
}

type indexView struct {
	Accounts []accountView
	Apps     []App
	Tenant   string
	Base     string
}

func (idp *IdP) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := idp.pages.ExecuteTemplate(&buf, name, data); err != nil {
		idp.log.Error("fakeidp render page", "page", name, "err", err)
		http.Error(w, "internal error rendering "+name, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' *")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError shows Microsoft's error page (a request that cannot be sent
// back to its redirect URI).
func (idp *IdP) renderError(w http.ResponseWriter, e *aadError) {
	now := idp.clock.Now()
	idp.render(w, http.StatusBadRequest, "error", errorView{
		Code:        e.code,
		Error:       e.err,
		Description: e.text,
		TraceID:     newUUID(),
		Timestamp:   now.UTC().Format(msTimestamp),
	})
}

func (idp *IdP) accountViews(hint string) []accountView {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	out := make([]accountView, 0, len(idp.accountOrder))
	for _, k := range idp.accountOrder {
		a := idp.accounts[k]
		out = append(out, accountView{
			Address:     a.Address,
			Name:        a.Name,
			HasPassword: a.Password != "",
			Hinted:      hint != "" && accountKey(hint) == k,
		})
	}
	return out
}

func (idp *IdP) renderSignIn(w http.ResponseWriter, r *http.Request, req *authRequest, v url.Values, errMsg string) {
	view := signInView{
		AppName:  appName(&req.app),
		ClientID: req.clientID,
		Tenant:   req.tenant,
		Action:   r.URL.Path,
		Accounts: idp.accountViews(req.loginHint),
		Email:    v.Get("email"),
		Error:    errMsg,
	}
	if view.Email == "" {
		view.Email = req.loginHint
	}
	for _, p := range authParams {
		if val := v.Get(p); val != "" {
			view.Hidden = append(view.Hidden, hiddenField{p, val})
		}
	}
	idp.render(w, http.StatusOK, "signin", view)
}

func (idp *IdP) renderConsent(w http.ResponseWriter, r *http.Request, req *authRequest, key string) {
	ticket := randomToken(24)
	idp.mu.Lock()
	idp.pending[ticket] = &pendingSignIn{req: req, account: key, expires: idp.clock.Now().Add(AuthorizationCodeLifetime)}
	address := idp.accounts[key].Address
	idp.mu.Unlock()
	idp.render(w, http.StatusOK, "consent", consentView{
		AppName:  appName(&req.app),
		ClientID: req.clientID,
		Account:  address,
		Scopes:   req.scopes,
		Action:   r.URL.Path,
		Ticket:   ticket,
	})
}

// handleIndex lists the accounts and apps, for people running the demo.
func (idp *IdP) handleIndex(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	apps := make([]App, 0, len(idp.apps))
	for _, a := range idp.apps {
		apps = append(apps, App{ClientID: a.ClientID, Name: a.Name, RedirectURIs: a.RedirectURIs})
	}
	idp.mu.Unlock()
	idp.render(w, http.StatusOK, "index", indexView{
		Accounts: idp.accountViews(""),
		Apps:     apps,
		Tenant:   idp.opts.TenantID,
		Base:     idp.baseURL(r),
	})
}

// scopeLabel says in words what a scope allows, for the consent page.
func scopeLabel(s string) string {
	switch {
	case strings.HasSuffix(s, "/IMAP.AccessAsUser.All"):
		return "Read and change your mailbox over IMAP"
	case strings.HasSuffix(s, "/SMTP.Send"):
		return "Send email as you over SMTP"
	case s == "offline_access":
		return "Keep access to what you allowed (sign-in kept for up to 90 days of inactivity)"
	case s == "openid", s == "profile":
		return "Sign you in and read your profile"
	case s == "email":
		return "View your email address"
	}
	return s
}
