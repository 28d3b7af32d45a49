package fakegraph

import "github.com/postdesk/postdesk/internal/fakeidp"

// FromIdP validates bearer tokens with idp's knowledge of the access
// tokens it issued (Options.Tokens).
func FromIdP(idp *fakeidp.IdP) func(token string) (Principal, bool) {
	return func(token string) (Principal, bool) {
		info, ok := idp.AccessTokenInfo(token)
		if !ok {
			return Principal{}, false
		}
		return Principal{Account: info.Account, Mailboxes: info.Mailboxes, Audience: info.Audience, Scopes: info.Scopes}, true
	}
}
