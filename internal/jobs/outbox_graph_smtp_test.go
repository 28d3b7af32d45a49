package jobs_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// startAuthDisabledSMTP runs an in-process SMTP server that answers every
// AUTH as Microsoft 365 does where SMTP AUTH is off (535 5.7.139; the test
// Postfix cannot say it), and returns its address and how many messages
// it accepted.
func startAuthDisabledSMTP(t *testing.T) (string, func() int) {
	t.Helper()
	var accepted atomic.Int64
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &authDisabledSession{accepted: &accepted}, nil
	}))
	srv.Domain = "smtp.office365.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), func() int { return int(accepted.Load()) }
}

var errAuthDisabled = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139},
	Message: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}

type authDisabledSession struct{ accepted *atomic.Int64 }

func (s *authDisabledSession) AuthMechanisms() []string { return []string{"XOAUTH2", "PLAIN", "LOGIN"} }

func (s *authDisabledSession) Auth(string) (gosasl.Server, error) { return refuseAll{}, nil }

func (s *authDisabledSession) Mail(string, *smtp.MailOptions) error {
	return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 57}, Message: "Client not authenticated to send mail"}
}
func (s *authDisabledSession) Rcpt(string, *smtp.RcptOptions) error {
	return errors.New("not authenticated")
}
func (s *authDisabledSession) Data(io.Reader) error {
	s.accepted.Add(1)
	return nil
}
func (s *authDisabledSession) Reset()        {}
func (s *authDisabledSession) Logout() error { return nil }

type refuseAll struct{}

func (refuseAll) Next([]byte) ([]byte, bool, error) { return nil, true, errAuthDisabled }
