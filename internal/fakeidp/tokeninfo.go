package fakeidp

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// graphResource is Microsoft Graph's resource URI; graphAppID is its
// application id, the audience of a token asked for with bare scopes
// ("Mail.Send" means "https://graph.microsoft.com/Mail.Send").
const (
	graphResource = "https://graph.microsoft.com"
	graphAppID    = "00000003-0000-0000-c000-000000000000"
)

// TokenInfo is what a resource server learns from a valid access token
// (from a JWT's aud, scp, upn and exp claims at Microsoft; here by lookup,
// access tokens being opaque).
type TokenInfo struct {
	Account string // the signed-in account's address (upn)
	// Mailboxes are the other mailboxes the account was granted
	// (GrantMailbox): a delegate's shared mailboxes.
	Mailboxes []string
	// Audience is the resource the token is for ("https://graph.microsoft.com",
	// "https://outlook.office.com"): that of the scopes it was issued with.
	Audience string
	// Scopes are the delegated permissions for Audience, short as in the
	// scp claim ("Mail.ReadWrite"); ".default" is expanded to the grant's
	// scopes of that resource.
	Scopes    []string
	ClientID  string
	ExpiresAt time.Time
}

// AccessTokenInfo returns the TokenInfo of a live access token (issued
// here, unexpired by the IdP's clock, not revoked); false otherwise. The
// stand-in Graph validates bearer tokens with it.
func (idp *IdP) AccessTokenInfo(token string) (TokenInfo, bool) {
	now := idp.clock.Now()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	at, acct := idp.liveAccessToken(token, now)
	if at == nil {
		return TokenInfo{}, false
	}
	aud := resourceOf(at.scopes)
	if aud == graphAppID {
		aud = graphResource
	}
	info := TokenInfo{
		Account:   acct.Address,
		Mailboxes: slices.Clone(acct.mailboxes),
		Audience:  aud,
		ClientID:  at.grant.clientID,
		ExpiresAt: at.expires,
	}
	add := func(s string) {
		if !slices.Contains(info.Scopes, s) {
			info.Scopes = append(info.Scopes, s)
		}
	}
	for _, s := range at.scopes {
		short, ok := strings.CutPrefix(s, aud+"/")
		if !ok && aud == graphResource && !strings.Contains(s, "://") && !oidcScope(s) {
			short, ok = s, true
		}
		switch {
		case !ok:
		case short == ".default":
			for _, g := range at.grant.scopes {
				if gs, ok := strings.CutPrefix(g, aud+"/"); ok && gs != ".default" {
					add(gs)
				}
			}
		default:
			add(short)
		}
	}
	return info, true
}

// Mount serves h for the requests under prefix ("/graph/"), beside the
// IdP's own paths, and names it in the listening banner as name at
// urlPath ("/graph/v1.0"). The mount wins over the IdP's paths: a tenant
// segment equal to the prefix's would no longer reach the IdP.
func (idp *IdP) Mount(prefix string, h http.Handler, name, urlPath string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.mounts = append(idp.mounts, mount{prefix: prefix, h: h, name: name, urlPath: urlPath})
}

// mounted returns the mounts (name, url path).
func (idp *IdP) mounted() []mount {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return slices.Clone(idp.mounts)
}
