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
// in its EHLO reply. A refused OAuth token is retried once, on the same
// connection, with a token from RefreshToken (as imapsync does); 535 5.7.139
// is not retried: a new token cannot enable SMTP AUTH.
func (c *Conn) authenticate(ctx context.Context, host string, port int) error {
	cfg := &c.cfg
	c.mech = mechanisms[cfg.Auth]
	if ok, _ := c.c.Extension("AUTH"); !ok || !c.c.SupportsAuth(c.mech) {
		_, offered := c.c.Extension("AUTH")
		return &Error{Kind: KindConfig, Stage: StageAuth,
			Err: fmt.Errorf("%s does not offer AUTH %s (offers %q)", cfg.Addr, c.mech, offered)}
	}
	if cfg.Auth == AuthPlain || cfg.Auth == AuthLogin {
		pw, err := cfg.Password(ctx)
		if err != nil {
			return &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("get password: %w", err)}
		}
		var client gosasl.Client
		if cfg.Auth == AuthLogin {
			client = gosasl.NewLoginClient(cfg.Username, pw)
		} else {
			client = sasl.NewPlainClient("", cfg.Username, pw)
		}
		if err := c.c.Auth(client); err != nil {
			return c.fail(ctx, StageAuth, "", err)
		}
		return nil
	}

	newClient := func(token string) gosasl.Client {
		if cfg.Auth == AuthOAuthBearer {
			return sasl.NewOAuthBearerClient(cfg.Username, token, host, port)
		}
		return sasl.NewXOAuth2Client(cfg.Username, token)
	}
	token, err := cfg.Token(ctx)
	if err != nil {
		return &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("get access token: %w", err)}
	}
	client := newClient(token)
	err = c.c.Auth(client)
	if err == nil {
		return nil
	}
	first := c.authError(ctx, client, err)
	if first.Kind != KindAuthFailed || cfg.RefreshToken == nil {
		return first
	}
	c.log.Info("smtp server refused the access token; retrying once with a refreshed one",
		"mechanism", c.mech, "code", first.Code, "enhanced", first.Enhanced)
	if token, err = cfg.RefreshToken(ctx); err != nil {
		return &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("refresh access token after %w: %w", first, err)}
	}
	client = newClient(token)
	if err = c.c.Auth(client); err == nil {
		return nil
	}
	return c.authError(ctx, client, err)
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
