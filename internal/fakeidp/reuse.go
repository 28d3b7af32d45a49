package fakeidp

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// ReusePolicy is what the token endpoint does when a spent refresh token
// (one already exchanged for a new one) is presented again.
type ReusePolicy int

// Reuse policies.
const (
	// ReuseRevokesGrant treats the reuse as theft (OAuth 2.1 section 4.3.1,
	// RFC 6819 5.2.2.3): the request fails with invalid_grant AADSTS50173 and
	// the whole grant is revoked, its newest refresh token and its access
	// tokens included. The default, being the strictest real behaviour.
	ReuseRevokesGrant ReusePolicy = iota
	// ReuseRefused refuses the spent token alone (invalid_grant AADSTS70000);
	// the grant's newest refresh token keeps working.
	ReuseRefused
	// ReuseAllowed accepts the spent token until it expires, as Microsoft
	// does.
	ReuseAllowed
)

// String names the policy as the fakeidp command's flag does.
func (p ReusePolicy) String() string {
	switch p {
	case ReuseRevokesGrant:
		return "revoke"
	case ReuseRefused:
		return "refuse"
	case ReuseAllowed:
		return "allow"
	}
	return fmt.Sprintf("ReusePolicy(%d)", int(p))
}

// ParseReusePolicy parses "revoke", "refuse" or "allow".
func ParseReusePolicy(s string) (ReusePolicy, error) {
	for _, p := range []ReusePolicy{ReuseRevokesGrant, ReuseRefused, ReuseAllowed} {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("refresh token reuse policy %q: want revoke, refuse or allow", s)
}

// Reuse records one presentation of a spent refresh token.
type Reuse struct {
	Account string    // the account of the grant
	At      time.Time // by the IdP's clock
	// Revoked reports whether this presentation revoked the grant (the
	// first one under ReuseRevokesGrant).
	Revoked bool
}

// spentTokenPresented records a presentation of a spent refresh token and
// applies the policy. Called with idp.mu held.
func (idp *IdP) spentTokenPresented(rt *refreshToken, acct *account, app *App, now time.Time) {
	revoke := idp.opts.RefreshTokenReuse == ReuseRevokesGrant && !rt.grant.revoked
	idp.reuses = append(idp.reuses, Reuse{Account: acct.Address, At: now, Revoked: revoke})
	if revoke {
		rt.grant.revoked = true
	}
	idp.log.Warn("fakeidp spent refresh token presented again", "account", acct.Address, "client_id", app.ClientID,
		"policy", idp.opts.RefreshTokenReuse.String(), "grant_revoked", rt.grant.revoked)
}

// Reuses returns every presentation of a spent refresh token so far, under
// any policy, oldest first: a client that never loses a rotated token
// causes none.
func (idp *IdP) Reuses() []Reuse {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return append([]Reuse(nil), idp.reuses...)
}

// delay waits the configured token endpoint delay (real time). It reports
// false when the client went away meanwhile.
func (idp *IdP) delay(r *http.Request) bool {
	d := idp.opts.TokenDelay
	if span := idp.opts.TokenDelayMax - d; span > 0 {
		d += rand.N(span)
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
