package demo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/sasl"
)

// tokenFor introspects "tok:<address>" as address's live token, the way the
// stand-in answers for its accounts; anything else is inactive.
func tokenFor(_ context.Context, token string) (bool, string, error) {
	if a, ok := strings.CutPrefix(token, "tok:"); ok {
		return true, a, nil
	}
	return false, "", nil
}

type delivery struct {
	to  string
	raw []byte
}

// startSMTP runs both sides of a mail server with support@ and billing@,
// and records OnDelivered calls.
func startSMTP(t *testing.T, logs *logtest.Buffer) (s *MailServer, imapAddr, smtpAddr string, delivered func() []delivery) {
	t.Helper()
	s = NewMailServer(tokenFor, slog.New(slog.NewTextHandler(logs, nil)))
	for _, a := range []string{"support@acme.example", "billing@acme.example"} {
		if err := s.AddMailbox(a); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []delivery
	s.OnDelivered = func(to string, raw []byte) {
		mu.Lock()
		got = append(got, delivery{to, raw})
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var done []chan error
	for _, serve := range []func(context.Context, net.Listener) error{s.Serve, s.ServeSMTP} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if imapAddr == "" {
			imapAddr = ln.Addr().String()
		} else {
			smtpAddr = ln.Addr().String()
		}
		d := make(chan error, 1)
		go func() { d <- serve(ctx, ln) }()
		done = append(done, d)
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range done {
			if err := <-d; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	})
	return s, imapAddr, smtpAddr, func() []delivery {
		mu.Lock()
		defer mu.Unlock()
		return append([]delivery(nil), got...)
	}
}

func dialSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("postdesk.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantSMTPError fails unless err is an SMTP reply with code and enhanced code.
func wantSMTPError(t *testing.T, what string, err error, code int, enh smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != enh {
		t.Errorf("%s: err = %v, want %d %v", what, err, code, enh)
	}
}

var saslClients = map[string]func(user, token string) gosasl.Client{
	mechXOAuth2: func(u, tok string) gosasl.Client { return sasl.NewXOAuth2Client(u, tok) },
	mechOAuthBearer: func(u, tok string) gosasl.Client {
		return sasl.NewOAuthBearerClient(u, tok, "127.0.0.1", 587)
	},
}

func TestSMTPAuthAndSendAs(t *testing.T) {
	t.Parallel()
	_, _, addr, delivered := startSMTP(t, &logtest.Buffer{})
	for mech, newClient := range saslClients {
		t.Run(mech, func(t *testing.T) {
			c := dialSMTP(t, addr)
			if !c.SupportsAuth(mech) || c.SupportsAuth("PLAIN") {
				t.Errorf("AUTH mechanisms: %s %v, PLAIN %v", mech, c.SupportsAuth(mech), c.SupportsAuth("PLAIN"))
			}
			wantSMTPError(t, "MAIL before AUTH", c.Mail("support@acme.example", nil), 530, smtp.EnhancedCode{5, 7, 57})
			for _, bad := range []struct{ user, token string }{
				{"support@acme.example", "revoked"},
				{"support@acme.example", "tok:billing@acme.example"},   // someone else's token
				{"jane@customer.example", "tok:jane@customer.example"}, // live, but no mailbox here
			} {
				cl := newClient(bad.user, bad.token)
				wantSMTPError(t, "AUTH "+bad.token, c.Auth(cl), 535, smtp.EnhancedCode{5, 7, 3})
				if mech == mechOAuthBearer {
					if f := sasl.FailureOf(cl); f == nil || f.Status != "401" {
						t.Errorf("OAUTHBEARER failure challenge = %+v", f)
					}
				}
			}
			if err := c.Auth(newClient("support@acme.example", "tok:support@acme.example")); err != nil {
				t.Fatalf("good token: %v", err)
			}
			wantSMTPError(t, "MAIL FROM billing@", c.Mail("billing@acme.example", nil), 553, smtp.EnhancedCode{5, 7, 60})
			wantSMTPError(t, "MAIL FROM <>", c.Mail("", nil), 553, smtp.EnhancedCode{5, 7, 60})
			if err := c.Mail("Support@Acme.example", nil); err != nil {
				t.Fatalf("MAIL FROM own address: %v", err)
			}
			wantSMTPError(t, "RCPT bad", c.Rcpt("jane@x..example", nil), 501, smtp.EnhancedCode{5, 1, 3})
		})
	}
	if d := delivered(); len(d) != 0 {
		t.Errorf("delivered %d messages without DATA", len(d))
	}
}

func TestSMTPDeliversToInboxAndSent(t *testing.T) {
	t.Parallel()
	logs := &logtest.Buffer{}
	s, imapAddr, smtpAddr, delivered := startSMTP(t, logs)
	c := dialSMTP(t, smtpAddr)
	if err := c.Auth(sasl.NewXOAuth2Client("support@acme.example", "tok:support@acme.example")); err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	for i, subject := range []string{"Printer on fire", "Überfällige Rechnung"} {
		raw, err := mailmsg.ComposeReply(mailmsg.Reply{
			From:      mailmsg.OutAddress{Name: "Acme Support", Address: "support@acme.example"},
			To:        []mailmsg.OutAddress{{Name: "Jane Cooper", Address: "jane.cooper@customer.example"}},
			Cc:        []mailmsg.OutAddress{{Address: "boss@customer.example"}},
			Subject:   subject,
			TicketID:  int64(i + 1),
			MessageID: mailmsg.NewMessageID("acme.example"),
			InReplyTo: "question@customer.example",
			Text:      "We are on it.",
		})
		if err != nil {
			t.Fatal(err)
		}
		// One connection for both, as Postdesk's sender reuses it.
		if err := c.SendMail("support@acme.example", []string{"jane.cooper@customer.example", "Boss@Customer.example"}, bytes.NewReader(raw)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		sent = append(sent, raw)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	d := delivered()
	if len(d) != 4 || d[0].to != "jane.cooper@customer.example" || d[1].to != "boss@customer.example" || !bytes.Equal(d[3].raw, sent[1]) {
		t.Fatalf("OnDelivered calls: %d %+v", len(d), d)
	}
	for _, a := range []string{"jane.cooper@customer.example", "boss@customer.example"} {
		if got := s.Messages(a, "INBOX"); len(got) != 2 || !bytes.Equal(got[0], sent[0]) || !bytes.Equal(got[1], sent[1]) {
			t.Errorf("%s INBOX: %d messages", a, len(got))
		}
	}
	if got := s.Messages("support@acme.example", SentFolder); len(got) != 2 || !bytes.Equal(got[1], sent[1]) {
		t.Errorf("support@ Sent: %d messages", len(got))
	}
	if got := s.Messages("support@acme.example", "INBOX"); len(got) != 0 {
		t.Errorf("support@ INBOX: %d messages", len(got))
	}
	for _, want := range []string{
		`msg="demo: mail delivered" to=jane.cooper@customer.example from=support@acme.example subject="Re: Printer on fire [#1]"`,
		`msg="demo: mail delivered" to=boss@customer.example from=support@acme.example subject="Re: Überfällige Rechnung [#2]"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), "We are on it") || strings.Contains(logs.String(), "tok:") {
		t.Errorf("a body or token in the log:\n%s", logs)
	}

	// The IMAP side: the customer reads the message, byte for byte, and
	// the sender's copy in Sent is already seen.
	inbox := fetchAll(t, imapAddr, "jane.cooper@customer.example", "INBOX")
	if len(inbox) != 2 || !bytes.Equal(inbox[0].body, sent[0]) || !bytes.Equal(inbox[1].body, sent[1]) {
		t.Errorf("jane's INBOX over IMAP: %d messages", len(inbox))
	}
	sentBox := fetchAll(t, imapAddr, "support@acme.example", SentFolder)
	if len(sentBox) != 2 || !bytes.Equal(sentBox[0].body, sent[0]) || !sentBox[0].seen {
		t.Errorf("support's Sent over IMAP: %+v", sentBox)
	}
}

type fetched struct {
	body []byte
	seen bool
}

// fetchAll signs in as address over IMAP and reads every message of folder.
func fetchAll(t *testing.T, addr, address, folder string) []fetched {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewXOAuth2Client(address, "tok:"+address)); err != nil {
		t.Fatalf("IMAP sign-in as %s: %v", address, err)
	}
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []fetched
	for _, m := range msgs {
		f := fetched{body: m.FindBodySection(section)}
		for _, fl := range m.Flags {
			f.seen = f.seen || fl == imap.FlagSeen
		}
		out = append(out, f)
	}
	return out
}

func TestSMTPServeRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip(err)
	}
	s := NewMailServer(tokenFor, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.ServeSMTP(ctx, ln); err == nil {
		t.Fatal("ServeSMTP on 0.0.0.0 did not refuse")
	}
}
