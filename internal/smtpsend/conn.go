package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// quitTimeout bounds the QUIT of Close.
const quitTimeout = 5 * time.Second

// errBroken is the Err of a Send on a connection that an earlier failure
// left unusable.
var errBroken = errors.New("the connection was lost by an earlier failure: dial again")

// Conn is an authenticated SMTP submission connection. Send may be called
// many times; calls are serialised. A failure that leaves the connection
// unusable (network, 421, outcome unknown) makes every later Send fail with
// KindTemporary at StageConnect: check Usable and dial again.
type Conn struct {
	cfg  Config
	log  *slog.Logger
	raw  *watchConn // the TCP connection under TLS and go-smtp
	c    *smtp.Client
	sc   net.Conn  // the secured connection go-smtp's Client speaks on
	pl   *pipeline // this package's own reader and writer on sc (RFC 2920)
	mech string

	mu     sync.Mutex
	broken error // why the connection is unusable, or nil
}

// Dial connects to cfg.Addr, greets with EHLO, secures the connection
// (implicit TLS or STARTTLS; SecurityNone only to loopback) and
// authenticates. A refused token (KindAuthFailed) is retried once, on a new
// connection, with a token from cfg.RefreshToken, as imapsync does; 535
// 5.7.139 is not retried: a new token cannot enable SMTP AUTH. (A new
// connection because go-smtp answers a final 535 with "*", which Postfix
// takes as a non-SMTP command and disconnects.) ctx bounds Dial only; the
// Conn lives until Close. Every error is an *Error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("conn", strconv.FormatUint(uint64(rand.Uint32()), 36))
	c, err := dialOnce(ctx, cfg, log, "")
	if KindOf(err) != KindAuthFailed || cfg.RefreshToken == nil || (cfg.Auth != AuthXOAuth2 && cfg.Auth != AuthOAuthBearer) {
		return c, err
	}
	first := err.(*Error)
	log.Info("smtp server refused the access token; retrying once with a refreshed one",
		"mechanism", mechanisms[cfg.Auth], "code", first.Code, "enhanced", first.Enhanced)
	token, err := cfg.RefreshToken(ctx)
	if err != nil {
		return nil, &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("refresh access token after %w: %w", first, err)}
	}
	if token == "" {
		return nil, &Error{Kind: KindTemporary, Stage: StageAuth, Err: fmt.Errorf("refresh access token after %w: empty token", first)}
	}
	return dialOnce(ctx, cfg, log, token)
}

// dialOnce is one connection attempt of Dial; token "" asks cfg.Token.
func dialOnce(ctx context.Context, cfg Config, log *slog.Logger, token string) (*Conn, error) {
	c := &Conn{cfg: cfg, log: log}
	if err := c.connect(ctx, token); err != nil {
		if c.raw != nil {
			c.raw.Close()
		}
		c.log.Debug("smtp dial failed", "addr", cfg.Addr, "error", err)
		return nil, err
	}
	c.log.Debug("smtp connected", "addr", cfg.Addr, "security", string(cfg.Security), "mechanism", c.mech)
	return c, nil
}

// connect does the work of dialOnce; on failure the caller closes c.raw.
func (c *Conn) connect(ctx context.Context, token string) error {
	cfg := &c.cfg
	host, portText, _ := net.SplitHostPort(cfg.Addr)
	conn, err := cfg.dial(ctx, "tcp", cfg.Addr)
	if err != nil {
		kind := KindTemporary
		if isUnknownHost(err) {
			kind = KindConfig
		}
		return &Error{Kind: kind, Stage: StageConnect, Err: fmt.Errorf("dial %s: %w", cfg.Addr, ctxErr(ctx, err))}
	}
	c.raw = &watchConn{Conn: conn}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var sc net.Conn = c.raw
	switch cfg.Security {
	case SecurityTLS:
		if sc, err = handshake(ctx, c.raw, cfg.tlsConfig(host), cfg.CommandTimeout); err != nil {
			return err
		}
	case SecurityStartTLS:
		if sc, err = startTLS(ctx, c.raw, cfg, host); err != nil {
			return err
		}
	}
	c.c = smtp.NewClient(sc)
	c.c.CommandTimeout = cfg.CommandTimeout
	c.c.SubmissionTimeout = DataEndTimeout
	if err := c.c.Hello(cfg.LocalName); err != nil {
		return c.fail(ctx, StageConnect, "", err)
	}
	port, _ := strconv.Atoi(portText)
	if err := c.authenticate(ctx, host, port, token); err != nil {
		return err
	}
	c.sc, c.pl = sc, newPipeline(sc)
	return nil
}

// Usable reports whether the connection can take another Send.
func (c *Conn) Usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken == nil
}

