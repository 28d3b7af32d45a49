package desk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/imapsync"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
)

// probeTimeout bounds a connection test (IMAP and SMTP together).
const probeTimeout = 20 * time.Second

// The servers of a ConnectionCheck.
const (
	ServerIMAP = "IMAP"
	ServerSMTP = "SMTP"
)

// ConnectionError is the cause of a *ValidationError from a connection
// test: the server and step that failed and what the server said, if it
// answered.
type ConnectionError struct {
	Server string             // ServerIMAP or ServerSMTP
	Step   imapsync.ProbeStep // IMAP: the step that failed
	// SMTPStage and SMTPKind say where and how SMTP failed (smtpsend's
	// stage and kind); empty and 0 for IMAP.
	SMTPStage  string
	SMTPKind   smtpsend.Kind
	ServerText string // the server's own words ("[AUTHENTICATIONFAILED] Authentication failed.")
	Err        error
}

func (e *ConnectionError) Error() string {
	step := string(e.Step)
	if e.Server == ServerSMTP {
		step = e.SMTPStage
	}
	return fmt.Sprintf("connection test: %s %s: %v", e.Server, step, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// ConnectionCheck is one server's result in a connection test.
type ConnectionCheck struct {
	Server string // ServerIMAP or ServerSMTP
	Addr   string // host:port
	OK     bool
	// Message says, for people, what worked or what failed and what to do.
	Message string
	// Field is the setting to fix when the check failed, as the API names
	// it ("smtp_port", "password"); "" when it is no one field.
	Field string
	// Cause is the failure (nil when OK).
	Cause *ConnectionError
}

// ConnectionReport is what a connection test found, server by server:
// IMAP, then SMTP when the mailbox has SMTP settings.
type ConnectionReport struct {
	Checks []ConnectionCheck
}

// OK reports whether every check passed.
func (r ConnectionReport) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// err is the report as an error: nil when every check passed, else a
// *ValidationError about the first failure, wrapping its *ConnectionError.
func (r ConnectionReport) err() error {
	for _, c := range r.Checks {
		if !c.OK {
			return &ValidationError{Field: c.Field, Message: c.Message, Err: c.Cause}
		}
	}
	return nil
}

// TestConnection tries a password mailbox's settings without saving
// anything: against its IMAP server it resolves the host, connects,
// negotiates TLS, reads the greeting, signs in and opens every folder;
// when it has SMTP settings, it also connects to the SMTP server, secures
// the connection and signs in (AUTH), sending no email. The report has
// one check per server; the error is nil when every check passed, else a
// *ValidationError about the first failure's field, with a
// *ConnectionError inside naming the server and step. An OAuth mailbox is
// tested by signing in at its provider, or once connected with
// TestMailbox.
func (a *Admin) TestConnection(ctx context.Context, spec MailboxSpec) (ConnectionReport, error) {
	if spec.Auth != "password" {
		return ConnectionReport{}, invalid("auth", "only a password mailbox can be tested before it is saved: an OAuth mailbox is tested by signing in")
	}
	srv, err := a.resolve(&spec, false)
	if err != nil {
		return ConnectionReport{}, err
	}
	pw := func(context.Context) (string, error) { return spec.Password, nil }
	return a.probe(ctx, spec, srv, credentials{password: pw})
}

// TestMailbox tries a saved mailbox's settings, as spec changes them
// (start from Spec), without saving anything, like TestConnection: a
// password mailbox with the stored password unless spec gives a new one;
// a connected OAuth mailbox with its access token (Admin.OAuth), which
// goes only to the saved servers it was given for. A missing mailbox is store.ErrNotFound.
func (a *Admin) TestMailbox(ctx context.Context, id int64, spec MailboxSpec) (ConnectionReport, error) {
	cur, err := a.Spec(ctx, id)
	if err != nil {
		return ConnectionReport{}, err
	}
	spec.Address = cur.Address
	switch {
	case spec.Auth == "":
		return ConnectionReport{}, invalid("auth", "the mailbox %s has no server settings: there is nothing to test", cur.Address)
	case spec.Auth != cur.Auth:
		return ConnectionReport{}, invalid("auth", "save the new sign-in kind first: only the saved one can be tested")
	}
	srv, err := a.resolve(&spec, true)
	if err != nil {
		return ConnectionReport{}, err
	}
	var cr credentials
	switch {
	case spec.Auth == "password" && spec.Password != "":
		pw := spec.Password
		cr.password = func(context.Context) (string, error) { return pw, nil }
	case spec.Auth == "password":
		cr.password = func(ctx context.Context) (string, error) { return store.MailboxPasswords(a.db, a.vault)(ctx, id) }
	case a.OAuth == nil:
		return ConnectionReport{}, invalid("auth", "the OAuth sign-in cannot be tested here: no sign-in provider is configured")
	default:
		au, err := a.db.MailboxAuth(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ConnectionReport{}, fmt.Errorf("test mailbox %d: %w", id, err)
		}
		if !connected(au) {
			return ConnectionReport{}, invalid("auth", "the mailbox %s is not connected yet: connect it (sign in with its account), then test it", cur.Address)
		}
		// Its tokens go only to the servers they were given for.
		if endpoint(cur.IMAPHost, cur.IMAPPort, cur.IMAPSecurity) != endpoint(srv.IMAPHost, srv.IMAPPort, srv.IMAPSecurity) ||
			endpoint(cur.SMTPHost, cur.SMTPPort, cur.SMTPSecurity) != endpoint(srv.SMTPHost, srv.SMTPPort, srv.SMTPSecurity) {
			return ConnectionReport{}, invalid("", "the servers changed: save them and connect the mailbox again (its tokens only go to the servers they were given for), then test it")
		}
		svc := a.OAuth
		cr.token = func(host string) func(context.Context) (string, error) { return svc.HostTokenFunc(id, host, false) }
	}
	return a.probe(ctx, spec, srv, cr)
}

// credentials are what a test signs in with: a password, or a token for
// the server it goes to.
type credentials struct {
	password func(context.Context) (string, error)
	token    func(host string) func(context.Context) (string, error)
}

// tokenFor is the token function for host, nil for a password.
func (cr credentials) tokenFor(host string) func(context.Context) (string, error) {
	if cr.token == nil {
		return nil
	}
	return cr.token(host)
}

// probe tests IMAP, then SMTP when srv has it, and reports both.
func (a *Admin) probe(ctx context.Context, spec MailboxSpec, srv store.MailboxServer, cr credentials) (ConnectionReport, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	login := cmpOr(srv.Username, spec.Address)
	var rep ConnectionReport
	imapCheck, err := a.probeIMAP(ctx, srv, login, cr)
	if err != nil {
		return rep, err
	}
	rep.Checks = append(rep.Checks, imapCheck)
	if srv.SMTPHost != "" && srv.SMTPPort != 0 {
		rep.Checks = append(rep.Checks, a.probeSMTP(ctx, spec, srv, login, cr))
	}
	return rep, rep.err()
}

// probeIMAP is the IMAP check; an error is one that is nobody's setting
// (the caller answers it as a failure of Postdesk).
func (a *Admin) probeIMAP(ctx context.Context, srv store.MailboxServer, login string, cr credentials) (ConnectionCheck, error) {
	addr := net.JoinHostPort(srv.IMAPHost, strconv.Itoa(srv.IMAPPort))
	cfg := imapsync.Config{Addr: addr, Security: imapsync.Security(srv.IMAPSecurity), TLSConfig: a.ProbeTLS, Resolver: a.ProbeResolver,
		Username: login, Auth: imapsync.AuthMethod(srv.AuthMethod), Password: cr.password, Token: cr.tokenFor(srv.IMAPHost),
		Folders: srv.Folders, AfterProcessing: imapsync.Action(srv.AfterProcessing), MoveTo: srv.MoveTo}
	check := ConnectionCheck{Server: ServerIMAP, Addr: addr}
	err := imapsync.Probe(ctx, cfg)
	var pe *imapsync.ProbeError
	if !errors.As(err, &pe) {
		if err != nil {
			return check, fmt.Errorf("test connection to %s: %w", addr, err)
		}
		folders := slices.Clone(srv.Folders)
		if srv.AfterProcessing == string(imapsync.ActionMove) && srv.MoveTo != "" {
			folders = append(folders, srv.MoveTo)
		}
		check.OK = true
		check.Message = fmt.Sprintf("Signed in to %s as %s and found %s.", addr, login, strings.Join(folders, ", "))
		return check, nil
	}
	check.Cause = &ConnectionError{Server: ServerIMAP, Step: pe.Step, ServerText: pe.ServerText, Err: pe.Err}
	switch pe.Step {
	case imapsync.StepDNS:
		check.Field, check.Message = "imap_host", fmt.Sprintf("The host name %s was not found (DNS): check the IMAP server's name.", srv.IMAPHost)
	case imapsync.StepTCP:
		check.Field, check.Message = "imap_port", fmt.Sprintf("Nothing answers at %s (TCP connection refused or timed out): check the host and port, and that a firewall lets Postdesk through.", addr)
	case imapsync.StepTLS:
		if pe.ServerText != "" { // the server refused STARTTLS itself
			check.Field, check.Message = "imap_security", fmt.Sprintf("%s refused STARTTLS (it said: %q): it offers no TLS on this port. Choose TLS if the server has it (usually port 993); Postdesk sends a password without TLS only to this machine.", addr, pe.ServerText)
			break
		}
		check.Field, check.Message = "imap_security", fmt.Sprintf("The TLS handshake with %s failed (%v): check the security setting (TLS is usually port 993, STARTTLS port 143) and the server's certificate.", addr, pe.Err)
	case imapsync.StepGreeting:
		check.Field, check.Message = "imap_port", fmt.Sprintf("%s answered, but not as an IMAP server: is this the IMAP port?", addr)
	case imapsync.StepAuth:
		said := pe.ServerText
		if said == "" {
			said = pe.Err.Error()
		}
		if cr.token != nil {
			check.Message = fmt.Sprintf("The IMAP server refused the mailbox's sign-in as %s. It said: %q. Reauthenticate the mailbox (Reauthenticate in Admin → Emails), then test again.", login, said)
		} else {
			check.Field, check.Message = "password", fmt.Sprintf("The server refused the sign-in as %s. It said: %q. Check the user name and password.", login, said)
		}
	case imapsync.StepFolder:
		check.Field = "folders"
		if pe.Folder == srv.MoveTo && !slices.Contains(srv.Folders, pe.Folder) {
			check.Field = "move_to"
		}
		check.Message = fmt.Sprintf("Signed in, but the folder %q was not found on the server", pe.Folder)
		if pe.ServerText != "" {
			check.Message += fmt.Sprintf(" (it said: %q)", pe.ServerText)
		}
		check.Message += "."
	default:
		check.Message = pe.Error()
	}
	return check, nil
}

// probeSMTP is the SMTP check: connect, secure, sign in, QUIT; no email
// is sent. Its sentences follow smtpsend's kinds and stages.
func (a *Admin) probeSMTP(ctx context.Context, spec MailboxSpec, srv store.MailboxServer, login string, cr credentials) ConnectionCheck {
	addr := net.JoinHostPort(srv.SMTPHost, strconv.Itoa(srv.SMTPPort))
	check := ConnectionCheck{Server: ServerSMTP, Addr: addr}
	cfg := smtpsend.Config{Addr: addr, Security: smtpsend.Security(srv.SMTPSecurity), TLSConfig: a.ProbeTLS, Resolver: a.ProbeResolver,
		Username: login, Auth: smtpsend.AuthMethod(srv.AuthMethod), Password: cr.password, Token: cr.tokenFor(srv.SMTPHost),
		CommandTimeout: probeTimeout / 2}
	conn, err := smtpsend.Dial(ctx, cfg)
	if err == nil {
		conn.Close()
		check.OK = true
		check.Message = fmt.Sprintf("Signed in to %s (%s) as %s; no email was sent.", addr, securityWords(srv.SMTPSecurity), login)
		return check
	}
	var se *smtpsend.Error
	if !errors.As(err, &se) {
		se = &smtpsend.Error{Kind: smtpsend.KindTemporary, Stage: smtpsend.StageConnect, Err: err}
	}
	said := smtpWords(se)
	check.Cause = &ConnectionError{Server: ServerSMTP, SMTPStage: se.Stage, SMTPKind: se.Kind, Err: se}
	if se.Code != 0 {
		check.Cause.ServerText = said
	}
	check.Field, check.Message = smtpAdvice(se, spec.Auth == "password", addr, srv, login, said)
	return check
}

// smtpAdvice is the field to fix and the sentence of a failed SMTP check,
// decided by the failure's kind and stage (never by the server's words).
func smtpAdvice(se *smtpsend.Error, password bool, addr string, srv store.MailboxServer, login, said string) (field, msg string) {
	switch se.Kind {
	case smtpsend.KindAuthDisabled:
		return "", fmt.Sprintf("SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, "+
			"Users → mailbox → Mail → Manage email apps, then test again. The server said: %q.", said)
	case smtpsend.KindAuthFailed:
		if password {
			return "password", fmt.Sprintf("The SMTP server refused the sign-in as %s. It said: %q. Check the user name and password (some servers want an app password for SMTP).", login, said)
		}
		return "", fmt.Sprintf("The SMTP server refused the mailbox's sign-in as %s. It said: %q. Reauthenticate the mailbox (Reauthenticate in Admin → Emails), then test again.", login, said)
	case smtpsend.KindConfig:
		switch se.Stage {
		case smtpsend.StageConnect:
			return "smtp_host", fmt.Sprintf("The SMTP server %s cannot be reached as set (%v): check the SMTP server's name.", srv.SMTPHost, se.Err)
		case smtpsend.StageTLS:
			return "smtp_security", fmt.Sprintf("Securing the connection to %s failed (%v): check the security setting (STARTTLS is usually port 587, TLS port 465) and the server's certificate.", addr, se.Err)
		case smtpsend.StageAuth:
			return "smtp_port", fmt.Sprintf("%s does not offer sign-in with %s: check the port and security (mail servers take signed-in mail on 587 with STARTTLS or 465 with TLS, often only after TLS).",
				addr, strings.ToUpper(srv.AuthMethod))
		}
		return "smtp_host", fmt.Sprintf("The SMTP settings cannot work: %v.", se.Err)
	case smtpsend.KindThrottled:
		return "", fmt.Sprintf("The SMTP server asks Postdesk to slow down (it said %q): test again in a few minutes.", said)
	}
	var op *net.OpError
	switch {
	case se.Stage == smtpsend.StageConnect && se.Code == 0 && errors.As(se.Err, &op) && op.Op == "dial":
		return "smtp_port", fmt.Sprintf("Nothing answers at %s (TCP connection refused or timed out): check the host and port (587 for STARTTLS, 465 for TLS), and that a firewall lets Postdesk through.", addr)
	case se.Stage == smtpsend.StageConnect && se.Code == 0:
		return "smtp_port", fmt.Sprintf("%s answered, but not as an SMTP server (%v): is this the SMTP port?", addr, se.Err)
	case se.Stage == smtpsend.StageAuth && se.Code == 0:
		return "", fmt.Sprintf("The sign-in to the SMTP server could not start: %v.", se.Err)
	case se.Kind == smtpsend.KindTemporary:
		return "", fmt.Sprintf("The SMTP server could not take the sign-in right now (it said %q): test again in a few minutes.", said)
	}
	return "", fmt.Sprintf("The SMTP server refused (it said %q).", said)
}

// smtpWords is what the server said ("535 5.7.139 Authentication
// unsuccessful"), or the error without a reply.
func smtpWords(se *smtpsend.Error) string {
	if se.Code == 0 {
		if se.Err != nil {
			return se.Err.Error()
		}
		return se.Kind.String()
	}
	w := strconv.Itoa(se.Code)
	if se.Enhanced != "" {
		w += " " + se.Enhanced
	}
	if se.Message != "" {
		w += " " + se.Message
	}
	return w
}

// securityWords names a security setting for people.
func securityWords(s string) string {
	switch s {
	case "tls":
		return "TLS"
	case "starttls":
		return "STARTTLS"
	}
	return "no TLS"
}
