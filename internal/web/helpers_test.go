package web

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

const testPassword = "correct horse battery"

// env is a running Postdesk web server on a fresh SQLite database with
// one agent and one mailbox.
type env struct {
	t       *testing.T
	db      *store.DB
	h       *Handler
	srv     *httptest.Server
	user    store.User
	mailbox store.Mailbox
	logs    *logtest.Buffer
	banners []Banner

	showcaseID int64 // the richest ticket of seedShowcase
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, "sqlite")
}

// newEnvOn is newEnv on the given database ("sqlite" or "postgres").
func newEnvOn(t *testing.T, dialect string) *env {
	t.Helper()
	return newEnvWith(t, storetest.Open(t, dialect))
}

// newEnvWith is newEnv on db.
func newEnvWith(t *testing.T, db *store.DB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, logs: &logtest.Buffer{}}
	var err error
	e.user, _, err = auth.CreateUser(ctx, db, "agent@example.com", "Agent", store.RoleAdmin, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx *store.Tx) error {
		e.mailbox, err = tx.CreateMailbox(ctx, "support@example.com", "Support")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h, err = New(Options{
		DB: db, Auth: auth.New(db, 0), Desk: desk.New(db), Version: "test",
		Logger:  slog.New(slog.NewTextHandler(e.logs, nil)),
		Banners: func(context.Context) []Banner { return e.banners },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// client returns a browser-like client with its own cookie jar that does
// not follow redirects.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signedIn returns a client with a session.
func (e *env) signedIn() *http.Client {
	e.t.Helper()
	c := e.client()
	res := e.postLogin(c, e.user.Email, testPassword, "")
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in: status %d", res.StatusCode)
	}
	return c
}

// postLogin loads the sign-in form and submits it.
func (e *env) postLogin(c *http.Client, email, password, next string) *http.Response {
	e.t.Helper()
	_, body := e.get(c, "/login")
	return e.post(c, "/login", url.Values{"csrf": {formToken(e.t, body)}, "email": {email}, "password": {password}, "next": {next}})
}

func (e *env) get(c *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	res, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return res, string(b)
}

func (e *env) post(c *http.Client, path string, form url.Values) *http.Response {
	e.t.Helper()
	res, err := c.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res
}

// csrf reads the session's CSRF token from a signed-in page.
func (e *env) csrf(c *http.Client) string {
	e.t.Helper()
	_, body := e.get(c, "/tickets")
	return formToken(e.t, body)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formToken(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// ticket inserts a ticket with one customer message and returns their ids.
func (e *env) ticket(tk store.Ticket, m store.Message) (int64, int64) {
	e.t.Helper()
	ctx := context.Background()
	if tk.MailboxID == 0 {
		tk.MailboxID = e.mailbox.ID
	}
	if tk.CreatedAt.IsZero() {
		tk.CreatedAt = time.Now().UTC().Add(-time.Hour)
	}
	if tk.RequesterAddress == "" {
		tk.RequesterAddress = "ann@customer.test"
	}
	tk.MessageCount = 1
	err := e.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		tk.ID, err = tx.CreateTicket(ctx, tk)
		if err != nil {
			return err
		}
		m.MailboxID, m.TicketID = tk.MailboxID, tk.ID
		if m.Kind == "" {
			m.Kind = store.KindEmail
		}
		if m.Direction == "" {
			m.Direction = "in"
		}
		if m.DedupeKey == "" {
			m.DedupeKey = fmt.Sprintf("test:%d", tk.ID)
		}
		if m.ReceivedAt.IsZero() {
			m.ReceivedAt = tk.CreatedAt
		}
		if m.FromAddress == "" {
			m.FromAddress, m.FromName = tk.RequesterAddress, tk.RequesterName
		}
		if m.Subject == "" {
			m.Subject = tk.Subject
		}
		return tx.InsertMessage(ctx, &m)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tk.ID, m.ID
}

// blob stores content and returns its hash.
func (e *env) blob(content string) string {
	e.t.Helper()
	sum, _, err := e.db.Blobs().Put(strings.NewReader(content))
	if err != nil {
		e.t.Fatal(err)
	}
	return sum
}

func wantStatus(t *testing.T, res *http.Response, want int) {
	t.Helper()
	if res.StatusCode != want {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("%s %s: status %d, want %d\n%s", res.Request.Method, res.Request.URL.Path, res.StatusCode, want, b)
	}
}

func wantContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q", s)
		}
	}
}

func wantNotContains(t *testing.T, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(body, s) {
			t.Errorf("page has %q", s)
		}
	}
}

// maria adds a second agent, Maria Santos, and signs her in (two agents
// acting on one ticket at once).
func (e *env) maria() (store.User, *http.Client) {
	e.t.Helper()
	u, _, err := auth.CreateUser(context.Background(), e.db, "maria@example.com", "Maria Santos", store.RoleAgent, testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.client()
	if res := e.postLogin(c, u.Email, testPassword, ""); res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("Maria's sign-in: %d", res.StatusCode)
	}
	return u, c
}