// Send submits one message: MAIL FROM, RCPT TO for
// each of to, DATA. raw is the whole message; bare LF line ends are sent as
// CRLF and lines starting with a dot are escaped (RFC 5321 4.5.2).
//
// All recipients or none: if the server refuses one, nothing is sent, the
// transaction is reset (RSET) and the error names that recipient. After a
// refusal the connection stays usable; after a network failure it is not
// (see Usable). ctx cancels the exchange by closing the connection. Every
// error is an *Error; KindOutcomeUnknown means the message may have been
// accepted.
func (c *Conn) Send(ctx context.Context, from string, to []string, raw []byte) error {
	return c.SendWhen(ctx, from, to, raw, nil)
}

// SendWhen is Send whose end of data waits for ready: MAIL, RCPT, DATA and
// the message go to the server, then ready is called, and only if it
// returns nil is the final "." written (RFC 5321 4.1.1.4), the one point
// at which the server takes the message. If ready returns an error the
// message is not sent: the connection is closed without it, which aborts
// the server's transaction (RFC 5321 3.8), and SendWhen returns an *Error
// (KindTemporary, StageData) wrapping ready's error. A caller that must
// record something before a message may go out lets that commit overlap
// the commands before the end of data. ready is not called when Send
// fails before the end of data; nil ready is Send.
func (c *Conn) SendWhen(ctx context.Context, from string, to []string, raw []byte, ready func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return &Error{Kind: KindTemporary, Stage: StageConnect, Err: fmt.Errorf("%w (%w)", errBroken, c.broken)}
	}
	if len(to) == 0 {
		return &Error{Kind: KindPermanent, Stage: StageRcpt, Err: errors.New("no recipients")}
	}
	if err := checkAddress(from, true); err != nil {
		return &Error{Kind: KindPermanent, Stage: StageMail, Err: fmt.Errorf("sender %q: %w", from, err)}
	}
	for _, rcpt := range to {
		if err := checkAddress(rcpt, false); err != nil {
			return &Error{Kind: KindPermanent, Stage: StageRcpt, Recipient: rcpt, Err: fmt.Errorf("recipient %q: %w", rcpt, err)}
		}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Kind: KindTemporary, Stage: StageMail, Err: context.Cause(ctx)}
	}
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	defer stop()

	// RFC 1870 6: the server's advertised limit is checked here rather than
	// declared with SIZE= on every MAIL (which made Postfix about 20%
	// slower per message in BenchmarkSendPostfix).
	if limit, ok := c.c.MaxMessageSize(); ok && limit > 0 && len(raw) > limit {
		return &Error{Kind: KindPermanent, Stage: StageMail,
			Err: fmt.Errorf("%w: %d bytes, the server accepts at most %d", ErrMessageTooLarge, len(raw), limit)}
	}
	opts := &smtp.MailOptions{}
	if !isASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !isASCII(a) }) {
		// RFC 6531 3.4: an internationalised address needs SMTPUTF8.
		if ok, _ := c.c.Extension("SMTPUTF8"); !ok {
			return &Error{Kind: KindPermanent, Stage: StageMail, Err: errNoSMTPUTF8}
		}
		opts.UTF8 = true
	}
	began := time.Now()
	if c.pipelines() {
		return c.sendPipelined(ctx, from, to, raw, opts.UTF8, ready)
	}
	if err := c.c.Mail(from, opts); err != nil {
		return c.fail(ctx, StageMail, "", err)
	}
	for _, rcpt := range to {
		if err := c.c.Rcpt(rcpt, nil); err != nil {
			return c.fail(ctx, StageRcpt, rcpt, err)
		}
	}
	w, err := c.c.Data()
	if err != nil {
		return c.fail(ctx, StageData, "", err)
	}
	if err := c.writeData(ctx, w, raw, ready); err != nil {
		return err
	}
	// RFC 5321 4.1.1.4: the end of data, then the server's reply. A write
	// that fails means the final "." did not leave; a reply that never
	// comes after it leaves the outcome unknown.
	failures := c.raw.writeFailures()
	resp, err := w.CloseWithResponse()
	if err != nil {
		if se := (*smtp.SMTPError)(nil); errors.As(err, &se) {
			return c.fail(ctx, StageData, "", err)
		}
		return c.dataEndLost(ctx, err, failures)
	}
	c.log.Debug("smtp message accepted", "bytes", len(raw), "recipients", len(to),
		"reply", oneLine(resp.StatusText), "duration", time.Since(began).Round(time.Millisecond))
	return nil
}

// writeData writes the message to DATA's writer w, then waits for ready:
// if ready fails, the connection is closed before the end of data, which
// aborts the server's transaction (RFC 5321 3.8).
func (c *Conn) writeData(ctx context.Context, w io.Writer, raw []byte, ready func() error) error {
	if err := c.writeBody(w, raw); err != nil {
		return c.fail(ctx, StageData, "", err)
	}
	if ready == nil {
		return nil
	}
	if err := ready(); err != nil {
		c.broken = fmt.Errorf("closed before the end of data: %w", err)
		c.raw.Close()
		return &Error{Kind: KindTemporary, Stage: StageData, Err: fmt.Errorf("the message was not sent: %w", err)}
	}
	return nil
}

