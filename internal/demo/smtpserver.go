package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/mailmsg"
)

// The SMTP submission side of the demo's mail server, shaped after
// Microsoft 365's smtp.office365.com so that Postdesk's sender meets the
// same answers there as in production:
//
//   - AUTH is required, with XOAUTH2 or OAUTHBEARER only (there are no
//     password mailboxes in the demo, and the IMAP side refuses passwords
//     too). Tokens are checked by the same Introspector as IMAP. A refused
//     token gets "535 5.7.3 Authentication unsuccessful" as from Microsoft;
//     OAUTHBEARER first gets RFC 7628's JSON error challenge.
//   - MAIL FROM must be the signed-in account's address, or "553 5.7.60
//     SendAsDenied" (Microsoft's "send as" refusal).
//   - Each recipient's INBOX gets the message as submitted (a mailbox is
//     created for an unknown recipient, so any customer address works),
//     and, as Microsoft 365 saves SMTP-submitted mail to Sent Items itself,
//     a copy goes to the sender's SentFolder (marked \Seen) when it exists.
//     Clients must therefore not APPEND their own copy to this server.

// maxMessageBytes is Microsoft 365's default send limit (35 MB of encoded
// message).
const maxMessageBytes = 35 << 20

// Microsoft-like refusals.
var (
	errSMTPAuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
	errSMTPNotAuthed  = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 57}, Message: "Client not authenticated to send mail"}
	errSMTPSendAs     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "SendAsDenied; Client does not have permissions to send as this sender"}
	errSMTPTokenCheck = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	errSMTPBadRcpt    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Invalid recipient address"}
	errSMTPNoRcpt     = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
)

// ServeSMTP serves SMTP submission on ln until ctx ends. ln must be a
// loopback address: the server speaks clear text (AUTH without STARTTLS).
// Set OnDelivered before calling it.
func (s *MailServer) ServeSMTP(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("demo smtp server: %s is not a loopback address", ln.Addr())
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, remote: c.Conn().RemoteAddr().String()}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback only, checked above
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 500 // Microsoft 365's per-message limit
	srv.ReadTimeout = 10 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = log.New(slog.NewLogLogger(s.log.Handler(), slog.LevelWarn).Writer(), "", 0)
	s.log.Info("demo smtp server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo smtp server: %w", err)
	case <-ctx.Done():
	}
	err := srv.Close()
	<-errc
	return err
}

// smtpSession is one SMTP connection.
type smtpSession struct {
	srv    *MailServer
	remote string
	user   string // the signed-in address; "" before AUTH
	from   string
	rcpts  []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (s *smtpSession) AuthMechanisms() []string { return []string{mechXOAuth2, mechOAuthBearer} }

func (s *smtpSession) Auth(mech string) (gosasl.Server, error) {
	switch mech {
	case mechXOAuth2, mechOAuthBearer:
		return &smtpBearer{sess: s, mech: mech}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// Mail accepts only the signed-in account's own address (RFC 5321 3.3
// MAIL; RFC 4954 6 for the refusal before AUTH).
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return errSMTPNotAuthed
	}
	if !strings.EqualFold(from, s.user) {
		s.srv.log.Info("demo smtp server: send as refused", "user", s.user, "from", from, "remote", s.remote)
		return errSMTPSendAs
	}
	s.from = s.user
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.from == "" {
		return errSMTPNotAuthed
	}
	if mailmsg.NormalizeAddress(to) == "" || strings.ContainsAny(to, "<>") {
		return errSMTPBadRcpt
	}
	s.rcpts = append(s.rcpts, strings.ToLower(to))
	return nil
}

// Data delivers the message to every recipient and saves the sender's
// copy. go-smtp has already bounded r by MaxMessageBytes.
func (s *smtpSession) Data(r io.Reader) error {
	if len(s.rcpts) == 0 {
		return errSMTPNoRcpt
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp's ErrDataTooLarge, or the connection's failure
	}
	subject := subjectOf(raw)
	now := time.Now()
	for _, to := range s.rcpts {
		if err := s.srv.AddMailbox(to); err != nil {
			return s.deliveryFailed(to, err)
		}
		if err := s.srv.put(to, "INBOX", raw, now, nil); err != nil {
			return s.deliveryFailed(to, err)
		}
		s.srv.log.Info("demo: mail delivered", "to", to, "from", s.from, "subject", subject)
		if f := s.srv.OnDelivered; f != nil {
			f(to, raw)
		}
	}
	// Microsoft 365 keeps what is sent over SMTP in Sent Items.
	if err := s.srv.put(s.from, SentFolder, raw, now, []imap.Flag{imap.FlagSeen}); err != nil {
		s.srv.log.Debug("demo smtp server: no copy in Sent", "user", s.from, "err", err)
	}
	return nil
}

func (s *smtpSession) deliveryFailed(to string, err error) error {
	s.srv.log.Error("demo smtp server: delivery failed", "to", to, "err", err)
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary delivery failure"}
}

func (s *smtpSession) Reset() { s.from, s.rcpts = "", nil }

func (s *smtpSession) Logout() error { return nil }

// subjectOf reads the decoded Subject for the log line.
func subjectOf(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return subject
}

// smtpBearer is the server side of XOAUTH2 and OAUTHBEARER for SMTP.
type smtpBearer struct {
	sess   *smtpSession
	mech   string
	failed bool
}

func (b *smtpBearer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed {
		return nil, true, errSMTPAuthFailed
	}
	if resp == nil { // no initial response: ask for it (RFC 4954 4)
		return []byte{}, false, nil
	}
	user, verdict := b.sess.srv.checkBearer(b.mech, resp, b.sess.remote)
	switch verdict {
	case bearerOK:
		if !b.sess.srv.hasMailbox(user) {
			break
		}
		b.sess.user = strings.ToLower(user)
		return nil, true, nil
	case bearerMalformed:
		return nil, true, &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed " + b.mech + " response"}
	case bearerUnavailable:
		return nil, true, errSMTPTokenCheck
	}
	if b.mech == mechOAuthBearer {
		// RFC 7628 3.2.2: the error travels in a challenge; the client
		// answers %x01 and then the exchange fails.
		b.failed = true
		return bearerChallenge(), false, nil
	}
	return nil, true, errSMTPAuthFailed
}

func (s *MailServer) hasMailbox(address string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[strings.ToLower(address)]
	return ok
}
