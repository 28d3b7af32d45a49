package sasl

import (
	gosasl "github.com/emersion/go-sasl"
)

// OAuthBearerClient is the OAUTHBEARER mechanism (RFC 7628). It implements
// github.com/emersion/go-sasl's Client.
type OAuthBearerClient struct {
	start gosasl.Client // go-sasl builds the initial response
	x     oauthExchange
}

// NewOAuthBearerClient returns an OAUTHBEARER client. username becomes the
// GS2 authzid ("a=", omitted when empty); host and port are sent when set
// (port 0 omits it), as RFC 7628 3.1 recommends.
func NewOAuthBearerClient(username, token, host string, port int) *OAuthBearerClient {
	return &OAuthBearerClient{
		start: gosasl.NewOAuthBearerClient(&gosasl.OAuthBearerOptions{
			Username: username,
			Token:    token,
			Host:     host,
			Port:     port,
		}),
		x: oauthExchange{mech: OAuthBearer},
	}
}

// Start returns the initial client response of RFC 7628 3.1:
// "n,a=<user>,\x01host=<host>\x01port=<port>\x01auth=Bearer <token>\x01\x01".
func (c *OAuthBearerClient) Start() (mech string, ir []byte, err error) {
	c.x.failure = nil
	return c.start.Start()
}

// Next answers a server challenge: the error JSON of RFC 7628 3.2.2. It
// records it (see Failure) and answers 0x01 (RFC 7628 3.2.3), after which the
// server ends the exchange with a failure.
func (c *OAuthBearerClient) Next(challenge []byte) ([]byte, error) {
	return c.x.next(challenge)
}

// Failure returns the failure the server reported in the last exchange, or
// nil.
func (c *OAuthBearerClient) Failure() *AuthError { return c.x.failure }
