package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// replyJSON is a message as the API answers it, with its delivery.
type replyJSON struct {
	ID        int64  `json:"id"`
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	From      struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"from"`
	To         string   `json:"to"`
	Cc         string   `json:"cc"`
	Subject    string   `json:"subject"`
	MessageID  string   `json:"message_id"`
	InReplyTo  string   `json:"in_reply_to"`
	References []string `json:"references"`
	Text       string   `json:"text"`
	Delivery   *struct {
		State         string     `json:"state"`
		Attempts      int        `json:"attempts"`
		LastError     string     `json:"last_error"`
		ErrorKind     string     `json:"error_kind"`
		SentAt        *time.Time `json:"sent_at"`
		NextAttemptAt *time.Time `json:"next_attempt_at"`
		Auto          bool       `json:"auto"`
	} `json:"delivery"`
}

// sendableTicket adds a password mailbox with SMTP settings and a ticket
// on it whose customer email has a Message-ID; replies to it are queued
// (no sender runs in these tests).
func sendableTicket(t *testing.T, f *fixture) (store.Mailbox, int64) {
	t.Helper()
	ctx := context.Background()
	mb, err := desk.NewAdmin(f.db, f.vault, nil).AddMailbox(ctx, desk.MailboxSpec{Address: "help@example.com", Name: "Example Help",
		Auth: "password", IMAPHost: "imap.example.com", SMTPHost: "smtp.example.com", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	err = f.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: mb.ID, Subject: "Printer on fire", RequesterAddress: "ann@customer.test",
			RequesterName: "Ann", CreatedAt: testNow, MessageCount: 1})
		if err != nil {
			return err
		}
		return tx.InsertMessage(ctx, &store.Message{MailboxID: mb.ID, TicketID: id, Direction: "in", Kind: store.KindEmail,
			DedupeKey: "mid:q@customer.test", MessageID: "q@customer.test", References: []string{"r0@customer.test"},
			FromAddress: "ann@customer.test", FromName: "Ann", To: "help@example.com", Subject: "Printer on fire",
			ReceivedAt: testNow, TextBody: "It burns."})
	})
	if err != nil {
		t.Fatal(err)
	}
	return mb, id
}

func TestCreateReply(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, id := sendableTicket(t, f)
		path := fmt.Sprintf("/api/v1/tickets/%d/replies", id)

		var r replyJSON
		f.do(t, http.MethodPost, path, `{"text":"The new printer ships today.","cc":["Boss <boss@customer.test>"],"status":"pending"}`).
			decode(t, http.StatusAccepted, &r)
		if r.ID == 0 || r.Direction != "out" || r.Kind != "reply" || r.MessageID == "" || !strings.HasSuffix(r.MessageID, "@example.com") ||
			r.From.Address != "help@example.com" || !strings.Contains(r.To, "ann@customer.test") || !strings.Contains(r.Cc, "boss@customer.test") ||
			r.Subject != fmt.Sprintf("Re: Printer on fire [#%d]", id) || r.InReplyTo != "q@customer.test" ||
			r.Text != "The new printer ships today." {
			t.Errorf("reply = %+v", r)
		}
		if d := r.Delivery; d == nil || d.State != store.DeliveryQueued || d.Attempts != 0 || d.LastError != "" || d.SentAt != nil || d.Auto {
			t.Errorf("delivery = %+v", d)
		}

		// GET lists it as an outgoing message with its delivery; incoming mail has none.
		res := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", id), "")
		var tk struct {
			Status   string      `json:"status"`
			Messages []replyJSON `json:"messages"`
			Notes    []noteJSON  `json:"notes"`
		}
		res.decode(t, http.StatusOK, &tk)
		if len(tk.Messages) != 2 || tk.Messages[0].Direction != "in" || tk.Messages[0].Delivery != nil ||
			tk.Messages[1].ID != r.ID || tk.Messages[1].Direction != "out" || tk.Messages[1].Delivery == nil || tk.Messages[1].Delivery.State != "queued" {
			t.Fatalf("GET messages = %+v", tk.Messages)
		}
		var raw struct {
			Messages []map[string]json.RawMessage `json:"messages"`
		}
		json.Unmarshal(res.body, &raw)
		if d, ok := raw.Messages[0]["delivery"]; !ok || string(d) != "null" {
			t.Errorf(`incoming message: "delivery" = %s (present %v), want null`, d, ok)
		}
		if d := string(raw.Messages[1]["delivery"]); !strings.Contains(d, `"sent_at":null`) || !strings.Contains(d, `"error_kind":""`) {
			t.Errorf("outgoing delivery = %s", d)
		}
		// The reply took the unassigned ticket for the key's user, then set the status.
		if tk.Status != "pending" || len(tk.Notes) != 2 || tk.Notes[0].Body != "Taken by Agent Smith with a reply" ||
			!strings.Contains(tk.Notes[1].Body, "Status changed from open to pending") {
			t.Errorf("status %s, notes %+v", tk.Status, tk.Notes)
		}

		// The source is what will be sent, threaded to the customer's email.
		src := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d/raw", r.ID), "")
		if src.status != http.StatusOK || !strings.Contains(string(src.body), "In-Reply-To: <q@customer.test>") ||
			!strings.Contains(string(src.body), "Message-Id: <"+r.MessageID+">") && !strings.Contains(string(src.body), "Message-ID: <"+r.MessageID+">") {
			t.Errorf("raw source (%d):\n%s", src.status, src.body)
		}

		// To may name someone else; the status stays when not given.
		var r2 replyJSON
		f.do(t, http.MethodPost, path, `{"text":"Forwarding to your colleague.","to":["Carl <carl@customer.test>"]}`).decode(t, http.StatusAccepted, &r2)
		if !strings.Contains(r2.To, "carl@customer.test") || strings.Contains(r2.To, "ann@") || r2.Delivery == nil {
			t.Errorf("reply with to = %+v", r2)
		}

		// An Idempotency-Key: the request retried answers the same reply,
		// sent once; another key is another reply.
		body := `{"text":"Sent once, whatever the network does."}`
		var k1, k2, k3 replyJSON
		f.do(t, http.MethodPost, path, body, withHeader("Idempotency-Key", "retry-7f3a")).decode(t, http.StatusAccepted, &k1)
		f.do(t, http.MethodPost, path, body, withHeader("Idempotency-Key", "retry-7f3a")).decode(t, http.StatusAccepted, &k2)
		f.do(t, http.MethodPost, path, body, withHeader("Idempotency-Key", "retry-9c01")).decode(t, http.StatusAccepted, &k3)
		if k1.ID == 0 || k2.ID != k1.ID || k2.MessageID != k1.MessageID || k3.ID == k1.ID || k2.Delivery == nil {
			t.Errorf("with keys: %d, %d (same key), %d (another)", k1.ID, k2.ID, k3.ID)
		}
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", id), "").decode(t, http.StatusOK, &tk)
		if len(tk.Messages) != 5 {
			t.Errorf("%d messages after three keyed requests, want 5 (the email and four replies)", len(tk.Messages))
		}
		bad := f.do(t, http.MethodPost, path, body, withHeader("Idempotency-Key", strings.Repeat("k", 201)))
		if bad.status != http.StatusUnprocessableEntity && bad.status != http.StatusBadRequest {
			t.Errorf("a 201-character key: status %d", bad.status)
		}
	})
}

func TestCreateReplyErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, id := sendableTicket(t, f)
		path := fmt.Sprintf("/api/v1/tickets/%d/replies", id)
		for _, c := range []struct {
			name, path, body string
			status           int
			field, want      string
		}{
			{"empty text", path, `{"text":""}`, 422, "text", "empty"},
			{"blank text", path, `{"text":" \r\n\t"}`, 422, "text", "empty"},
			{"no text", path, `{"cc":["a@b.test"]}`, 422, "text", "empty"},
			{"too long", path, `{"text":"` + strings.Repeat("a", 65<<10) + `"}`, 422, "text", "longer than 64 KB"},
			{"bad cc", path, `{"text":"hi","cc":["not an address"]}`, 422, "cc", "not an email address"},
			{"header injection in cc", path, `{"text":"hi","cc":["a@b.test\r\nBcc: evil@x.test"]}`, 422, "cc", "not an email address"},
			{"bad to", path, `{"text":"hi","to":["@@"]}`, 422, "to", "not an email address"},
			{"to ourselves", path, `{"text":"hi","to":["support@example.com"]}`, 422, "to", "one of our own support mailboxes"},
			{"bad status", path, `{"text":"hi","status":"closed"}`, 422, "status", "open, pending or solved"},
			{"no SMTP", fmt.Sprintf("/api/v1/tickets/%d/replies", f.ticketID), `{"text":"hi"}`, 422, "", "no SMTP settings"},
			{"unknown ticket", "/api/v1/tickets/777/replies", `{"text":"hi"}`, 404, "", "ticket 777 not found"},
			{"bad ticket id", "/api/v1/tickets/x/replies", `{"text":"hi"}`, 400, "", `ticket id must be a positive integer`},
			{"unknown field", path, `{"text":"hi","bcc":["a@b.test"]}`, 400, "", `unknown field "bcc" in request body; this request accepts "text", "to", "cc", "status"`},
			{"cc not a list", path, `{"text":"hi","cc":"a@b.test"}`, 400, "", `field "cc" must be an array`},
			{"body too large", path, `{"text":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "", "larger than"},
		} {
			res := f.do(t, http.MethodPost, c.path, c.body)
			var e map[string]string
			res.decode(t, c.status, &e)
			if !strings.Contains(e["error"], c.want) || e["field"] != c.field || len(e) > 2 {
				t.Errorf("%s: answer %s, want %q with field %q", c.name, res.body, c.want, c.field)
			}
		}
		res := f.do(t, http.MethodPost, path, `{"text":"hi"}`, withHeader("Content-Type", "text/plain"))
		res.wantError(t, http.StatusUnsupportedMediaType, "request body must be JSON")

		// Nothing of the refused requests was stored.
		msgs, err := db.TicketMessages(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 1 {
			t.Errorf("%d messages on the ticket, want only the customer's", len(msgs))
		}
	})
}

