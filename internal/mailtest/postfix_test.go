package mailtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/sasl"
)

// submit sends raw with an authenticated SMTP client (dialled by dial) as
// Postdesk's smtpsend would.
func submit(t *testing.T, dial func() (*smtp.Client, error), auth *sasl.XOAuth2Client, from, to string, raw []byte) error {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("postdesk.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(auth); err != nil {
		return err
	}
	return send(c, from, []string{to}, raw)
}

func wantSMTPCode(t *testing.T, err error, code int) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("got %v, want SMTP %d", err, code)
	}
}

// TestPostfix sends through Postfix's unauthenticated port and its SASL
// submission port, and through Dovecot's submission relaying to Postfix:
// every message ends up readable over IMAP.
func TestPostfix(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Postfix: true, SendAsCheck: true})
	const agent, customer = "agent@example.com", "customer@example.net"
	dialPlain := func(addr string) func() (*smtp.Client, error) {
		return func() (*smtp.Client, error) { return smtp.Dial(addr) }
	}

	t.Run("smtp in", func(t *testing.T) {
		raw := testMessage(customer, "inbound@example.com", "From the internet")
		if err := s.SendSMTP(testCtx(t), customer, []string{"inbound@example.com"}, raw); err != nil {
			t.Fatal(err)
		}
		got, err := s.WaitMessages(testCtx(t), "inbound@example.com", "INBOX", 1)
		if err != nil {
			t.Fatal(err)
		}
		wantSameRaw(t, got, [][]byte{raw})
		if !bytes.Contains(got[0].Raw, []byte("ESMTP")) || !bytes.Contains(got[0].Raw, []byte("mail.example.test")) {
			t.Errorf("no Received header from Postfix:\n%s", got[0].Raw)
		}
	})
	t.Run("submission xoauth2", func(t *testing.T) {
		raw := testMessage(agent, "reply1@example.net", "Re: Printer on fire")
		if err := submit(t, dialPlain(s.SubmissionAddr), sasl.NewXOAuth2Client(agent, mustToken(t, s, agent)), agent, "reply1@example.net", raw); err != nil {
			t.Fatal(err)
		}
		got, err := s.WaitMessages(testCtx(t), "reply1@example.net", "INBOX", 1)
		if err != nil {
			t.Fatal(err)
		}
		wantSameRaw(t, got, [][]byte{raw})
	})
	t.Run("submission refused token", func(t *testing.T) {
		x := sasl.NewXOAuth2Client(agent, "expired-token")
		err := submit(t, dialPlain(s.SubmissionAddr), x, agent, customer, testMessage(agent, customer, "x"))
		wantSMTPCode(t, err, 535)
		if x.Failure() == nil {
			t.Error("no Failure() from the server")
		}
	})
	t.Run("submission send-as check", func(t *testing.T) {
		x := sasl.NewXOAuth2Client(agent, mustToken(t, s, agent))
		err := submit(t, dialPlain(s.SubmissionAddr), x, "ceo@example.com", customer, testMessage("ceo@example.com", customer, "x"))
		wantSMTPCode(t, err, 553)
	})
	t.Run("submission without auth", func(t *testing.T) {
		c, err := smtp.Dial(s.SubmissionAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = send(c, agent, []string{customer}, testMessage(agent, customer, "x"))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code/100 != 5 {
			t.Fatalf("unauthenticated submission: %v, want a 5xx refusal", err)
		}
	})
	t.Run("dovecot submission relays to postfix", func(t *testing.T) {
		raw := testMessage(agent, "reply2@example.net", "Re: Invoice")
		if err := submit(t, dialPlain(s.DovecotSubmissionAddr), sasl.NewXOAuth2Client(agent, mustToken(t, s, agent)), agent, "reply2@example.net", raw); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WaitMessages(testCtx(t), "reply2@example.net", "INBOX", 1); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTLS uses the TLS variant: IMAPS, IMAP STARTTLS, submission with
// STARTTLS and implicit TLS, all verified against Stack.TLSConfig.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{TLS: true, Postfix: true})
	const agent = "agent@example.com"
	imapOpts := &imapclient.Options{TLSConfig: s.TLSConfig()}

	t.Run("imaps xoauth2", func(t *testing.T) {
		c, err := imapLogin(t, s.IMAPSAddr, sasl.NewXOAuth2Client(agent, mustToken(t, s, agent)), imapOpts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("imap starttls", func(t *testing.T) {
		c, err := imapclient.DialStartTLS(s.IMAPAddr, imapOpts)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Authenticate(sasl.NewXOAuth2Client(agent, mustToken(t, s, agent))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		c, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{}})
		if err == nil {
			err = c.WaitGreeting()
			c.Close()
		}
		if err == nil {
			t.Fatal("TLS to the self-signed certificate succeeded without trusting it")
		}
	})
	t.Run("submissions and starttls", func(t *testing.T) {
		dials := map[string]func() (*smtp.Client, error){
			"implicit": func() (*smtp.Client, error) { return smtp.DialTLS(s.SubmissionsAddr, s.TLSConfig()) },
			"starttls": func() (*smtp.Client, error) { return smtp.DialStartTLS(s.SubmissionAddr, s.TLSConfig()) },
		}
		for name, dial := range dials {
			raw := testMessage(agent, "tls-"+name+"@example.net", "over TLS")
			if err := submit(t, dial, sasl.NewXOAuth2Client(agent, mustToken(t, s, agent)), agent, "tls-"+name+"@example.net", raw); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := s.WaitMessages(context.Background(), "tls-"+name+"@example.net", "INBOX", 1)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !bytes.Contains(got[0].Raw, []byte("ESMTPSA")) {
				t.Errorf("%s: no ESMTPSA in Received:\n%s", name, got[0].Raw)
			}
		}
	})
}
