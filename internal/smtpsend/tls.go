package smtpsend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// handshake runs the TLS client handshake on conn within timeout.
func handshake(ctx context.Context, conn net.Conn, tc *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := tls.Client(conn, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		kind := KindTemporary
		if isTLSConfigError(err) {
			kind = KindConfig
		}
		return nil, &Error{Kind: kind, Stage: StageTLS, Err: fmt.Errorf("tls handshake: %w", ctxErr(ctx, err))}
	}
	return c, nil
}

// startTLS reads the greeting, says EHLO, checks that the server offers
// STARTTLS, issues it (RFC 3207 4) and runs the handshake. go-smtp's Client
// cannot issue STARTTLS on a connection it did not greet with its own
// default name, so this clear-text prelude is done here; the returned
// connection replays a greeting for the go-smtp Client, which then says
// EHLO again over TLS as RFC 3207 4.2 requires.
func startTLS(ctx context.Context, conn net.Conn, cfg *Config, host string) (net.Conn, error) {
	conn.SetDeadline(time.Now().Add(cfg.CommandTimeout))
	defer conn.SetDeadline(time.Time{})
	// No reader buffering across the handshake: the server sends nothing
	// after its 220 to STARTTLS until the client's hello.
	tp := textproto.NewConn(conn)
	reply := func(stage string, expect int) (string, error) {
		_, msg, err := tp.ReadResponse(expect)
		if err == nil {
			return msg, nil
		}
		var pe *textproto.Error
		if errors.As(err, &pe) {
			return "", replyError(stage, "", toSMTPError(pe))
		}
		return "", &Error{Kind: KindTemporary, Stage: stage, Err: ctxErr(ctx, err)}
	}
	if _, err := reply(StageConnect, 220); err != nil {
		return nil, err
	}
	if err := tp.PrintfLine("EHLO %s", cfg.LocalName); err != nil {
		return nil, &Error{Kind: KindTemporary, Stage: StageConnect, Err: ctxErr(ctx, err)}
	}
	msg, err := reply(StageConnect, 250)
	if err != nil {
		return nil, err
	}
	if !hasExtension(msg, "STARTTLS") {
		return nil, &Error{Kind: KindConfig, Stage: StageTLS,
			Err: fmt.Errorf("%s does not offer STARTTLS: refusing to send in clear text", cfg.Addr)}
	}
	if err := tp.PrintfLine("STARTTLS"); err != nil {
		return nil, &Error{Kind: KindTemporary, Stage: StageTLS, Err: ctxErr(ctx, err)}
	}
	if _, err := reply(StageTLS, 220); err != nil {
		return nil, err
	}
	if tp.R.Buffered() > 0 {
		// Anything the server sent before the handshake would be taken as
		// protected later (the STARTTLS command injection of RFC 3207 5).
		return nil, &Error{Kind: KindConfig, Stage: StageTLS, Err: errors.New("server sent data after its STARTTLS reply")}
	}
	conn.SetDeadline(time.Time{})
	tc, err := handshake(ctx, conn, cfg.tlsConfig(host), cfg.CommandTimeout)
	if err != nil {
		return nil, err
	}
	return &greetedConn{Conn: tc, r: io.MultiReader(strings.NewReader("220 "+host+" TLS established\r\n"), tc)}, nil
}

// hasExtension reports whether an EHLO reply (lines after the first) lists
// the keyword ext (RFC 5321 4.1.1.1).
func hasExtension(ehlo, ext string) bool {
	lines := strings.Split(ehlo, "\n")
	for _, l := range lines[1:] {
		if kw, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(kw, ext) {
			return true
		}
	}
	return false
}

// toSMTPError is go-smtp's parsing of a reply into code, enhanced code and
// text, for the replies read before go-smtp's Client takes over.
func toSMTPError(pe *textproto.Error) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: pe.Code, Message: pe.Msg}
	first, rest, ok := strings.Cut(pe.Msg, " ")
	if !ok {
		return se
	}
	// As go-smtp parses it: exactly three dot-separated numbers.
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		ec[i] = n
	}
	se.EnhancedCode = ec
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// greetedConn is a TLS connection whose first bytes read are a replayed
// greeting: the go-smtp Client waits for one.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (c *greetedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
