package mailtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"
)

// config is what the configuration templates are rendered from. Ports that a
// stack does not use are 0 (Dovecot then creates no listener).
type config struct {
	Root             string // absolute instance folder
	Instance         string // Dovecot instance_name, unique per stack
	IntrospectionURL string
	TLS              bool
	SendAsCheck      bool

	// IMAPProcessLimit and IMAPClientLimit (0: one session per process)
	// bound Dovecot's imap service; ClientLimit (0: Dovecot's defaults)
	// raises default_client_limit and anvil's for thousands of sessions.
	IMAPProcessLimit, IMAPClientLimit, ClientLimit int

	IMAPPort, IMAPSPort, LMTPPort, DovecotSubmissionPort int
	SMTPPort, SubmissionPort, SubmissionsPort            int
}

// dovecotConf is MAILSTACK.md's dovecot.conf with configurable ports, the
// TLS variant, and one addition: a master passdb (etc/master-users) through
// which the stack's helpers log in as any user with SASL PLAIN
// authzid=<user> (RFC 4616 2) without knowing the user's token or password.
// It only applies to logins that ask for an authorization identity.
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# Sandboxed Dovecot 2.3 for tests (internal/mailtest). Self-contained: does not include /etc/dovecot.
instance_name = {{.Instance}}
base_dir = {{.Root}}/run/dovecot
state_dir = {{.Root}}/state/dovecot
log_path = {{.Root}}/log/dovecot.log
info_log_path = {{.Root}}/log/dovecot.log
debug_log_path = {{.Root}}/log/dovecot.log
hostname = mail.example.test
postmaster_address = postmaster@example.test

protocols = imap lmtp submission
listen = 127.0.0.1
{{- if .TLS}}
ssl = yes
ssl_cert = <{{.Root}}/etc/tls/cert.pem
ssl_key = <{{.Root}}/etc/tls/key.pem
ssl_min_protocol = TLSv1.2
{{- else}}
ssl = no
{{- end}}
disable_plaintext_auth = no

default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 8
first_valid_gid = 8

auth_mechanisms = plain login xoauth2 oauthbearer
auth_username_format = %Lu
auth_verbose = yes
auth_debug = no
auth_failure_delay = 0
auth_cache_size = 0

# 0) the stack's own master user, only for logins with a SASL authorization identity
#    (PLAIN authzid=<user>, authcid=<master>): the test helpers read and load any mailbox.
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {{.Root}}/etc/master-users
}
# 1) password users: "user@domain:{PLAIN}secret" lines. Unknown/failed -> try next passdb.
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {{.Root}}/etc/users
  result_failure = continue
  result_internalfail = continue
}
# 2) OAuth2 bearer tokens (XOAUTH2 / OAUTHBEARER) checked by the IdP's introspection endpoint.
#    Dovecot 2.3 has no per-passdb "mechanisms" filter (2.4 has), so a PLAIN password that failed
#    the passwd-file is also offered here as a token (harmless: IdP says active=false).
passdb {
  driver = oauth2
  args = {{.Root}}/etc/dovecot/dovecot-oauth2.conf.ext
}
# Any address exists (LMTP accepts every recipient); Maildir created on first delivery/login.
userdb {
  driver = static
  args = uid=8 gid=8 home={{.Root}}/mail/%Ld/%Ln allow_all_users=yes
}

mail_location = maildir:~/Maildir
mail_fsync = never
maildir_very_dirty_syncs = yes
mail_max_userip_connections = 1000

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
}

