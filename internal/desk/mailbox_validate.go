package desk

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/postdesk/postdesk/internal/mailconn"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// MaxFolderBytes bounds a folder name. IMAP sets no limit (RFC 9051 5.1);
// servers do (Dovecot: 255 bytes per level), and a longer name is a mistake.
const MaxFolderBytes = 255

// resolve fills defaults and validates a spec into server settings: the
// one place that decides what a mailbox may be set to, for every surface.
// passwordStored says that a password mailbox already has a sealed
// password, which an empty spec.Password keeps.
//
// Every field's mistake is reported at once (one per field, joined: see
// FieldErrors), so that a form shows them together; errors.As finds the
// first. Only a sign-in kind that is missing or not configured stops the
// checks early, since the servers' defaults depend on it.
//
// An OAuth mailbox's IMAP and SMTP hosts must be trusted by its provider
// (oauth.Provider.AllowsMailHost: the provider's own servers, or
// POSTDESK_OAUTH_ALLOWED_HOSTS): its access token is a bearer credential
// and goes nowhere else. Plaintext (security none) is only allowed to this
// machine, for IMAP and SMTP alike.
func (a *Admin) resolve(spec *MailboxSpec, passwordStored bool) (store.MailboxServer, error) {
	var bad fieldErrors
	spec.Address = strings.ToLower(strings.TrimSpace(spec.Address))
	if at := strings.LastIndex(spec.Address, "@"); at < 1 || at == len(spec.Address)-1 || strings.ContainsAny(spec.Address, " <>,;") ||
		strings.IndexFunc(spec.Address, unicode.IsControl) >= 0 {
		bad.add(invalid("address", "%q is not an email address", spec.Address))
	}
	bad.add(checkSignature(spec.Signature))
	bad.add(checkAck(spec))
	srv := store.MailboxServer{IMAPHost: oauth.NormalizeHost(spec.IMAPHost), IMAPPort: spec.IMAPPort, IMAPSecurity: spec.IMAPSecurity,
		SMTPHost: oauth.NormalizeHost(spec.SMTPHost), SMTPPort: spec.SMTPPort, SMTPSecurity: spec.SMTPSecurity, AuthMethod: spec.AuthMethod,
		Username: spec.Username, Folders: spec.Folders, AfterProcessing: spec.AfterProcessing, MoveTo: spec.MoveTo,
		InitialDays: 14, MaxAgeDays: 90, Enabled: !spec.Disabled}
	var provider *oauth.Provider
	switch spec.Auth {
	case "":
		bad.add(invalid("auth", "say how the mailbox signs in: an OAuth provider (microsoft, google) or password"))
		return srv, bad.err()
	case "password":
		if spec.Password == "" && !passwordStored {
			bad.add(invalid("password", "a password mailbox needs a password"))
		}
		if a.vault == nil && spec.Password != "" {
			bad.add(invalid("password", "passwords cannot be stored: no secret key is available"))
		}
		if srv.AuthMethod == "" {
			srv.AuthMethod = "plain"
		}
		if srv.AuthMethod != "plain" && srv.AuthMethod != "login" {
			bad.add(invalid("auth_method", "a password mailbox signs in with plain or login, not %q", srv.AuthMethod))
		}
	default:
		p, ok := a.providers(spec.Auth)
		if !ok {
			bad.add(invalid("auth", "sign-in provider %q is not configured (set POSTDESK_%s_CLIENT_ID)", spec.Auth, strings.ToUpper(spec.Auth)))
			return srv, bad.err()
		}
		provider = &p
		if spec.Password != "" {
			bad.add(invalid("password", "an OAuth mailbox has no password: connect it through the provider's sign-in"))
		}
		// The provider's servers fill what the spec leaves out (a port or
		// security given alone is kept, and validated below).
		if srv.IMAPHost == "" {
			srv.IMAPHost = oauth.NormalizeHost(p.IMAPHost)
			srv.IMAPPort = cmp.Or(srv.IMAPPort, p.IMAPPort)
			srv.IMAPSecurity = cmp.Or(srv.IMAPSecurity, "tls")
		}
		if srv.SMTPHost == "" {
			srv.SMTPHost = oauth.NormalizeHost(p.SMTPHost)
			srv.SMTPPort = cmp.Or(srv.SMTPPort, p.SMTPPort)
			srv.SMTPSecurity = cmp.Or(srv.SMTPSecurity, "starttls")
		}
		if srv.AuthMethod == "" {
			srv.AuthMethod = "xoauth2"
		}
		if srv.AuthMethod != "xoauth2" && srv.AuthMethod != "oauthbearer" {
			bad.add(invalid("auth_method", "an OAuth mailbox signs in with xoauth2 or oauthbearer, not %q", srv.AuthMethod))
		}
	}
	if srv.IMAPHost == "" {
		bad.add(invalid("imap_host", "the IMAP server's host name is missing"))
	} else {
		bad.add(checkHost("imap_host", "IMAP", srv.IMAPHost))
	}
	if srv.SMTPHost != "" {
		bad.add(checkHost("smtp_host", "SMTP", srv.SMTPHost))
	}
	if srv.IMAPSecurity == "" {
		srv.IMAPSecurity = "tls"
	}
	if srv.IMAPPort == 0 {
		srv.IMAPPort = map[string]int{"tls": 993, "starttls": 143, "none": 143}[srv.IMAPSecurity]
	}
	if srv.SMTPHost != "" {
		srv.SMTPSecurity = cmp.Or(srv.SMTPSecurity, "starttls")
		if srv.SMTPPort == 0 {
			srv.SMTPPort = map[string]int{"tls": 465, "starttls": 587, "none": 587}[srv.SMTPSecurity]
		}
	}
	// Microsoft 365 and Gmail save submitted mail to Sent themselves;
	// other servers get a copy appended, unless the admin said otherwise.
	srv.SaveSent = provider == nil || (provider.Kind != oauth.KindMicrosoft && provider.Kind != oauth.KindGoogle)
	if spec.SaveSent != nil {
		srv.SaveSent = *spec.SaveSent
	}
	if spec.AckEnabled && srv.SMTPHost == "" {
		bad.add(invalid("ack_enabled", "acknowledgements are sent by email: give the mailbox's SMTP server first"))
	}
	for _, c := range []struct{ field, kind, sec, host string }{
		{"imap_security", "IMAP", srv.IMAPSecurity, srv.IMAPHost},
		{"smtp_security", "SMTP", srv.SMTPSecurity, srv.SMTPHost},
	} {
		switch {
		case c.sec != "" && c.sec != "tls" && c.sec != "starttls" && c.sec != "none":
			bad.add(invalid(c.field, "security must be tls, starttls or none, not %q", c.sec))
		// Without TLS, passwords and tokens cross the network in the clear.
		case c.sec == "none" && c.host != "" && !mailconn.IsLoopback(c.host):
			bad.add(invalid(c.field, "%s without TLS is only allowed to this machine (127.0.0.1), not %s", c.kind, c.host))
		}
	}
	if srv.IMAPPort < 1 || srv.IMAPPort > 65535 {
		bad.add(invalid("imap_port", "ports must be between 1 and 65535"))
	}
	if srv.SMTPPort < 0 || srv.SMTPPort > 65535 {
		bad.add(invalid("smtp_port", "ports must be between 1 and 65535"))
	}
	if provider != nil {
		for _, c := range []struct{ field, kind, host string }{{"imap_host", "IMAP", srv.IMAPHost}, {"smtp_host", "SMTP", srv.SMTPHost}} {
			if c.host != "" && !provider.AllowsMailHost(c.host) {
				bad.add(invalid(c.field, "%s is not a mail server of %s (%s): an OAuth mailbox's tokens are only sent to its provider's servers; "+
					"a server administrator can trust another host with POSTDESK_OAUTH_ALLOWED_HOSTS", c.host, provider.Name, strings.Join(provider.TrustedHosts(), ", ")))
			}
		}
	}
	if len(srv.Folders) == 0 {
		srv.Folders = []string{"INBOX"}
	}
	for _, f := range srv.Folders {
		bad.add(CheckFolder("folders", f))
	}
	switch srv.AfterProcessing {
	case "", "leave", "seen":
	case "move":
		if strings.TrimSpace(srv.MoveTo) == "" {
			bad.add(invalid("move_to", "moving processed mail needs a folder to move it to"))
		} else {
			bad.add(CheckFolder("move_to", srv.MoveTo))
		}
	default:
		bad.add(invalid("after_processing", "after processing must be leave, seen or move, not %q", srv.AfterProcessing))
	}
	if spec.InitialDays != nil {
		if *spec.InitialDays < 0 || *spec.InitialDays > 3650 {
			bad.add(invalid("initial_days", "initial days must be between 0 and 3650"))
		}
		srv.InitialDays = *spec.InitialDays
	}
	if spec.MaxAgeDays != nil {
		if *spec.MaxAgeDays < 1 || *spec.MaxAgeDays > 3650 {
			bad.add(invalid("max_age_days", "the catch-up limit must be between 1 and 3650 days"))
		}
		srv.MaxAgeDays = *spec.MaxAgeDays
	}
	bad.add(checkTransports(spec, provider, &srv))
	return srv, bad.err()
}

