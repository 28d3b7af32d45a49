package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

func TestMe(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var me map[string]any
		f.do(t, http.MethodGet, "/api/v1/me", "").decode(t, http.StatusOK, &me)
		want := map[string]any{"id": float64(f.user.ID), "email": "agent@example.com", "name": "Agent Smith", "role": "agent"}
		if len(me) != len(want) {
			t.Errorf("me = %v, want %v", me, want)
		}
		for k, v := range want {
			if me[k] != v {
				t.Errorf("me[%s] = %v, want %v", k, me[k], v)
			}
		}
	})
}

func TestMailboxes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.CreateMailbox(ctx, "Billing@Example.com", "Billing")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Mailboxes []struct {
				ID        int64     `json:"id"`
				Address   string    `json:"address"`
				Name      string    `json:"name"`
				CreatedAt time.Time `json:"created_at"`
			} `json:"mailboxes"`
		}
		f.do(t, http.MethodGet, "/api/v1/mailboxes", "").decode(t, http.StatusOK, &out)
		if len(out.Mailboxes) != 2 || out.Mailboxes[0].Address != "billing@example.com" ||
			out.Mailboxes[1].ID != f.mailbox.ID || out.Mailboxes[1].Name != "Support" || out.Mailboxes[1].CreatedAt.IsZero() {
			t.Errorf("mailboxes = %+v", out.Mailboxes)
		}
	})
}

func TestEmptyLists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.do(t, http.MethodGet, "/api/v1/tickets?status=pending", "")
		if r.status != http.StatusOK || string(r.body) != `{"tickets":[],"total":0,"limit":50,"offset":0}`+"\n" {
			t.Errorf("empty list = %d %s", r.status, r.body)
		}
	})
}

func TestRouting(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, c := range []struct{ method, path, want string }{
			{http.MethodGet, "/api/v1/", "no API endpoint at GET /api/v1/"},
			{http.MethodGet, "/api/v1/nothing", "no API endpoint at GET /api/v1/nothing"},
			{http.MethodGet, "/api/v1/tickets/1/nothing", "no API endpoint"},
			{http.MethodGet, "/api/v1/tickets/", "no API endpoint"},
			{http.MethodPost, "/api/v1/nothing", "no API endpoint at POST /api/v1/nothing"},
		} {
			f.do(t, c.method, c.path, "").wantError(t, http.StatusNotFound, c.want)
		}
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodPost, "/api/v1/me", "GET, HEAD"},
			{http.MethodDelete, "/api/v1/tickets/1", "GET, HEAD, PATCH"},
			{http.MethodPut, "/api/v1/tickets/1", "GET, HEAD, PATCH"},
			{http.MethodGet, "/api/v1/tickets/1/notes", "POST"},
			{http.MethodPost, "/api/v1/tickets", "GET, HEAD"},
			{http.MethodDelete, "/api/v1/attachments/1", "GET, HEAD"},
			{http.MethodPut, "/api/v1/mailboxes/1", "GET, HEAD, PATCH, DELETE"},
			{http.MethodDelete, "/api/v1/mailboxes", "GET, HEAD, POST"},
		} {
			r := f.do(t, c.method, c.path, "")
			r.wantError(t, http.StatusMethodNotAllowed, "method "+c.method+" is not allowed on "+c.path)
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow = %q, want %q", c.method, c.path, got, c.allow)
			}
		}
		// HEAD answers GET's headers without a body.
		r := f.do(t, http.MethodHead, "/api/v1/me", "")
		if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("HEAD /me = %d %v %q", r.status, r.header, r.body)
		}
		// Every answer carries a request id.
		if r.header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id")
		}
	})
}

