package desk_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/mailtest"
	"github.com/postdesk/postdesk/internal/smtpsend"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const (
	probeUser = "help@corp.example"
	probePass = "s3cret"
)

// Test connection against the real Dovecot and Postfix of
// internal/mailtest: IMAP over TLS, then SMTP submission with STARTTLS
// and AUTH (no email sent); each failure in its own words, by smtpsend's
// kind, beside the field to fix.
func TestConnectionSMTP(t *testing.T) {
	t.Parallel()
	stack := mailtest.Start(t, mailtest.Options{Postfix: true, TLS: true, PasswordUsers: map[string]string{probeUser: probePass}})
	db := storetest.Open(t, "sqlite")
	admin, _ := newAdmin(t, db)
	admin.ProbeTLS = stack.TLSConfig()
	ctx := context.Background()
	imapHost, imapPort := hostPort(t, stack.IMAPSAddr)
	_, smtpPort := hostPort(t, stack.SubmissionAddr)
	spec := func(change func(*desk.MailboxSpec)) desk.MailboxSpec {
		s := desk.MailboxSpec{Address: probeUser, Auth: "password", Password: probePass, IMAPHost: imapHost, IMAPPort: imapPort,
			IMAPSecurity: "tls", SMTPHost: "127.0.0.1", SMTPPort: smtpPort, SMTPSecurity: "starttls"}
		if change != nil {
			change(&s)
		}
		return s
	}

	rep, err := admin.TestConnection(ctx, spec(nil))
	if err != nil || !rep.OK() || len(rep.Checks) != 2 {
		t.Fatalf("the right settings: %+v, %v", rep, err)
	}
	if c := rep.Checks[1]; c.Server != desk.ServerSMTP || c.Addr != stack.SubmissionAddr ||
		c.Message != "Signed in to "+stack.SubmissionAddr+" (STARTTLS) as "+probeUser+"; no email was sent." {
		t.Errorf("SMTP check = %+v", c)
	}
	if rep, err := admin.TestConnection(ctx, spec(func(s *desk.MailboxSpec) { s.SMTPHost = "" })); err != nil || len(rep.Checks) != 1 {
		t.Errorf("without SMTP settings only IMAP is tested: %+v, %v", rep, err)
	}

	// A wrong password fails both, each beside the password.
	rep, err = admin.TestConnection(ctx, spec(func(s *desk.MailboxSpec) { s.Password = "wrong" }))
	var v *desk.ValidationError
	if !errors.As(err, &v) || v.Field != "password" || len(rep.Checks) != 2 || rep.Checks[0].OK || rep.Checks[1].OK {
		t.Fatalf("a wrong password: %+v, %v", rep, err)
	}
	if c := rep.Checks[1]; c.Field != "password" || c.Cause.SMTPKind != smtpsend.KindAuthFailed || c.Cause.SMTPStage != smtpsend.StageAuth ||
		!strings.HasPrefix(c.Message, "The SMTP server refused the sign-in as "+probeUser+". It said: \"535 5.7.8 ") {
		t.Errorf("SMTP with a wrong password = %+v (%+v)", c, c.Cause)
	}

	closed := closedPort(t)
	for _, tc := range []struct {
		name   string
		change func(*desk.MailboxSpec)
		field  string
		kind   smtpsend.Kind
		words  string
	}{
		{"nothing listens", func(s *desk.MailboxSpec) { s.SMTPPort = closed }, "smtp_port", smtpsend.KindTemporary,
			"Nothing answers at 127.0.0.1:" + strconv.Itoa(closed)},
		{"the IMAP port", func(s *desk.MailboxSpec) { s.SMTPPort, s.SMTPSecurity = imapPort, "tls" }, "smtp_port", smtpsend.KindTemporary,
			"answered, but not as an SMTP server"},
		{"TLS on the STARTTLS port", func(s *desk.MailboxSpec) { s.SMTPSecurity = "tls" }, "smtp_security", smtpsend.KindConfig,
			"Securing the connection to " + stack.SubmissionAddr + " failed"},
		{"unknown host", func(s *desk.MailboxSpec) { s.SMTPHost, s.SMTPSecurity = "smtp.postdesk-test.invalid", "starttls" }, "smtp_host", smtpsend.KindConfig,
			"The SMTP server smtp.postdesk-test.invalid cannot be reached"},
	} {
		rep, err := admin.TestConnection(ctx, spec(tc.change))
		var v *desk.ValidationError
		var ce *desk.ConnectionError
		if !errors.As(err, &v) || !errors.As(err, &ce) || len(rep.Checks) != 2 || !rep.Checks[0].OK {
			t.Errorf("%s: %+v, %v", tc.name, rep, err)
			continue
		}
		if v.Field != tc.field || ce.Server != desk.ServerSMTP || ce.SMTPKind != tc.kind || !strings.Contains(v.Message, tc.words) {
			t.Errorf("%s: field %q, %s kind %s: %s", tc.name, v.Field, ce.Server, ce.SMTPKind, v.Message)
		}
	}

	// Microsoft 365 with SMTP AUTH disabled (535 5.7.139; Postfix never
	// says it): the sentence tells where to enable it.
	m365 := fakeSMTP(t, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")
	rep, err = admin.TestConnection(ctx, spec(func(s *desk.MailboxSpec) { s.SMTPPort, s.SMTPSecurity = m365, "none" }))
	if !errors.As(err, &v) || len(rep.Checks) != 2 {
		t.Fatalf("SMTP AUTH disabled: %+v, %v", rep, err)
	}
	if c := rep.Checks[1]; c.Cause.SMTPKind != smtpsend.KindAuthDisabled || c.Field != "" || !strings.HasPrefix(c.Message,
		"SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP in the Microsoft 365 admin center, Users → mailbox → Mail → Manage email apps") ||
		c.Cause.ServerText != "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant." {
		t.Errorf("SMTP AUTH disabled = %+v (%+v)", c, c.Cause)
	}

	// A saved mailbox is tested with its stored password, as edited.
	mb, err := admin.AddMailbox(ctx, spec(nil))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := admin.Spec(ctx, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := admin.TestMailbox(ctx, mb.ID, saved); err != nil || !rep.OK() || len(rep.Checks) != 2 {
		t.Errorf("the saved mailbox: %+v, %v", rep, err)
	}
	saved.SMTPPort = closed
	if rep, err := admin.TestMailbox(ctx, mb.ID, saved); !errors.As(err, &v) || v.Field != "smtp_port" || rep.OK() {
		t.Errorf("the saved mailbox with another port: %+v, %v", rep, err)
	}
	if srv, _ := db.MailboxServer(ctx, mb.ID); srv.SMTPPort != smtpPort {
		t.Errorf("a test saved the port: %d", srv.SMTPPort)
	}
	ms, err := admin.AddMailbox(ctx, desk.MailboxSpec{Address: "support@corp.example", Auth: "microsoft"})
	if err != nil {
		t.Fatal(err)
	}
	msSpec, _ := admin.Spec(ctx, ms.ID)
	if _, err := admin.TestMailbox(ctx, ms.ID, msSpec); !errors.As(err, &v) || v.Field != "auth" {
		t.Errorf("an OAuth mailbox without an OAuth service: %v", err)
	}
	if _, err := admin.TestMailbox(ctx, 9999, saved); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a missing mailbox: %v", err)
	}
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// fakeSMTP is an SMTP server on loopback that offers AUTH PLAIN and
// answers every AUTH with reply (a refusal Postfix cannot give).
func fakeSMTP(t *testing.T, reply string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				c.Write([]byte("220 outlook.test Microsoft ESMTP MAIL Service ready\r\n"))
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
					case "EHLO":
						c.Write([]byte("250-outlook.test Hello\r\n250-SIZE 157286400\r\n250-AUTH LOGIN PLAIN XOAUTH2\r\n250 8BITMIME\r\n"))
					case "AUTH":
						c.Write([]byte(reply + "\r\n"))
					case "QUIT":
						c.Write([]byte("221 2.0.0 Bye\r\n"))
						return
					default:
						c.Write([]byte("250 OK\r\n"))
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