// checkTransports validates the transports spec chooses into srv: IMAP
// and SMTP by default; Microsoft Graph only for a provider that has it.
func checkTransports(spec *MailboxSpec, provider *oauth.Provider, srv *store.MailboxServer) error {
	srv.FetchTransport = cmp.Or(spec.FetchTransport, store.TransportIMAP)
	srv.SendTransport = cmp.Or(spec.SendTransport, store.TransportSMTP)
	if srv.FetchTransport != store.TransportIMAP && srv.FetchTransport != store.TransportGraph {
		return invalid("fetch_transport", "mail is fetched over imap or graph, not %q", srv.FetchTransport)
	}
	if srv.SendTransport != store.TransportSMTP && srv.SendTransport != store.TransportGraph {
		return invalid("send_transport", "replies are sent over smtp or graph, not %q", srv.SendTransport)
	}
	if (srv.FetchesWithGraph() || srv.SendsWithGraph()) && (provider == nil || !oauth.SupportsGraph(*provider)) {
		field := "fetch_transport"
		if !srv.FetchesWithGraph() {
			field = "send_transport"
		}
		return invalid(field, "Microsoft Graph is only for mailboxes that sign in with Microsoft 365")
	}
	return nil
}

// CheckFolder returns a *ValidationError about field unless name can be an
// IMAP folder's name: not empty or blank, valid UTF-8, no control
// characters (NUL, CR, LF, ...: they would break the IMAP command, RFC
// 9051 9), at most MaxFolderBytes.
func CheckFolder(field, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalid(field, "a folder name is empty")
	case !utf8.ValidString(name):
		return invalid(field, "folder name %q is not valid UTF-8", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return invalid(field, "folder name %q contains a control character (such as a line break or NUL)", name)
	case len(name) > MaxFolderBytes:
		return invalid(field, "a folder name is longer than %d bytes", MaxFolderBytes)
	}
	return nil
}

