package fakeidp

import (
	"fmt"
	"strings"
	"time"
)

// This file holds what tests and the demo use to steer the IdP: fault
// injection, grants and counters. Every method is safe for concurrent use.

func (idp *IdP) lookup(address string) (*account, error) {
	acct, ok := idp.accounts[accountKey(address)]
	if !ok {
		return nil, fmt.Errorf("account %q: %w", address, ErrUnknown)
	}
	return acct, nil
}

// Revoke revokes every grant of account, as a password reset or an admin's
// "revoke sessions" does: its refresh tokens then fail with AADSTS50173, its
// access tokens introspect as inactive, and its unredeemed codes fail too.
// Signing in again works.
func (idp *IdP) Revoke(account string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	acct, err := idp.lookup(account)
	if err != nil {
		return err
	}
	acct.epoch++
	acct.validFrom = idp.clock.Now()
	return nil
}

// SetRefreshError makes every refresh of account's tokens fail with the
// AADSTS code until it is called again with code 0. 700082, 70008, 50173,
// 50132, 50133, 50055, 50057, 70043, 50076, 50079, 65001, 65004 and 53003
// carry Microsoft's description; other codes a generic one. All answer HTTP
// 400 invalid_grant.
func (idp *IdP) SetRefreshError(account string, code int) error {
	return idp.setRefreshError(account, code, false)
}

// FailNextRefresh makes only the next refresh of account's tokens fail with
// the AADSTS code (see SetRefreshError).
func (idp *IdP) FailNextRefresh(account string, code int) error {
	return idp.setRefreshError(account, code, true)
}

func (idp *IdP) setRefreshError(account string, code int, once bool) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	acct, err := idp.lookup(account)
	if err != nil {
		return err
	}
	acct.refreshErr, acct.refreshErrOnce = code, once && code != 0
	return nil
}

// ExpireClientSecret makes the app's client secret expired from now on:
// token requests get 401 invalid_client AADSTS7000222.
func (idp *IdP) ExpireClientSecret(clientID string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	app, ok := idp.apps[clientID]
	if !ok {
		return fmt.Errorf("app %q: %w", clientID, ErrUnknown)
	}
	app.SecretExpiresAt = idp.clock.Now()
	return nil
}

// SetClientSecret replaces an app's client secret (a new, unexpired one,
// valid until expiresAt; zero: forever).
func (idp *IdP) SetClientSecret(clientID, secret string, expiresAt time.Time) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	app, ok := idp.apps[clientID]
	if !ok {
		return fmt.Errorf("app %q: %w", clientID, ErrUnknown)
	}
	app.ClientSecret, app.SecretExpiresAt = secret, expiresAt
	return nil
}

// SetTemporarilyUnavailable makes the next n token requests answer HTTP 503
// with error temporarily_unavailable (AADSTS90033). 0 stops it.
func (idp *IdP) SetTemporarilyUnavailable(n int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.unavailable = n
}

// SetPassword sets the password account signs in with ("" disables password
// sign-in; picking the account still works). It does not revoke tokens:
// call Revoke too to model a password reset.
func (idp *IdP) SetPassword(account, password string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	acct, err := idp.lookup(account)
	if err != nil {
		return err
	}
	acct.Password = password
	return nil
}

// GrantMailbox gives account access to another mailbox (a shared mailbox).
// While an account has exactly one granted mailbox, introspection of its
// access tokens answers that mailbox as "username", so Dovecot accepts them
// for a login as the mailbox (see the package documentation).
func (idp *IdP) GrantMailbox(account, mailbox string) error {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	acct, err := idp.lookup(account)
	if err != nil {
		return err
	}
	mailbox = strings.ToLower(strings.TrimSpace(mailbox))
	for _, m := range acct.mailboxes {
		if m == mailbox {
			return nil
		}
	}
	acct.mailboxes = append(acct.mailboxes, mailbox)
	return nil
}

// RefreshCount returns how many refresh_token requests reached account's
// tokens, successful or not (requests refused before, for a bad client
// secret or an unknown token, are not counted).
func (idp *IdP) RefreshCount(account string) int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if acct, ok := idp.accounts[accountKey(account)]; ok {
		return acct.refreshCount
	}
	return 0
}

// TokenRequests returns how many requests the token endpoint received.
func (idp *IdP) TokenRequests() int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.tokenRequests
}

// Tokens is what IssueTokens returns.
type Tokens struct {
	AccessToken  string
	RefreshToken string // empty without the offline_access scope
	IDToken      string // empty without the openid scope
	Expiry       time.Time
}

// IssueTokens signs account in to the app and issues its tokens directly,
// without the browser flow: for tests that need a valid bearer token (for
// IMAP/SMTP through Dovecot) and are not about signing in. The id_token's
// issuer uses Options.BaseURL, there being no request to take it from.
func (idp *IdP) IssueTokens(clientID, account string, scopes ...string) (Tokens, error) {
	now := idp.clock.Now()
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if _, ok := idp.apps[clientID]; !ok {
		return Tokens{}, fmt.Errorf("app %q: %w", clientID, ErrUnknown)
	}
	acct, err := idp.lookup(account)
	if err != nil {
		return Tokens{}, err
	}
	g := &grant{clientID: clientID, account: accountKey(account), scopes: scopes, authTime: now, epoch: acct.epoch}
	resp := idp.issueTokens(nil, g, scopes, acct, now)
	return Tokens{
		AccessToken:  resp.AccessToken,
		RefreshToken: resp.RefreshToken,
		IDToken:      resp.IDToken,
		Expiry:       now.Add(time.Duration(resp.ExpiresIn) * time.Second),
	}, nil
}
