package oauth

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/store"
)

// Microsoft Graph as a second resource. A Microsoft mailbox may fetch or
// send through Graph instead of IMAP and SMTP. One refresh token serves
// both resources (it is tied to the user and the application, not to a
// resource), so the vault keeps one refresh token and an access token per
// resource: the mail servers' (access_token) and Graph's
// (graph_access_token). A Graph token is the same refresh token asked for
// Graph's scopes; it goes through the same gate as every other refresh of
// the mailbox (refresh.go), so rotation stays exactly once.

// Resources an access token is for.
const (
	ResourceMail  = store.ResourceMail  // IMAP and SMTP
	ResourceGraph = store.ResourceGraph // Microsoft Graph
)

// MicrosoftGraphURL is Microsoft Graph's public-cloud API root.
const MicrosoftGraphURL = "https://graph.microsoft.com/v1.0"

// MicrosoftGraphResource prefixes Graph's delegated scopes.
const MicrosoftGraphResource = "https://graph.microsoft.com"

// Graph's delegated mail permissions (the .Shared variants reach a shared
// mailbox signed in by a delegate, and the delegate's own mail too).
const (
	ScopeMailReadWrite       = "Mail.ReadWrite"
	ScopeMailSend            = "Mail.Send"
	ScopeMailReadWriteShared = "Mail.ReadWrite.Shared"
	ScopeMailSendShared      = "Mail.Send.Shared"
)

// graphResource returns the provider's Graph scope prefix.
func graphResource(p Provider) string {
	return strings.TrimSuffix(cmp.Or(p.GraphResource, MicrosoftGraphResource), "/")
}

// SupportsGraph reports whether the provider's mailboxes can use Graph.
func SupportsGraph(p Provider) bool { return p.Kind == KindMicrosoft && p.GraphURL != "" }

// SignInScopes returns the scopes a sign-in of a mailbox with srv's
// transports asks for: the provider's own (IMAP, SMTP), left out when
// neither transport uses them; the Graph permissions each Graph transport
// needs (Mail.ReadWrite to fetch, Mail.Send to send), the .Shared variants
// when a delegate signs in for a shared mailbox. The first scope decides
// which resource the sign-in's own access token is for (Microsoft issues
// a token for one resource at a time).
func SignInScopes(p Provider, srv store.MailboxServer, shared bool) []string {
	if !SupportsGraph(p) || (!srv.FetchesWithGraph() && !srv.SendsWithGraph()) {
		return slices.Clone(p.Scopes)
	}
	var out []string
	if !srv.FetchesWithGraph() || !srv.SendsWithGraph() {
		out = slices.Clone(p.Scopes)
	}
	res := graphResource(p) + "/"
	read, send := ScopeMailReadWrite, ScopeMailSend
	if shared {
		read, send = ScopeMailReadWriteShared, ScopeMailSendShared
	}
	if srv.FetchesWithGraph() {
		out = append(out, res+read)
	}
	if srv.SendsWithGraph() {
		out = append(out, res+send)
	}
	for _, s := range []string{"offline_access", "openid", "email"} {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Covers reports whether granted includes every scope of need (nil
// granted: a sign-in from before scopes were recorded, which asked for
// the provider's own scopes).
func Covers(p Provider, granted, need []string) bool {
	if granted == nil {
		granted = p.Scopes
	}
	for _, s := range need {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}

// GraphScopes returns the scopes a Graph token is refreshed with: the
// Graph scopes the mailbox was granted (all of Mail.ReadWrite and
// Mail.Send when it has none recorded: the provider then refuses, and the
// mailbox needs a sign-in that grants them), with offline_access.
func GraphScopes(p Provider, granted []string) []string {
	res := graphResource(p) + "/"
	var out []string
	for _, s := range granted {
		if strings.HasPrefix(s, res) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		out = []string{res + ScopeMailReadWrite, res + ScopeMailSend}
	}
	return append(out, "offline_access")
}

// resourceOf names the resource of a scope ("" for the mail servers and
// the OpenID scopes).
func resourceOf(p Provider, scope string) string {
	if strings.HasPrefix(scope, graphResource(p)+"/") {
		return ResourceGraph
	}
	return ResourceMail
}

// accessOf returns a resource's sealed access token and its expiry.
func accessOf(a store.MailboxAuth, resource string) (string, time.Time) {
	if resource == ResourceGraph {
		return a.GraphAccessTokenSealed, a.GraphAccessExpiresAt
	}
	return a.AccessTokenSealed, a.AccessExpiresAt
}

// accessSecret is the vault binding name of a resource's access token.
func accessSecret(resource string) string {
	if resource == ResourceGraph {
		return "graph_access_token"
	}
	return "access_token"
}

// GraphTokenFunc returns the mailbox's Graph access token, the shape
// msgraph.Client.Token takes: fresh forces a refresh (Graph refused the
// token it had). Its errors are TokenFor's.
func (s *Service) GraphTokenFunc(mailboxID int64) func(ctx context.Context, fresh bool) (string, error) {
	return func(ctx context.Context, fresh bool) (string, error) {
		if fresh {
			return s.refreshShared(ctx, mailboxID, refreshAlways, ResourceGraph)
		}
		return s.tokenFor(ctx, mailboxID, ResourceGraph)
	}
}

// refreshFor exchanges the refresh token for an access token with scopes
// (RFC 6749 6: the scope parameter; Microsoft issues the token for that
// scope's resource). x/oauth2 sends no scope on refresh, hence this
// request. A refusal is an *oauth2.RetrieveError, as Classify expects.
func (s *Service) refreshFor(ctx context.Context, p Provider, refreshToken string, scopes []string) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {p.ClientID},
		"scope": {strings.Join(scopes, " ")}}
	if p.ClientSecret != "" {
		form.Set("client_secret", p.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("refresh token for %s: %w", strings.Join(scopes, " "), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read token response: %w", err)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
		URI          string `json:"error_uri"`
	}
	jerr := json.Unmarshal(body, &tr)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tr.AccessToken == "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: tr.Error, ErrorDescription: tr.Description, ErrorURI: tr.URI}
	}
	if jerr != nil {
		return nil, fmt.Errorf("decode token response: %w", jerr)
	}
	return &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken, ExpiresIn: tr.ExpiresIn}, nil
}
