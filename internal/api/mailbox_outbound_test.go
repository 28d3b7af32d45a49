package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// testJSON is a connection test's answer.
type testJSON struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Message string `json:"message"`
	Checks  []struct {
		Server     string `json:"server"`
		Addr       string `json:"addr"`
		OK         bool   `json:"ok"`
		Message    string `json:"message"`
		Field      string `json:"field"`
		Step       string `json:"step"`
		Kind       string `json:"kind"`
		ServerSaid string `json:"server_said"`
	} `json:"checks"`
}

// outboundJSON is what a mailbox answers about sending.
type outboundJSON struct {
	ID          int64  `json:"id"`
	AckEnabled  bool   `json:"ack_enabled"`
	AckTemplate string `json:"ack_template"`
	Server      *struct {
		SaveSent bool `json:"save_sent"`
	} `json:"server"`
	Sending struct {
		Queued, Held, Failed, Unknown, Sent int
		LastSentAt                          *time.Time `json:"last_sent_at"`
		Problem                             *struct {
			Kind       string    `json:"kind"`
			Advice     string    `json:"advice"`
			At         time.Time `json:"at"`
			ServerSaid string    `json:"server_said"`
			TicketID   int64     `json:"ticket_id"`
			Resolved   bool      `json:"resolved"`
		} `json:"problem"`
	} `json:"sending"`
}

