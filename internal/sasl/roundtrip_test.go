package sasl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The round trips run the clients against go-imap's and go-smtp's servers
// with a server-side XOAUTH2/OAUTHBEARER that behaves like Dovecot: a bad
// token gets a JSON failure challenge, and the exchange ends with a failure
// only after the client answered exactly 0x01.

const goodToken = "good-token"

var errAuthFailed = errors.New("authentication failed")

// bearerServer is a server-side XOAUTH2 or OAUTHBEARER mechanism.
type bearerServer struct {
	mech     string
	mu       *sync.Mutex
	received *[][]byte // every client response, in order
	failed   bool
}

func (s *bearerServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	s.mu.Lock()
	*s.received = append(*s.received, bytes.Clone(resp))
	s.mu.Unlock()
	if s.failed {
		if !bytes.Equal(resp, []byte{0x01}) {
			return nil, true, errors.New("bad response to failure challenge")
		}
		return nil, true, errAuthFailed
	}
	if resp == nil { // no SASL-IR: ask for the initial response
		return []byte{}, false, nil
	}
	user, token := parseBearer(s.mech, resp)
	if token == goodToken && user == "agent@example.com" {
		return nil, true, nil
	}
	s.failed = true
	blob, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "mail"})
	return blob, false, nil
}

func parseBearer(mech string, ir []byte) (user, token string) {
	s := string(ir)
	if mech == OAuthBearer {
		parts := strings.SplitN(s, ",", 3)
		if len(parts) != 3 {
			return "", ""
		}
		user = strings.TrimPrefix(parts[1], "a=")
		s = parts[2]
	}
	for _, kv := range strings.Split(s, "\x01") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			user = v
		case "auth":
			token = strings.TrimPrefix(v, "Bearer ")
		}
	}
	return user, token
}

type recorder struct {
	mu       sync.Mutex
	received [][]byte
}

func (r *recorder) server(mech string) (gosasl.Server, bool) {
	switch mech {
	case XOAuth2, OAuthBearer:
		return &bearerServer{mech: mech, mu: &r.mu, received: &r.received}, true
	}
	return nil, false
}

func (r *recorder) responses() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.received...)
}

type imapSession struct {
	imapserver.Session
	rec *recorder
}

func (s *imapSession) AuthenticateMechanisms() []string { return []string{XOAuth2, OAuthBearer} }

func (s *imapSession) Authenticate(mech string) (gosasl.Server, error) {
	srv, ok := s.rec.server(mech)
	if !ok {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unsupported mechanism"}
	}
	return imapServerErr{srv}, nil
}

// imapServerErr turns the mechanism's failure into Dovecot's NO response.
type imapServerErr struct{ gosasl.Server }

func (s imapServerErr) Next(resp []byte) ([]byte, bool, error) {
	c, done, err := s.Server.Next(resp)
	if errors.Is(err, errAuthFailed) {
		err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
	}
	return c, done, err
}

func startIMAP(t *testing.T) (addr string, rec *recorder) {
	t.Helper()
	rec = &recorder{}
	mem := imapmemserver.New()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{Session: mem.NewSession(), rec: rec}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), rec
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

func TestIMAPRoundTrip(t *testing.T) {
	t.Parallel()
	addr, _ := startIMAP(t)
	newClients := map[string]func(token string) gosasl.Client{
		XOAuth2: func(tok string) gosasl.Client { return NewXOAuth2Client("agent@example.com", tok) },
		OAuthBearer: func(tok string) gosasl.Client {
			return NewOAuthBearerClient("agent@example.com", tok, "127.0.0.1", 143)
		},
	}
	for mech, newClient := range newClients {
		t.Run(mech, func(t *testing.T) {
			c, err := imapclient.DialInsecure(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			bad := newClient("expired-token")
			err = c.Authenticate(bad)
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
				t.Fatalf("bad token: err = %v, want NO [AUTHENTICATIONFAILED]", err)
			}
			if f := FailureOf(bad); f == nil || f.Status != "401" || f.Scope != "mail" {
				t.Errorf("failure = %+v", f)
			}

			good := newClient(goodToken)
			if err := c.Authenticate(good); err != nil {
				t.Fatalf("good token: %v", err)
			}
			if FailureOf(good) != nil {
				t.Errorf("failure after success: %v", FailureOf(good))
			}
		})
	}
}

func TestSMTPRoundTrip(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{rec: rec}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = discardLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, mech := range []string{XOAuth2, OAuthBearer} {
		newClient := func(tok string) gosasl.Client {
			if mech == XOAuth2 {
				return NewXOAuth2Client("agent@example.com", tok)
			}
			return NewOAuthBearerClient("agent@example.com", tok, "127.0.0.1", 587)
		}
		c, err := smtp.Dial(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		bad := newClient("expired-token")
		err = c.Auth(bad)
		var smtpErr *smtp.SMTPError
		if !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
			t.Fatalf("%s bad token: err = %v, want 535", mech, err)
		}
		if f := FailureOf(bad); f == nil || f.Status != "401" {
			t.Errorf("%s failure = %+v", mech, f)
		}
		if err := c.Auth(newClient(goodToken)); err != nil {
			t.Fatalf("%s good token: %v", mech, err)
		}
		c.Close()
	}

	// The server saw the exact initial responses and the 0x01 answer.
	got := rec.responses()
	want := [][]byte{
		[]byte("user=agent@example.com\x01auth=Bearer expired-token\x01\x01"),
		{0x01},
		[]byte("user=agent@example.com\x01auth=Bearer good-token\x01\x01"),
		[]byte("n,a=agent@example.com,\x01host=127.0.0.1\x01port=587\x01auth=Bearer expired-token\x01\x01"),
		{0x01},
		[]byte("n,a=agent@example.com,\x01host=127.0.0.1\x01port=587\x01auth=Bearer good-token\x01\x01"),
	}
	if len(got) != len(want) {
		t.Fatalf("server received %q, want %q", got, want)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("response %d = %q, want %q", i, got[i], want[i])
		}
	}
}

type smtpSession struct{ rec *recorder }

func (s *smtpSession) AuthMechanisms() []string { return []string{XOAuth2, OAuthBearer} }

func (s *smtpSession) Auth(mech string) (gosasl.Server, error) {
	srv, ok := s.rec.server(mech)
	if !ok {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return smtpServerErr{srv}, nil
}

type smtpServerErr struct{ gosasl.Server }

func (s smtpServerErr) Next(resp []byte) ([]byte, bool, error) {
	c, done, err := s.Server.Next(resp)
	if errors.Is(err, errAuthFailed) {
		err = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}
	}
	return c, done, err
}

func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