service imap-login {
{{- if .IMAPClientLimit}}
  # high-performance login: long-lived login processes, many clients each
  service_count = 0
  process_min_avail = 2
{{- end}}
  inet_listener imap {
    address = 127.0.0.1
    port = {{.IMAPPort}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.IMAPSPort}}
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    address = 127.0.0.1
    port = {{.DovecotSubmissionPort}}
  }
  inet_listener submissions {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
}
service auth {
  # Postfix smtpd_sasl_type = dovecot connects here
  unix_listener auth-postfix {
    mode = 0666
  }
}
service imap {
  process_limit = {{.IMAPProcessLimit}}
{{- if .IMAPClientLimit}}
  # many sessions per process (all users share uid 8)
  client_limit = {{.IMAPClientLimit}}
  service_count = 0
{{- end}}
}
{{- if .ClientLimit}}
default_client_limit = {{.ClientLimit}}
{{- end}}
# No auth penalty for the many deliberate failures from 127.0.0.1 (see MAILSTACK.md).
service anvil {
{{- if .ClientLimit}}
  client_limit = {{.ClientLimit}}
{{- end}}
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

protocol lmtp {
  lmtp_add_received_header = yes
}
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +

# Dovecot submission service relays to the Postfix instance (unauthenticated port, mynetworks).
submission_relay_host = 127.0.0.1
submission_relay_port = {{.SMTPPort}}
submission_relay_trusted = no
submission_max_mail_size = 50M
`))

var oauth2Conf = template.Must(template.New("dovecot-oauth2.conf.ext").Parse(`# Dovecot 2.3 oauth2 passdb: validate bearer tokens via RFC 7662 introspection
introspection_mode = post
introspection_url = {{.IntrospectionURL}}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
`))

var postfixMain = template.Must(template.New("main.cf").Parse(`# Sandboxed Postfix instance (internal/mailtest): postfix -c {{.Root}}/etc/postfix start|stop
compatibility_level = 3.6
queue_directory = {{.Root}}/postfix/spool
data_directory = {{.Root}}/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
# log to a file instead of syslog (needs the postlog service in master.cf)
maillog_file = {{.Root}}/log/postfix.log
maillog_file_prefixes = {{.Root}}/log
syslog_name = postfix-mailstack

myhostname = mail.example.test
mydomain = example.test
myorigin = $mydomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
smtpd_banner = $myhostname ESMTP mailstack
# No DNS in CI
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# Everything (any domain) goes to Dovecot LMTP; nothing ever leaves the
# machine. Mail to BounceDomain is accepted, then returned undelivered
# with a delivery report (Postfix's error transport), as a recipient's
# server that accepts first and bounces later does.
transport_maps = regexp:{{.Root}}/etc/postfix/transport.regexp, static:lmtp:inet:127.0.0.1:{{.LMTPPort}}
smtpd_reject_unlisted_recipient = no
default_transport = lmtp:inet:127.0.0.1:{{.LMTPPort}}
relay_transport = lmtp:inet:127.0.0.1:{{.LMTPPort}}
lmtp_destination_recipient_limit = 50
# Fast failure/retry for tests
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 30s
maximal_queue_lifetime = 5m
bounce_queue_lifetime = 5m
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
message_size_limit = 52428800
smtputf8_enable = no

# SASL through the sandboxed Dovecot's auth socket (only enabled on the submission ports in master.cf)
smtpd_sasl_type = dovecot
smtpd_sasl_path = {{.Root}}/run/dovecot/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = no
smtpd_sasl_authenticated_header = yes
{{- if .TLS}}
smtpd_tls_security_level = may
smtpd_tls_cert_file = {{.Root}}/etc/tls/cert.pem
smtpd_tls_key_file = {{.Root}}/etc/tls/key.pem
{{- else}}
smtpd_tls_security_level = none
{{- end}}
`))

var postfixMaster = template.Must(template.New("master.cf").Parse(`# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{{.SMTPPort}} inet n - n - - smtpd
127.0.0.1:{{.SubmissionPort}} inet n - n - - smtpd
  -o syslog_name=postfix-mailstack/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions={{if .SendAsCheck}}reject_sender_login_mismatch{{else}}permit{{end}}
  -o smtpd_sender_login_maps=regexp:{{.Root}}/etc/postfix/sender_login.regexp
{{- if .TLS}}
127.0.0.1:{{.SubmissionsPort}} inet n - n - - smtpd
  -o syslog_name=postfix-mailstack/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions={{if .SendAsCheck}}reject_sender_login_mismatch{{else}}permit{{end}}
  -o smtpd_sender_login_maps=regexp:{{.Root}}/etc/postfix/sender_login.regexp
{{- end}}

pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
`))

// BounceDomain is a domain the stack's Postfix accepts mail for and then
// returns undelivered to its sender, with an RFC 3464 delivery report
// ("5.1.1 mailbox unavailable").
const BounceDomain = "bounces.test"

const transportRegexp = "/@bounces\\.test$/ error:5.1.1 mailbox unavailable\n"

// senderLoginRegexp maps every sender address to itself as the only login
// allowed to use it (Postfix smtpd_sender_login_maps).
const senderLoginRegexp = "/^(.*)$/ ${1}\n"

// writeConfig renders every configuration file of the instance. Files are
// 0644: Dovecot's unprivileged auth process reads the users files.
//
// Their mtime is set a minute back: Postfix does not load a table or main.cf
// that changed within the current second (it could be half-written) but
// re-reads it every 300 ms until it is older, which made every first start of
// a Postfix instance take 2 s instead of 0.2 s.
func writeConfig(c config) error {
	files := []struct {
		path string
		tmpl *template.Template
	}{
		{"etc/dovecot/dovecot.conf", dovecotConf},
		{"etc/dovecot/dovecot-oauth2.conf.ext", oauth2Conf},
		{"etc/postfix/main.cf", postfixMain},
		{"etc/postfix/master.cf", postfixMaster},
	}
	for _, f := range files {
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, c); err != nil {
			return fmt.Errorf("render %s: %w", f.path, err)
		}
		if err := os.WriteFile(filepath.Join(c.Root, f.path), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	for name, text := range map[string]string{"sender_login.regexp": senderLoginRegexp, "transport.regexp": transportRegexp} {
		if err := os.WriteFile(filepath.Join(c.Root, "etc/postfix", name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	past := time.Now().Add(-time.Minute)
	for _, f := range []string{"etc/postfix/main.cf", "etc/postfix/master.cf", "etc/postfix/sender_login.regexp", "etc/postfix/transport.regexp"} {
		if err := os.Chtimes(filepath.Join(c.Root, f), past, past); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
	}
	return nil
}