// checkHost refuses what cannot be a host name or IP address: a port
// (given separately), a URL, spaces.
func checkHost(field, kind, host string) error {
	if net.ParseIP(host) != nil {
		return nil
	}
	if strings.Contains(host, ":") {
		return invalid(field, "the %s server %q has a port or scheme in its name: give the host alone, and the port separately", kind, host)
	}
	ok := len(host) <= 253
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			ok = false
		}
	}
	if !ok || strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return invalid(field, "%q is not a host name", host)
	}
	return nil
}

// endpoint is where a mailbox's IMAP or SMTP client connects, as people
// read it: "outlook.office365.com:993 (tls)".
func endpoint(host string, port int, security string) string {
	if host == "" {
		return "none"
	}
	return fmt.Sprintf("%s (%s)", net.JoinHostPort(oauth.NormalizeHost(host), fmt.Sprint(port)), security)
}

// checkSignature refuses a signature that is too long or not text.
func checkSignature(sig string) error {
	switch {
	case len(sig) > MaxSignatureBytes:
		return invalid("signature", "the signature is longer than %d KB", MaxSignatureBytes>>10)
	case !utf8.ValidString(sig) || strings.ContainsRune(sig, 0):
		return invalid("signature", "the signature is not text")
	}
	return nil
}

// ackPlaceholders are what an acknowledgement's template may hold between
// {{ and }}.
var ackPlaceholders = []string{"{{ticket}}", "{{subject}}"}

// checkAck normalizes spec's acknowledgement template (line breaks, outer
// blank space; Postdesk's default text itself is stored as "", so that it
// follows the default) and refuses one that is too long, not text, or has
// a placeholder other than {{ticket}} and {{subject}}.
func checkAck(spec *MailboxSpec) error {
	t := strings.TrimSpace(strings.ReplaceAll(spec.AckTemplate, "\r\n", "\n"))
	if t == strings.TrimSpace(DefaultAckTemplate) {
		t = ""
	}
	spec.AckTemplate = t
	return CheckAckTemplate(t)
}

// CheckAckTemplate returns a *ValidationError about "ack_template" unless
// template can be an acknowledgement's: at most MaxAckTemplateBytes of
// text whose only placeholders are {{ticket}} (the ticket's number) and
// {{subject}} (the customer's subject). A mistyped placeholder would
// reach customers as it is, so it is refused.
func CheckAckTemplate(template string) error {
	const known = "use {{ticket}} (the ticket's number) and {{subject}} (the subject of the customer's email)"
	switch {
	case len(template) > MaxAckTemplateBytes:
		return invalid("ack_template", "the acknowledgement is longer than %d KB", MaxAckTemplateBytes>>10)
	case !utf8.ValidString(template) || strings.ContainsRune(template, 0):
		return invalid("ack_template", "the acknowledgement is not text")
	}
	for rest := template; ; {
		open := strings.Index(rest, "{{")
		if open < 0 {
			return nil
		}
		rest = rest[open:]
		end := strings.Index(rest, "}}")
		if next := strings.Index(rest[2:], "{{"); end < 0 || next >= 0 && next+2 < end {
			snippet, _, _ := strings.Cut(rest, "\n")
			if len(snippet) > 24 {
				snippet = strings.ToValidUTF8(snippet[:24], "") + "…"
			}
			return invalid("ack_template", "the placeholder %q is not closed with }}: %s", snippet, known)
		}
		if name := rest[:end+2]; !slices.Contains(ackPlaceholders, name) {
			return invalid("ack_template", "%s is not a placeholder Postdesk knows: %s", name, known)
		}
		rest = rest[end+2:]
	}
}

// Check reports every mistake in spec (see FieldErrors) without saving or
// connecting: a form whose own fields did not parse shows the others'
// mistakes with them. passwordStored is as for an update of a saved
// password mailbox.
func (a *Admin) Check(spec MailboxSpec, passwordStored bool) error {
	_, err := a.resolve(&spec, passwordStored)
	return err
}