// With the database out of reach, the API answers 503 with Retry-After,
// not a 500 incident: the request can be sent again as it is.
func TestDatabaseOutOfReach(t *testing.T) {
	db, cut := storetest.OpenCuttable(t)
	f := newFixture(t, db)
	f.do(t, http.MethodGet, "/api/v1/tickets", "").decode(t, http.StatusOK, &map[string]any{})
	cut()
	for range 2 { // the open connection breaks; then a new one is refused
		r := f.do(t, http.MethodGet, "/api/v1/tickets", "")
		r.wantError(t, http.StatusServiceUnavailable, "the database is out of reach")
		if got := r.header.Get("Retry-After"); got != "10" {
			t.Errorf("Retry-After = %q", got)
		}
	}
}

// A message on no ticket (a notification emailed to an admin) and its
// attachments are for admins: to an agent's key they are not found.
func TestMessageOnNoTicketIsForAdmins(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	f := newFixture(t, db)
	ctx := context.Background()
	sum, size := putBlob(t, db, []byte("From: support@example.com\r\nSubject: Postdesk: a mailbox needs reauthentication\r\n\r\nHello.\r\n"))
	logo, logoSize := putBlob(t, db, []byte("\x89PNG not really"))
	m := store.Message{MailboxID: f.mailbox.ID, Direction: "out", Kind: store.KindReply, DedupeKey: "notice-1", FromAddress: "support@example.com",
		Subject: "Postdesk: a mailbox needs reauthentication", RawSHA256: sum, RawSize: size, ReceivedAt: time.Now(),
		Attachments: []store.Attachment{{Filename: "logo.png", ContentType: "image/png", Size: logoSize, SHA256: logo}}}
	if err := db.Write(ctx, func(tx *store.Tx) error { return tx.InsertMessage(ctx, &m) }); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fmt.Sprintf("/api/v1/messages/%d/raw", m.ID), fmt.Sprintf("/api/v1/attachments/%d", m.Attachments[0].ID)} {
		if r := f.do(t, http.MethodGet, path, ""); r.status != http.StatusNotFound || strings.Contains(string(r.body), "reauthentication") {
			t.Errorf("GET %s with an agent's key: %d %s", path, r.status, r.body)
		}
		if r := f.do(t, http.MethodGet, path, "", asAdmin(f)); r.status != http.StatusOK {
			t.Errorf("GET %s with an admin's key: %d %s", path, r.status, r.body)
		}
	}
}

// A reply that says which message it saw is refused when a newer one came
// since (422, seen_message_id), and nothing is stored.
func TestCreateReplySeenMessageID(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	f := newFixture(t, db)
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.PutMailboxServer(context.Background(), store.MailboxServer{MailboxID: f.mailbox.ID, IMAPHost: "127.0.0.1", IMAPPort: 143, IMAPSecurity: "none",
			SMTPHost: "127.0.0.1", SMTPPort: 587, SMTPSecurity: "none", AuthMethod: "plain", Folders: []string{"INBOX"}, Enabled: true, UpdatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	// The client showed the first email; the customer writes again.
	if err := db.Write(context.Background(), func(tx *store.Tx) error {
		m := store.Message{MailboxID: f.mailbox.ID, TicketID: f.ticketID, Direction: "in", Kind: store.KindEmail, DedupeKey: "again",
			FromAddress: "ann@customer.test", FromName: "Ann", TextBody: "Still on fire.", ReceivedAt: time.Now()}
		return tx.InsertMessage(context.Background(), &m)
	}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, http.MethodPost, fmt.Sprintf("/api/v1/tickets/%d/replies", f.ticketID),
		fmt.Sprintf(`{"text":"Hello","seen_message_id":%d}`, f.message.ID))
	var e errorJSON
	r.decode(t, http.StatusUnprocessableEntity, &e)
	if e.Field != "seen_message_id" || !strings.Contains(e.Error, "wrote again") || !strings.Contains(e.Error, "Your reply was not sent") {
		t.Errorf("stale reply: %+v", e)
	}
	msgs, err := db.TicketMessages(context.Background(), f.ticketID)
	if err != nil || len(msgs) != 2 {
		t.Errorf("messages after the refusal: %d, %v; want the two emails", len(msgs), err)
	}
}