func TestReplyRetryAndMarkSent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		mb, id := sendableTicket(t, f)
		ctx := context.Background()
		send := func(text string) int64 {
			var r replyJSON
			f.do(t, http.MethodPost, fmt.Sprintf("/api/v1/tickets/%d/replies", id), `{"text":"`+text+`"}`).decode(t, http.StatusAccepted, &r)
			return r.ID
		}
		failed, unknown := send("fails"), send("unknown")
		now := time.Now()
		err := db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.MarkFailed(ctx, failed, "send_as_denied", "550 5.7.60 SMTP; Client does not have permissions to send as this sender", now); err != nil {
				return err
			}
			if _, err := tx.ClaimOutbox(ctx, mb.ID, "test", now, now.Add(time.Minute)); err != nil {
				return err
			}
			if ok, err := tx.BeginAttempt(ctx, unknown, "test", now); err != nil || !ok {
				return fmt.Errorf("begin attempt: %v %v", ok, err)
			}
			return tx.MarkUnknown(ctx, unknown, "worker stopped", now)
		})
		if err != nil {
			t.Fatal(err)
		}
		var tk struct {
			Messages []replyJSON `json:"messages"`
		}
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", id), "").decode(t, http.StatusOK, &tk)
		for _, m := range tk.Messages {
			if m.ID == failed && (m.Delivery.State != "failed" || m.Delivery.ErrorKind != "send_as_denied" || !strings.HasPrefix(m.Delivery.LastError, "550 5.7.60")) {
				t.Errorf("failed reply's delivery = %+v", m.Delivery)
			}
			if m.ID == unknown && (m.Delivery.State != "unknown" || m.Delivery.Attempts != 1 || m.Delivery.ErrorKind != "outcome_unknown") {
				t.Errorf("unknown reply's delivery = %+v", m.Delivery)
			}
		}
		action := func(msg int64, what string) response {
			return f.do(t, http.MethodPost, fmt.Sprintf("/api/v1/tickets/%d/replies/%d/%s", id, msg, what), "")
		}

		var r replyJSON
		action(failed, "retry").decode(t, http.StatusAccepted, &r)
		if r.ID != failed || r.Delivery.State != "queued" || r.Delivery.LastError != "" {
			t.Errorf("after retry: %+v", r.Delivery)
		}
		action(failed, "retry").wantError(t, http.StatusUnprocessableEntity, "This reply is queued")
		action(failed, "mark-sent").wantError(t, http.StatusUnprocessableEntity, "only a reply whose fate is unknown")
		action(unknown, "mark-sent").decode(t, http.StatusOK, &r)
		if r.ID != unknown || r.Delivery.State != "sent" || r.Delivery.SentAt == nil {
			t.Errorf("after mark-sent: %+v", r.Delivery)
		}
		// Not an outgoing message of this ticket: 404.
		var in int64
		for _, m := range tk.Messages {
			if m.Direction == "in" {
				in = m.ID
			}
		}
		action(in, "retry").wantError(t, http.StatusNotFound, fmt.Sprintf("ticket %d has no reply %d", id, in))
		f.do(t, http.MethodPost, fmt.Sprintf("/api/v1/tickets/%d/replies/%d/retry", f.ticketID, failed), "").
			wantError(t, http.StatusNotFound, "has no reply")
		action(99999, "mark-sent").wantError(t, http.StatusNotFound, "has no reply 99999")
		f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d/replies/%d/retry", id, failed), "").wantError(t, http.StatusMethodNotAllowed, "use POST")
	})
}
