package smtpsend

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// Kind says what a failure means for the message and the mailbox. It is
// decided from reply codes and enhanced status codes (RFC 3463), never from
// the server's prose, except for Microsoft's documented tokens
// "SendAsDenied" and "SubmissionQuotaExceeded" inside a reply.
type Kind int

const (
	// KindTemporary: a 4xx reply, or the network failed before the end of
	// the data reached the server. Retry later.
	KindTemporary Kind = iota + 1
	// KindThrottled: the server asks to slow down (4.3.2, 452 4.5.3,
	// 421 4.7.x, Microsoft's 554 5.2.0 SubmissionQuotaExceeded). Retry
	// later, with a longer back-off.
	KindThrottled
	// KindPermanent: any other 5xx. Do not retry this message.
	KindPermanent
	// KindAuthDisabled: 535 5.7.139, Microsoft 365's "SMTP AUTH is
	// disabled" for the tenant or this mailbox. An administrator must
	// enable Authenticated SMTP; a new token does not help.
	KindAuthDisabled
	// KindAuthFailed: the credentials were refused (535 5.7.3, 5.7.8, any
	// other 535 or 534; for tokens, after the one refresh-and-retry). The
	// mailbox needs re-authentication.
	KindAuthFailed
	// KindSendAsDenied: the signed-in account may not send as the sender
	// address (5.7.60, "SendAsDenied", Postfix's
	// reject_sender_login_mismatch 553 5.7.1).
	KindSendAsDenied
	// KindRecipientUnknown: a recipient was refused with 5.1.x (5.1.1 no
	// such mailbox). Nothing was sent; Error.Recipient names it.
	KindRecipientUnknown
	// KindOutcomeUnknown: the end of the data was sent but no reply was
	// read: the server may or may not have accepted the message. Resending
	// blindly may deliver it twice.
	KindOutcomeUnknown
	// KindConfig: the settings cannot work: clear text to a non-loopback
	// address, a TLS handshake or certificate failure, no STARTTLS, the
	// server does not offer the AUTH mechanism, an unknown host name.
	KindConfig
)

var kindNames = map[Kind]string{
	KindTemporary:        "temporary",
	KindThrottled:        "throttled",
	KindPermanent:        "permanent",
	KindAuthDisabled:     "auth_disabled",
	KindAuthFailed:       "auth_failed",
	KindSendAsDenied:     "send_as_denied",
	KindRecipientUnknown: "recipient_unknown",
	KindOutcomeUnknown:   "outcome_unknown",
	KindConfig:           "config",
}

// String returns the kind as a snake_case word for logs ("throttled").
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Stages of Error.Stage: the step that failed.
const (
	StageConnect = "connect" // dial, greeting, EHLO, or a connection already broken
	StageTLS     = "tls"     // STARTTLS or the TLS handshake
	StageAuth    = "auth"    // AUTH, or getting the token or password
	StageMail    = "mail"    // MAIL FROM
	StageRcpt    = "rcpt"    // RCPT TO
	StageData    = "data"    // DATA, the message, the end of data
)

// Error is every error of Dial and Send.
type Error struct {
	Kind  Kind
	Stage string // one of the Stage constants
	// Code is the SMTP reply code (535), 0 when the server did not answer.
	Code int
	// Enhanced is the enhanced status code (RFC 3463, "5.7.139") or "".
	Enhanced string
	// Message is the server's words, on one line, trimmed; "" without a
	// reply.
	Message string
	// Recipient is the refused recipient at StageRcpt.
	Recipient string
	// Err is the underlying error: the *smtp.SMTPError, a network or TLS
	// error, the context's error, or the error of Config.Token/Password
	// (match the token source's own errors with errors.As).
	Err error
}

// Error implements error: "smtpsend: rcpt <x@y>: 550 5.1.1 no such user
// (recipient_unknown)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtpsend: ")
	b.WriteString(e.Stage)
	if e.Recipient != "" {
		b.WriteString(" <" + e.Recipient + ">")
	}
	b.WriteString(": ")
	switch {
	case e.Code != 0:
		b.WriteString(strconv.Itoa(e.Code))
		if e.Enhanced != "" {
			b.WriteString(" " + e.Enhanced)
		}
		if e.Message != "" {
			b.WriteString(" " + e.Message)
		}
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("failed")
	}
	b.WriteString(" (" + e.Kind.String() + ")")
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether sending again later may succeed: KindTemporary
// and KindThrottled. KindOutcomeUnknown is not: first find out whether the
// message went out.
func (e *Error) Temporary() bool { return e.Kind == KindTemporary || e.Kind == KindThrottled }

