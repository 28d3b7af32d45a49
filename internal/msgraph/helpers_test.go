package msgraph_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/fakegraph"
	"github.com/postdesk/postdesk/internal/fakeidp"
	"github.com/postdesk/postdesk/internal/msgraph"
)

const (
	agent    = "agent@example.com"
	customer = "customer@example.net"
	clientID = "postdesk-test"
)

var graphScopes = []string{"https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send", "offline_access"}

// world is the stand-in IdP and Graph on a loopback listener, mounted as
// `postdesk fakeidp` mounts them.
type world struct {
	idp  *fakeidp.IdP
	g    *fakegraph.Server
	base string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	idp := fakeidp.New(fakeidp.Options{Accounts: []fakeidp.Account{{Address: agent}, {Address: customer}}})
	idp.AddApp(fakeidp.App{ClientID: clientID, RedirectURIs: []string{"http://localhost/cb"}})
	g := fakegraph.New(fakegraph.Options{Tokens: fakegraph.FromIdP(idp), Mailboxes: []string{agent, customer}})
	idp.Mount("/graph/", http.StripPrefix("/graph", g), "graph", "/graph/v1.0")
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return &world{idp: idp, g: g, base: srv.URL + "/graph/v1.0"}
}

// tokens counts the Token calls of a Client.
type tokens struct {
	mu           sync.Mutex
	calls, fresh int
	current      string
}

// client returns a Client for account with a Token func backed by the IdP
// (a new token on each fresh=true), and back-off sleeps recorded, not slept.
func (w *world) client(t *testing.T, account string, scopes ...string) (*msgraph.Client, *tokens, *sleeps) {
	t.Helper()
	if len(scopes) == 0 {
		scopes = graphScopes
	}
	tk, sl := &tokens{}, &sleeps{}
	issue := func() string {
		tok, err := w.idp.IssueTokens(clientID, account, scopes...)
		if err != nil {
			t.Error(err)
		}
		return tok.AccessToken
	}
	tk.current = issue()
	c := &msgraph.Client{
		BaseURL: w.base,
		User:    account,
		Token: func(ctx context.Context, fresh bool) (string, error) {
			tk.mu.Lock()
			defer tk.mu.Unlock()
			tk.calls++
			if fresh {
				tk.fresh++
				tk.current = issue()
			}
			return tk.current, nil
		},
		Sleep: sl.sleep,
		Rand:  func() float64 { return 0.5 },
	}
	return c, tk, sl
}

// sleeps records the back-off a Client asked for.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func mime(from, to, subject, msgID string, extra ...string) []byte {
	h := "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: " + msgID + "\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return []byte(h + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n")
}

// graphErr returns err as *msgraph.Error or fails.
func graphErr(t *testing.T, err error) *msgraph.Error {
	t.Helper()
	var e *msgraph.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *msgraph.Error", err, err)
	}
	return e
}
