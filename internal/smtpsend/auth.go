package smtpsend

import (
	"context"
	"errors"
	"fmt"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/sasl"
)

// mechanisms maps each AuthMethod to its SASL name in AUTH (RFC 4954 4).
var mechanisms = map[AuthMethod]string{
	AuthXOAuth2:     sasl.XOAuth2,
	AuthOAuthBearer: sasl.OAuthBearer,
	AuthPlain:       sasl.Plain,
	AuthLogin:       gosasl.Login,
}

// authenticate signs in with cfg.Auth, the mechanism the server must offer
// in its EHLO reply. token is the access token to use; "" asks cfg.Token.
func (c *Conn) authenticate(ctx context.Context, host string, port int, token string) error {
	cfg := &c.cfg
	c.mech = mechanisms[cfg.Auth]
	if ok, _ := c.c.Extension("AUTH"); !ok || !c.c.SupportsAuth(c.mech) {
		_, offered := c.c.Extension("AUTH")
		return &Error{Kind: KindConfig, Stage: StageAuth,
			Err: fmt.Errorf("%s does not offer AUTH %s (offers %q)", cfg.Addr, c.mech, offered)}
	}
	var client gosasl.Client
	switch cfg.Auth {
	case AuthPlain, AuthLogin:
		pw, err := cfg.Password(ctx)
		if err != nil {
			return &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("get password: %w", err)}
		}
		if cfg.Auth == AuthLogin {
			client = &loginClient{user: cfg.Username, password: pw}
		} else {
			client = sasl.NewPlainClient("", cfg.Username, pw)
		}
	default:
		if token == "" {
			var err error
			if token, err = cfg.Token(ctx); err != nil {
				return &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("get access token: %w", err)}
			}
		}
		if cfg.Auth == AuthOAuthBearer {
			client = sasl.NewOAuthBearerClient(cfg.Username, token, host, port)
		} else {
			client = sasl.NewXOAuth2Client(cfg.Username, token)
		}
	}
	if err := c.c.Auth(client); err != nil {
		return c.authError(ctx, client, err)
	}
	return nil
}

// authError is fail for AUTH, keeping the OAuth failure the server sent as
// a challenge (sasl.AuthError) beside its reply in Err.
func (c *Conn) authError(ctx context.Context, client gosasl.Client, err error) *Error {
	var e *Error
	errors.As(c.fail(ctx, StageAuth, "", err), &e)
	if f := sasl.FailureOf(client); f != nil {
		var se *smtp.SMTPError
		if errors.As(e.Err, &se) {
			e.Err = fmt.Errorf("%w; %w", se, f)
		}
	}
	return e
}

// loginClient is SASL LOGIN (draft-murchison-sasl-login) without an initial
// response: the first challenge ("Username:") is answered with the user
// name, the second ("Password:") with the password, whatever their wording
// (go-sasl's client insists on an exact "Password:" after sending the user
// name as an initial response).
type loginClient struct {
	user, password string
	step           int
}

func (c *loginClient) Start() (string, []byte, error) { return gosasl.Login, nil, nil }

func (c *loginClient) Next([]byte) ([]byte, error) {
	c.step++
	switch c.step {
	case 1:
		return []byte(c.user), nil
	case 2:
		return []byte(c.password), nil
	}
	return nil, gosasl.ErrUnexpectedServerChallenge
}