// KindOf returns the Kind of the *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// maxMessage bounds Error.Message; a reply line is at most 512 octets
// (RFC 5321 4.5.3.1.5) but multi-line replies are joined.
const maxMessage = 1000

// replyError turns a server reply into an Error of stage. Its Kind follows
// classify.
func replyError(stage, rcpt string, se *smtp.SMTPError) *Error {
	e := &Error{Stage: stage, Code: se.Code, Message: oneLine(se.Message), Recipient: rcpt, Err: se}
	if ec := se.EnhancedCode; ec[0] > 0 {
		e.Enhanced = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
	}
	e.Kind = classify(stage, e.Code, e.Enhanced, e.Message)
	return e
}

// classify decides the Kind of a reply from its code and enhanced code.
func classify(stage string, code int, enhanced, message string) Kind {
	class, subject, detail := splitEnhanced(enhanced)
	switch {
	// Microsoft 365: 535 5.7.139 "SmtpClientAuthentication is disabled".
	case stage == StageAuth && enhanced == "5.7.139":
		return KindAuthDisabled
	// RFC 4954 6: 535 credentials invalid; 534 mechanism too weak (Gmail:
	// "534 5.7.9 Application-specific password required"); 530 5.7.0
	// authentication required.
	case stage == StageAuth && (code == 535 || code == 534 || code == 530):
		return KindAuthFailed
	// RFC 3463 3.4 X.3.2 "System not accepting network messages"; Microsoft
	// answers 4.3.2 when a mailbox is throttled.
	case class == 4 && subject == 3 && detail == 2:
		return KindThrottled
	// RFC 3463 3.6 X.5.3 "Too many recipients" as 452 (RFC 5321 4.5.3.1.10).
	case code == 452 && subject == 5 && detail == 3:
		return KindThrottled
	// 421 4.7.x: rate or concurrency limits before the server closes.
	case code == 421 && class == 4 && subject == 7:
		return KindThrottled
	// Microsoft 365: "554 5.2.0 STOREDRV.Submission.Exception:
	// SubmissionQuotaExceededException"; the token is the protocol's data.
	case code/100 == 5 && strings.Contains(message, "SubmissionQuotaExceeded"):
		return KindThrottled
	case code/100 == 5 && enhanced == "5.7.60":
		return KindSendAsDenied
	case code/100 == 5 && strings.Contains(message, "SendAsDenied"):
		return KindSendAsDenied
	// Postfix reject_sender_login_mismatch answers 553 5.7.1 on the sender:
	// at MAIL, or at RCPT under its default smtpd_delay_reject.
	case code == 553 && enhanced == "5.7.1" && (stage == StageMail || stage == StageRcpt):
		return KindSendAsDenied
	// RFC 3463 3.2 X.1.x: addressing status (5.1.1 bad mailbox, 5.1.2 bad
	// domain, 5.1.10 Microsoft's recipient not found).
	case stage == StageRcpt && class == 5 && subject == 1:
		return KindRecipientUnknown
	case code/100 == 4:
		return KindTemporary
	case code/100 == 5:
		return KindPermanent
	}
	// A reply outside 4xx/5xx where a success was expected (a 2xx or 3xx out
	// of sequence): the exchange is confused; try again on a new connection.
	return KindTemporary
}

// splitEnhanced parses "5.7.139" into its parts; zeros for "".
func splitEnhanced(s string) (class, subject, detail int) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return 0, 0, 0
	}
	class, _ = strconv.Atoi(parts[0])
	subject, _ = strconv.Atoi(parts[1])
	detail, _ = strconv.Atoi(parts[2])
	return class, subject, detail
}

// oneLine joins a multi-line reply text with spaces and drops control
// characters, so that it can be shown and logged on one line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "…"
	}
	return s
}

// isTLSConfigError reports whether err is a TLS failure that retrying will
// not fix: the certificate is not trusted or not for this host, the peer
// does not speak TLS, or it refused the handshake with an alert.
func isTLSConfigError(err error) bool {
	var (
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		header      tls.RecordHeaderError
		alert       tls.AlertError
	)
	return errors.As(err, &unknownAuth) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert)
}

// isUnknownHost reports whether err says the host name does not exist.
func isUnknownHost(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
