package smtpsend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	gosasl "github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	testUser     = "agent@example.com"
	goodToken    = "good-token"
	testPassword = "secret"
)

// fakeServer is go-smtp's server on 127.0.0.1 with a backend whose replies
// each test chooses, for the codes a real Postfix does not produce.
type fakeServer struct {
	addr string

	// Replies; nil accepts. auth gets the mechanism, user and token or
	// password; the others the address or the message.
	auth  func(mech, user, secret string) error
	mail  func(from string) error
	rcpt  func(to string) error
	data  func(raw []byte) error
	mechs []string // offered AUTH mechanisms; nil: all four
	utf8  bool     // offer SMTPUTF8
	// noPipelining hides PIPELINING from the client (the sequential path).
	noPipelining bool

	mu       sync.Mutex
	sessions int
	msgs     []received
	conns    []*smtp.Conn
}

type received struct {
	from string
	to   []string
	raw  []byte
}

func startFake(t *testing.T, configure func(*fakeServer)) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	if configure != nil {
		configure(f)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sessions++
		f.conns = append(f.conns, c)
		return &fakeSession{f: f, c: c}, nil
	}))
	srv.Domain = "fake.example.test"
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = f.utf8
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discardLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// drop closes the connection of the current session without a reply, as a
// crashing server or a cut network does.
func (f *fakeServer) drop(c *smtp.Conn) { c.Conn().Close() }

func (f *fakeServer) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.msgs...)
}

func (f *fakeServer) sessionCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions
}

// config is a Config for the fake server with XOAUTH2 and the good token.
func (f *fakeServer) config(t *testing.T) Config {
	cfg := Config{
		Addr: f.addr, Security: SecurityNone, Username: testUser, Auth: AuthXOAuth2,
		Token:  func(context.Context) (string, error) { return goodToken, nil },
		Logger: testLogger(t),
	}
	if f.noPipelining {
		cfg.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return hidePipelining{c}, nil
		}
	}
	return cfg
}

// hidePipelining renames the server's PIPELINING extension (go-smtp's
// server always offers it), so the client sends one command at a time.
type hidePipelining struct{ net.Conn }

func (h hidePipelining) Read(p []byte) (int, error) {
	n, err := h.Conn.Read(p)
	copy(p[:n], bytes.ReplaceAll(p[:n], []byte("PIPELINING"), []byte("XPIPELINE0")))
	return n, err
}

type fakeSession struct {
	f    *fakeServer
	c    *smtp.Conn
	from string
	to   []string
}

func (s *fakeSession) AuthMechanisms() []string {
	if s.f.mechs != nil {
		return s.f.mechs
	}
	return []string{"XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN"}
}

func (s *fakeSession) Auth(mech string) (gosasl.Server, error) {
	check := func(user, secret string) error {
		if s.f.auth != nil {
			return s.f.auth(mech, user, secret)
		}
		if user == testUser && (secret == goodToken || secret == testPassword) {
			return nil
		}
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Error: authentication failed"}
	}
	switch mech {
	case "PLAIN":
		return gosasl.NewPlainServer(func(_, user, pw string) error { return check(user, pw) }), nil
	case "LOGIN":
		return &loginServer{check: check}, nil
	case "XOAUTH2", "OAUTHBEARER":
		return &bearerServer{mech: mech, check: check}, nil
	}
	return nil, errors.New("unsupported mechanism")
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.f.mail != nil {
		if err := s.f.mail(from); err != nil {
			return err
		}
	}
	s.from = from
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.f.rcpt != nil {
		if err := s.f.rcpt(to); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	return nil
}

// errDrop makes a hook of the fake server close the connection unanswered.
var errDrop = errors.New("drop the connection")

func (s *fakeSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.f.data != nil {
		if err := s.f.data(raw); err != nil {
			if errors.Is(err, errDrop) {
				s.f.drop(s.c)
			}
			return err
		}
	}
	s.f.mu.Lock()
	s.f.msgs = append(s.f.msgs, received{from: s.from, to: s.to, raw: raw})
	s.f.mu.Unlock()
	return nil
}

func (s *fakeSession) Reset() { s.from, s.to = "", nil }

func (s *fakeSession) Logout() error { return nil }

// bearerServer is a server-side XOAUTH2 or OAUTHBEARER that behaves like
// Dovecot and Microsoft: a refused token gets a JSON failure challenge, and
// the reply comes after the client's 0x01.
type bearerServer struct {
	mech    string
	check   func(user, token string) error
	refused error
}

func (s *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if s.refused != nil {
		return nil, true, s.refused
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	user, token := parseBearer(s.mech, resp)
	err := s.check(user, token)
	if err == nil {
		return nil, true, nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code == 535 {
		s.refused = err
		blob, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "https://outlook.office.com/SMTP.Send"})
		return blob, false, nil
	}
	return nil, true, err
}

func parseBearer(mech string, ir []byte) (user, token string) {
	s := string(ir)
	if mech == "OAUTHBEARER" {
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

// loginServer is the server side of SASL LOGIN, with or without an
// initial response.
type loginServer struct {
	check func(user, password string) error
	step  int
	user  string
}

func (s *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		s.user, s.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, s.check(s.user, string(resp))
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// reply is a server refusal.
func reply(code int, enhanced [3]int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: msg}
}

// wantError fails the test unless err is an *Error with these fields.
func wantError(t *testing.T, err error, kind Kind, stage string, code int, enhanced string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error", err, err)
	}
	if e.Kind != kind || e.Stage != stage || e.Code != code || e.Enhanced != enhanced {
		t.Fatalf("error %+v\n  = %v\nwant kind %v stage %s code %d enhanced %q", *e, e, kind, stage, code, enhanced)
	}
	if strings.ContainsAny(e.Message, "\r\n") {
		t.Errorf("Message %q has a line break", e.Message)
	}
	return e
}

func testMessage(from, to, subject string) []byte {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '.'
	}, subject)
	return []byte("From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: " + subject +
		"\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\nMessage-ID: <" + id + "@postdesk.test>\r\n\r\nHello.\r\n")
}
