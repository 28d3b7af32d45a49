package imapsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosasl "github.com/emersion/go-sasl"

	"github.com/postdesk/postdesk/internal/sasl"
)

const (
	dialTimeout = 30 * time.Second
	// commandTimeout bounds the wait for a command's completion (and for the
	// next message of a FETCH): go-imap has no deadline while it waits for
	// the first byte of a response, so a server that goes silent on a live
	// TCP connection would hang the session.
	commandTimeout = 3 * time.Minute
	logoutTimeout  = 5 * time.Second
)

// session is one authenticated connection.
type session struct {
	cfg  *Config
	st   Store
	c    *imapclient.Client
	log  *slog.Logger
	caps imap.CapSet
	// wake receives a value when the server announces new messages
	// (untagged EXISTS, RFC 9051 7.4.1) outside a SELECT.
	wake chan struct{}
	stop func() bool // unregisters the context's close
	bye  *byeWatch
}

// connect dials, greets and authenticates. The connection is closed when
// ctx ends, which unblocks every command of the session.
func connect(ctx context.Context, cfg *Config, st Store) (*session, error) {
	s := &session{
		cfg:  cfg,
		st:   st,
		log:  cfg.Logger.With("conn", strconv.FormatUint(uint64(rand.Uint32()), 36)),
		wake: make(chan struct{}, 1),
		bye:  &byeWatch{},
	}
	opts := &imapclient.Options{
		DebugWriter: s.bye,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case s.wake <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	host, portText, _ := net.SplitHostPort(cfg.Addr)
	d := &net.Dialer{Timeout: dialTimeout, Resolver: s.cfg.Resolver}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*session, error) {
		s.stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	switch cfg.Security {
	case SecurityTLS:
		tc := tls.Client(conn, cfg.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("tls handshake with %s: %w", cfg.Addr, err))
		}
		s.c = imapclient.New(tc, opts)
	case SecurityStartTLS:
		// RFC 9051 6.2.1; NewStartTLS refuses a PREAUTH greeting (7.1.4).
		opts.TLSConfig = cfg.tlsConfig(host)
		if s.c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			return fail(fmt.Errorf("starttls with %s: %w", cfg.Addr, err))
		}
	default:
		s.c = imapclient.New(conn, opts)
	}
	if err := s.c.WaitGreeting(); err != nil {
		return fail(fmt.Errorf("greeting of %s: %w", cfg.Addr, err))
	}
	port, _ := strconv.Atoi(portText)
	if err := s.authenticate(ctx, host, port); err != nil {
		return fail(err)
	}
	// RFC 9051 6.2.2: capabilities may change after authentication.
	if err := s.wait(func() error { _, err := s.c.Capability().Wait(); return err }); err != nil {
		return fail(fmt.Errorf("capability: %w", err))
	}
	s.caps = s.c.Caps()
	s.log.Debug("imap connected", "addr", cfg.Addr, "idle", s.hasIdle(), "move", s.hasMove(), "uidplus", s.hasUIDPlus())
	return s, nil
}

func (s *session) hasIdle() bool {
	return s.caps.Has(imap.CapIdle) || s.caps.Has(imap.CapIMAP4rev2)
}

func (s *session) hasMove() bool {
	return s.caps.Has(imap.CapMove) || s.caps.Has(imap.CapIMAP4rev2)
}

func (s *session) hasUIDPlus() bool {
	return s.caps.Has(imap.CapUIDPlus) || s.caps.Has(imap.CapIMAP4rev2)
}

// close logs out (RFC 9051 6.1.3) briefly and closes the connection.
func (s *session) close() {
	s.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.c.Logout().Wait()
	}()
	select {
	case <-done:
	case <-time.After(logoutTimeout):
	}
	s.c.Close()
}

// wait runs f, a command's Wait, closing the connection if it takes longer
// than commandTimeout.
func (s *session) wait(f func() error) error {
	t := time.AfterFunc(commandTimeout, func() {
		s.log.Warn("imap command timed out; closing the connection", "timeout", commandTimeout)
		s.c.Close()
	})
	err := f()
	if !t.Stop() && err != nil {
		err = fmt.Errorf("no answer within %v: %w", commandTimeout, err)
	}
	return err
}

// authenticate signs in with cfg.Auth. A refused OAuth token is retried
// once with a token from RefreshToken.
func (s *session) authenticate(ctx context.Context, host string, port int) error {
	cfg := s.cfg
	switch cfg.Auth {
	case AuthPlain, AuthLogin:
		pw, err := cfg.Password(ctx)
		if err != nil {
			return fmt.Errorf("get password: %w", err)
		}
		var mech string
		if cfg.Auth == AuthLogin {
			mech = "LOGIN"
			// RFC 9051 6.2.3; go-imap quotes or sends a literal as needed.
			err = s.wait(func() error { return s.c.Login(cfg.Username, pw).Wait() })
		} else {
			mech = sasl.Plain
			err = s.wait(func() error { return s.c.Authenticate(sasl.NewPlainClient("", cfg.Username, pw)) })
		}
		if isRefusal(err) {
			return &AuthError{Username: cfg.Username, Mechanism: mech, Err: err}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", strings.ToLower(mech), err)
		}
		return nil
	}

	newClient := func(token string) gosasl.Client {
		if cfg.Auth == AuthOAuthBearer {
			return sasl.NewOAuthBearerClient(cfg.Username, token, host, port)
		}
		return sasl.NewXOAuth2Client(cfg.Username, token)
	}
	mech := sasl.XOAuth2
	if cfg.Auth == AuthOAuthBearer {
		mech = sasl.OAuthBearer
	}
	token, err := cfg.Token(ctx)
	if err != nil {
		return fmt.Errorf("get access token: %w", err)
	}
	client := newClient(token)
	err = s.wait(func() error { return s.c.Authenticate(client) })
	if err == nil {
		return nil
	}
	if !isRefusal(err) {
		return fmt.Errorf("authenticate %s: %w", mech, err)
	}
	first := &AuthError{Username: cfg.Username, Mechanism: mech, Failure: sasl.FailureOf(client), Err: err}
	if cfg.RefreshToken == nil {
		return first
	}
	s.log.Info("imap server refused the access token; retrying once with a refreshed one", "mechanism", mech, "error", err)
	if token, err = cfg.RefreshToken(ctx); err != nil {
		return fmt.Errorf("refresh access token after %w: %w", first, err)
	}
	client = newClient(token)
	err = s.wait(func() error { return s.c.Authenticate(client) })
	if err == nil {
		return nil
	}
	if !isRefusal(err) {
		return fmt.Errorf("authenticate %s with refreshed token: %w", mech, err)
	}
	return &AuthError{Username: cfg.Username, Mechanism: mech, Refreshed: true, Failure: sasl.FailureOf(client), Err: err}
}

// isRefusal reports whether err is the server refusing the credentials: a
// NO with AUTHENTICATIONFAILED, AUTHORIZATIONFAILED or EXPIRED (RFC 5530 3),
// or without a code. NO [UNAVAILABLE] and the like are temporary.
func isRefusal(err error) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
		return false
	}
	switch ie.Code {
	case "", imap.ResponseCodeAuthenticationFailed, imap.ResponseCodeAuthorizationFailed, imap.ResponseCodeExpired:
		return true
	}
	return false
}
