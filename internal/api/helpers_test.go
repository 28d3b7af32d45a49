package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/logtest"
	"github.com/postdesk/postdesk/internal/oauth"
	"github.com/postdesk/postdesk/internal/store"
)

// fixture is a running API over a database holding one agent and one admin
// with a key each, one mailbox and one ticket whose message has two
// attachments. Its mailbox administration knows the Microsoft provider.
type fixture struct {
	db       *store.DB
	auth     *auth.Service
	srv      *httptest.Server
	logs     *logtest.Buffer
	user     store.User
	key      string
	keyID    int64
	adminKey string // an admin's key; send it with asAdmin(f)
	vault    *store.Vault
	mailbox  store.Mailbox
	ticketID int64
	message  store.Message // with Attachments: [0] inline logo, [1] report
	raw      []byte
	logo     []byte
	report   []byte
}

const (
	testHTML = `<p onclick="steal()">Hello <b>there</b></p><script>alert("xss")</script>` +
		`<img src="https://tracker.test/open.gif"><img src="cid:logo@customer.test">` +
		`<a href="javascript:alert(1)">click</a>`
	testRaw = "From: Ann <ann@customer.test>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
		"Message-ID: <a@customer.test>\r\nDate: Sun, 1 Nov 2026 09:58:00 +0000\r\n\r\nHelp.\r\n"
)

var testNow = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, logs: &logtest.Buffer{}, raw: []byte(testRaw), logo: []byte("\x89PNG fake logo"), report: []byte("%PDF-1.4 fake report")}
	f.auth = auth.New(db, 0)

	rawSum, rawSize := putBlob(t, db, f.raw)
	logoSum, logoSize := putBlob(t, db, f.logo)
	reportSum, reportSize := putBlob(t, db, f.report)
	err := db.Write(ctx, func(tx *store.Tx) error {
		var err error
		// A placeholder hash: these tests sign in with API keys only.
		f.user, err = tx.CreateUser(ctx, store.User{Email: "agent@example.com", Name: "Agent Smith", Role: store.RoleAgent, PasswordHash: "-"})
		if err != nil {
			return err
		}
		f.mailbox, err = tx.CreateMailbox(ctx, "support@example.com", "Support")
		if err != nil {
			return err
		}
		f.ticketID, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mailbox.ID, Subject: "Printer on fire",
			RequesterAddress: "ann@customer.test", RequesterName: "Ann", CreatedAt: testNow, MessageCount: 1})
		if err != nil {
			return err
		}
		f.message = store.Message{MailboxID: f.mailbox.ID, TicketID: f.ticketID, Direction: "in", Kind: store.KindEmail,
			DedupeKey: "mid:a@customer.test", MessageID: "a@customer.test", References: []string{"r1@x", "r2@x"},
			FromAddress: "ann@customer.test", FromName: "Ann", To: "support@example.com", Subject: "Printer on fire",
			SentAt: testNow.Add(-2 * time.Minute), ReceivedAt: testNow, TextBody: "Help.", HTMLBody: testHTML,
			RawSHA256: rawSum, RawSize: rawSize, Problems: []string{"date in the future"},
			Attachments: []store.Attachment{
				{Filename: "logo.png", ContentType: "image/png", Size: logoSize, SHA256: logoSum, ContentID: "logo@customer.test", Inline: true},
				{Filename: "Bericht März.pdf", ContentType: "application/pdf", Size: reportSize, SHA256: reportSum},
			}}
		return tx.InsertMessage(ctx, &f.message)
	})
	if err != nil {
		t.Fatalf("create fixture: %v", err)
	}
	key, k, err := f.auth.CreateAPIKey(ctx, f.user.ID, "tests")
	if err != nil {
		t.Fatalf("create api key: %v", err)
	}
	f.key, f.keyID = key, k.ID
	var admin store.User
	if err := db.Write(ctx, func(tx *store.Tx) error {
		var err error
		admin, err = tx.CreateUser(ctx, store.User{Email: "admin@example.com", Name: "Ada Admin", Role: store.RoleAdmin, PasswordHash: "-"})
		return err
	}); err != nil {
		t.Fatalf("create admin: %v", err)
	}
	if f.adminKey, _, err = f.auth.CreateAPIKey(ctx, admin.ID, "tests"); err != nil {
		t.Fatalf("create admin api key: %v", err)
	}
	if f.vault, err = store.NewVault(store.GenerateKey()); err != nil {
		t.Fatal(err)
	}
	providers := desk.Providers([]oauth.Provider{oauth.Microsoft("organizations", "")})

	logger := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: db, Auth: f.auth, Desk: desk.New(db),
		Admin: desk.NewAdmin(db, f.vault, providers), Logger: logger}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func putBlob(t *testing.T, db *store.DB, b []byte) (string, int64) {
	t.Helper()
	sum, size, err := db.Blobs().Put(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("put blob: %v", err)
	}
	return sum, size
}

// response is an answer of the API.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the fixture's key and, when body is not empty,
// Content-Type: application/json. Options change the request before it goes.
func (f *fixture) do(t *testing.T, method, path, body string, opts ...func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// asAdmin sends a request with the admin's key.
func asAdmin(f *fixture) func(*http.Request) {
	return withHeader("Authorization", "Bearer "+f.adminKey)
}

func withHeader(name, value string) func(*http.Request) {
	return func(r *http.Request) {
		if value == "" {
			r.Header.Del(name)
		} else {
			r.Header.Set(name, value)
		}
	}
}

// decode checks the status and decodes the JSON body into v.
func (r response) decode(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// wantError checks an error answer: its status and that its message contains want.
func (r response) wantError(t *testing.T, status int, want string) {
	t.Helper()
	var e map[string]any
	r.decode(t, status, &e)
	msg, ok := e["error"].(string)
	field, hasField := e["field"].(string)
	if !ok || len(e) != 1 && !(len(e) == 2 && hasField && field != "") {
		t.Fatalf("error body = %s, want exactly {\"error\": ...} and perhaps a \"field\"", r.body)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("error = %q, want it to contain %q", msg, want)
	}
}

// waitLog waits for the server's log to contain s: a request's line is
// written after its response has been sent.
func (f *fixture) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := f.logs.String()
		if strings.Contains(logs, s) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q; log:\n%s", s, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