// bodyChunk is how much of the message is written under one write deadline.
const bodyChunk = 64 << 10

// writeBody writes raw to the DATA writer, each chunk within CommandTimeout
// (go-smtp sets no deadline while the message is written).
func (c *Conn) writeBody(w io.Writer, raw []byte) error {
	defer c.raw.SetWriteDeadline(time.Time{})
	for len(raw) > 0 {
		n := min(len(raw), bodyChunk)
		c.raw.SetWriteDeadline(time.Now().Add(c.cfg.CommandTimeout))
		if _, err := w.Write(raw[:n]); err != nil {
			return err
		}
		raw = raw[n:]
	}
	return nil
}

// fail turns err, met at stage, into an *Error. After a server's refusal
// the transaction is reset (RSET, RFC 5321 4.1.1.5) so that the connection
// can send the next message; a 421 (the server is closing, 3.8) or any
// other error leaves it broken.
func (c *Conn) fail(ctx context.Context, stage, rcpt string, err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		c.broken = err
		kind := KindTemporary
		if isTLSConfigError(err) {
			kind, stage = KindConfig, StageTLS
		}
		return &Error{Kind: kind, Stage: stage, Recipient: rcpt, Err: ctxErr(ctx, err)}
	}
	e := c.refusal(stage, rcpt, se)
	switch {
	case se.Code == 421:
		c.broken = err
	case stage == StageMail || stage == StageRcpt || stage == StageData:
		return c.reset(e)
	}
	return e
}

// refusal is the *Error of a server's refusal at stage.
func (c *Conn) refusal(stage, rcpt string, se *smtp.SMTPError) *Error {
	e := replyError(stage, rcpt, se)
	if e.Kind == KindSendAsDenied {
		e.Recipient = "" // Postfix refuses the sender at RCPT time
	}
	c.log.Debug("smtp refused", "stage", stage, "code", e.Code, "enhanced", e.Enhanced, "kind", e.Kind.String())
	return e
}

// reset ends a refused transaction (RSET) so that the connection can send
// the next message, and returns e.
func (c *Conn) reset(e *Error) error {
	if c.broken != nil {
		return e
	}
	if rerr := c.c.Reset(); rerr != nil {
		c.broken = rerr
		c.log.Debug("smtp rset failed; the connection is dropped", "error", rerr)
	}
	return e
}

// dataEndLost is the outcome of an end of data that got no reply (err is
// not the server's): if a write failed since failures was read, the end
// did not leave and nothing was sent; otherwise the server may have taken
// the message, and the outcome is unknown.
func (c *Conn) dataEndLost(ctx context.Context, err error, failures int) error {
	if c.raw.writeFailures() != failures {
		return c.fail(ctx, StageData, "", err)
	}
	c.broken = err
	c.log.Warn("smtp connection lost after the end of the data: the message may have been accepted",
		"error", err)
	return &Error{Kind: KindOutcomeUnknown, Stage: StageData, Err: ctxErr(ctx, err)}
}

// Close ends the session with QUIT (RFC 5321 4.1.1.10) and closes the
// connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		c.raw.Close()
		return nil
	}
	c.broken = net.ErrClosed
	t := time.AfterFunc(quitTimeout, func() { c.raw.Close() })
	defer t.Stop()
	if err := c.c.Quit(); err != nil {
		c.raw.Close()
		return fmt.Errorf("smtpsend: quit: %w", err)
	}
	return nil
}

// ErrMessageTooLarge is the Err (under errors.Is) of a Send whose message is
// larger than the limit the server announced with SIZE (RFC 1870); nothing
// was sent.
var ErrMessageTooLarge = errors.New("smtpsend: message larger than the server accepts")

// errNoSMTPUTF8 is the Err of a Send with a non-ASCII envelope address to a
// server without SMTPUTF8.
var errNoSMTPUTF8 = errors.New("an address is not ASCII and the server does not offer SMTPUTF8 (RFC 6531)")

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// errBadAddress is the Err of an envelope address that cannot be sent.
var errBadAddress = errors.New("not a valid envelope address")

// checkAddress refuses what would break the command line of MAIL or RCPT
// (RFC 5321 4.1.2): control characters, angle brackets, spaces. Only the
// sender may be empty (the null reverse-path).
func checkAddress(addr string, emptyOK bool) error {
	if addr == "" && !emptyOK {
		return errBadAddress
	}
	if strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }) {
		return errBadAddress
	}
	return nil
}

// ctxErr returns the context's cause when ctx is done (the error then came
// from closing the connection), else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	return err
}

// watchConn counts failed writes, which tells whether the end of the data
// can have reached the server.
type watchConn struct {
	net.Conn
	mu       sync.Mutex
	failures int
}

func (w *watchConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil {
		w.mu.Lock()
		w.failures++
		w.mu.Unlock()
	}
	return n, err
}

func (w *watchConn) writeFailures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failures
}
