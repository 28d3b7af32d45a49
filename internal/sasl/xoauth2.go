package sasl

// XOAuth2Client is the XOAUTH2 mechanism of Google and Microsoft
// (https://developers.google.com/gmail/imap/xoauth2-protocol,
// https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth).
// It implements github.com/emersion/go-sasl's Client.
type XOAuth2Client struct {
	username string
	token    string
	x        oauthExchange
}

// NewXOAuth2Client returns an XOAUTH2 client that signs in as username with
// the OAuth 2.0 access token.
func NewXOAuth2Client(username, token string) *XOAuth2Client {
	return &XOAuth2Client{username: username, token: token, x: oauthExchange{mech: XOAuth2}}
}

// Start returns the initial response
// "user=<username>\x01auth=Bearer <token>\x01\x01" (raw bytes: the protocol
// library base64-encodes it).
func (c *XOAuth2Client) Start() (mech string, ir []byte, err error) {
	c.x.failure = nil
	ir = make([]byte, 0, len(c.username)+len(c.token)+20)
	ir = append(ir, "user="...)
	ir = append(ir, c.username...)
	ir = append(ir, "\x01auth=Bearer "...)
	ir = append(ir, c.token...)
	ir = append(ir, "\x01\x01"...)
	return XOAuth2, ir, nil
}

// Next answers a server challenge. XOAUTH2 servers challenge only to report a
// failure (a JSON object): Next records it (see Failure) and answers 0x01 so
// that the server can finish with its final NO / 535.
func (c *XOAuth2Client) Next(challenge []byte) ([]byte, error) {
	return c.x.next(challenge)
}

// Failure returns the failure the server reported in the last exchange, or
// nil.
func (c *XOAuth2Client) Failure() *AuthError { return c.x.failure }