// The outbound fields of a mailbox: save_sent (on by default for a
// password mailbox, off for Microsoft 365), ack_enabled and ack_template
// (refused with its field's sentence), the outbox's counts and last
// mailbox-wide problem, and the test of a saved mailbox.
func TestMailboxesOutbound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		admin := asAdmin(f)

		var ms outboundJSON
		f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"sales@example.com","auth":"microsoft"}`, admin).decode(t, http.StatusCreated, &ms)
		if ms.Server == nil || ms.Server.SaveSent || ms.AckEnabled || ms.AckTemplate != desk.DefaultAckTemplate || ms.Sending.Problem != nil {
			t.Errorf("a new Microsoft mailbox = %+v", ms)
		}
		var pw outboundJSON
		f.do(t, http.MethodPost, "/api/v1/mailboxes", `{"address":"help@example.com","auth":"password","imap_host":"imap.example.com",
			"smtp_host":"smtp.example.com","password":"x","ack_enabled":true,"ack_template":"Ticket #{{ticket}}: {{subject}}"}`, admin).decode(t, http.StatusCreated, &pw)
		if pw.Server == nil || !pw.Server.SaveSent || !pw.AckEnabled || pw.AckTemplate != "Ticket #{{ticket}}: {{subject}}" {
			t.Errorf("a new password mailbox = %+v", pw)
		}

		path := fmt.Sprintf("/api/v1/mailboxes/%d", pw.ID)
		f.do(t, http.MethodPatch, path, `{"ack_template":"Dear {{name}}"}`, admin).
			wantError(t, http.StatusUnprocessableEntity, "{{name}} is not a placeholder Postdesk knows: use {{ticket}} (the ticket's number) and {{subject}}")
		f.do(t, http.MethodPatch, path, `{"ack_template":"Ticket {{ticket"}`, admin).wantError(t, http.StatusUnprocessableEntity, "is not closed with }}")
		f.do(t, http.MethodPatch, path, `{"ack_enabled":true}`).wantError(t, http.StatusForbidden, "only admins")
		var up outboundJSON
		f.do(t, http.MethodPatch, path, `{"save_sent":false,"ack_enabled":false}`, admin).decode(t, http.StatusOK, &up)
		if up.Server.SaveSent || up.AckEnabled || up.AckTemplate != "Ticket #{{ticket}}: {{subject}}" {
			t.Errorf("after PATCH = %+v", up)
		}
		bare := fmt.Sprintf("/api/v1/mailboxes/%d", f.mailbox.ID)
		f.do(t, http.MethodPatch, bare, `{"ack_enabled":true}`, admin).wantError(t, http.StatusUnprocessableEntity, "acknowledgements are sent by email")

		// Replies of the password mailbox: one sent, one refused for the
		// whole mailbox (SMTP AUTH disabled), one waiting.
		ticketID, err := insertTicket(ctx, db, pw.ID)
		if err != nil {
			t.Fatal(err)
		}
		d := desk.New(db)
		var ids []int64
		for i := range 3 {
			m, err := d.Reply(ctx, ticketID, f.user, desk.ReplyInput{Text: fmt.Sprint("Answer ", i)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if err := db.Write(ctx, func(tx *store.Tx) error {
			if _, err := tx.ClaimOutbox(ctx, pw.ID, "test", now, now.Add(time.Hour)); err != nil {
				return err
			}
			for _, id := range ids[:2] {
				if ok, err := tx.BeginAttempt(ctx, id, "test", now); err != nil || !ok {
					return fmt.Errorf("begin %d: %v %w", id, ok, err)
				}
			}
			if err := tx.MarkSent(ctx, ids[0], now.Add(-time.Minute), false); err != nil {
				return err
			}
			return tx.MarkFailed(ctx, ids[1], "auth_disabled", "535 5.7.139 Authentication unsuccessful", now)
		}); err != nil {
			t.Fatal(err)
		}
		var got outboundJSON
		f.do(t, http.MethodGet, path, "", admin).decode(t, http.StatusOK, &got)
		s := got.Sending
		if s.Queued != 1 || s.Failed != 1 || s.Sent != 1 || s.Held != 0 || s.LastSentAt == nil || !s.LastSentAt.Equal(now.Add(-time.Minute)) {
			t.Errorf("sending = %+v", s)
		}
		if p := s.Problem; p == nil || p.Kind != "auth_disabled" || p.ServerSaid != "535 5.7.139 Authentication unsuccessful" || p.TicketID != ticketID ||
			p.Resolved || !p.At.Equal(now) || !strings.HasPrefix(p.Advice, "SMTP AUTH is disabled for the tenant or this mailbox: enable Authenticated SMTP") {
			t.Errorf("problem = %+v", s.Problem)
		}
		// Agents see the problem and what to do, not the server's words.
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if p := got.Sending.Problem; p == nil || p.ServerSaid != "" || p.Kind != "auth_disabled" {
			t.Errorf("problem for agents = %+v", p)
		}

		// A saved mailbox is tested with its stored password, with the
		// changes of the body; nothing is saved.
		closed := closedPort(t)
		var tested testJSON
		body := fmt.Sprintf(`{"imap_host":"127.0.0.1","imap_port":%d,"imap_security":"none","smtp_host":"127.0.0.1","smtp_port":%d,"smtp_security":"none"}`, closed, closed)
		f.do(t, http.MethodPost, path+"/test", body, admin).decode(t, http.StatusUnprocessableEntity, &tested)
		if tested.OK || len(tested.Checks) != 2 || tested.Checks[0].Field != "imap_port" || tested.Checks[1].Server != "SMTP" ||
			tested.Checks[1].Step != "connect" || tested.Checks[1].Kind != "temporary" || tested.Checks[1].Field != "smtp_port" ||
			!strings.HasPrefix(tested.Checks[1].Message, fmt.Sprintf("Nothing answers at 127.0.0.1:%d", closed)) {
			t.Errorf("test of the saved mailbox = %+v", tested)
		}
		if srv, _ := db.MailboxServer(ctx, pw.ID); srv.IMAPHost != "imap.example.com" {
			t.Errorf("the test saved the host: %s", srv.IMAPHost)
		}
		f.do(t, http.MethodPost, "/api/v1/mailboxes/9999/test", "", admin).wantError(t, http.StatusNotFound, "mailbox 9999 not found")
		f.do(t, http.MethodPost, path+"/test", "").wantError(t, http.StatusForbidden, "only admins")
	})
}

func insertTicket(ctx context.Context, db *store.DB, mailboxID int64) (int64, error) {
	var id int64
	err := db.Write(ctx, func(tx *store.Tx) (err error) {
		id, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mailboxID, Subject: "Printer", RequesterAddress: "ann@customer.test", CreatedAt: testNow})
		return err
	})
	return id, err
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
