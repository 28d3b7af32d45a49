package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type ticketJSON struct {
	ID      int64 `json:"id"`
	Mailbox struct {
		ID      int64  `json:"id"`
		Address string `json:"address"`
	} `json:"mailbox"`
	Subject   string `json:"subject"`
	Requester struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"requester"`
	Status       string        `json:"status"`
	Bulk         bool          `json:"bulk"`
	MessageCount int           `json:"message_count"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
	Messages     []messageJSON `json:"messages"`
	Notes        []noteJSON    `json:"notes"`
}

type messageJSON struct {
	ID        int64  `json:"id"`
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	From      struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"from"`
	To            string           `json:"to"`
	Subject       string           `json:"subject"`
	MessageID     string           `json:"message_id"`
	References    []string         `json:"references"`
	SentAt        *time.Time       `json:"sent_at"`
	ReceivedAt    time.Time        `json:"received_at"`
	Text          string           `json:"text"`
	HTML          string           `json:"html"`
	BlockedImages int              `json:"blocked_images"`
	Attachments   []attachmentJSON `json:"attachments"`
	Problems      []string         `json:"problems"`
	RawURL        string           `json:"raw_url"`
}

type attachmentJSON struct {
	ID          int64  `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Inline      bool   `json:"inline"`
	ContentID   string `json:"content_id"`
	URL         string `json:"url"`
}

type noteJSON struct {
	ID     int64  `json:"id"`
	Kind   string `json:"kind"`
	Author *struct {
		ID    int64  `json:"id"`
		Email string `json:"email"`
	} `json:"author"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

type ticketListJSON struct {
	Tickets []ticketJSON `json:"tickets"`
	Total   int          `json:"total"`
	Limit   int          `json:"limit"`
	Offset  int          `json:"offset"`
	// SearchIndexing is left out when 0: -1 tells it was.
	SearchIndexing int `json:"search_indexing"`
}

func TestGetTicket(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		r := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "")
		var tk ticketJSON
		r.decode(t, http.StatusOK, &tk)
		if tk.ID != f.ticketID || tk.Mailbox.ID != f.mailbox.ID || tk.Mailbox.Address != "support@example.com" ||
			tk.Subject != "Printer on fire" || tk.Requester.Name != "Ann" || tk.Requester.Address != "ann@customer.test" ||
			tk.Status != "open" || tk.MessageCount != 1 || !tk.CreatedAt.Equal(testNow) {
			t.Errorf("ticket = %+v", tk)
		}
		if !strings.Contains(string(r.body), `"created_at":"2026-11-01T10:00:00Z"`) {
			t.Errorf("times are not RFC 3339 UTC: %s", r.body)
		}
		if len(tk.Messages) != 1 || tk.Notes == nil || len(tk.Notes) != 0 {
			t.Fatalf("messages = %d, notes = %v; want 1 and []", len(tk.Messages), tk.Notes)
		}
		m := tk.Messages[0]
		if m.ID != f.message.ID || m.Direction != "in" || m.Kind != "email" || m.From.Address != "ann@customer.test" ||
			m.MessageID != "a@customer.test" || len(m.References) != 2 || m.Text != "Help." ||
			m.SentAt == nil || !m.SentAt.Equal(testNow.Add(-2*time.Minute)) || len(m.Problems) != 1 ||
			m.RawURL != fmt.Sprintf("/api/v1/messages/%d/raw", f.message.ID) {
			t.Errorf("message = %+v", m)
		}
		if len(m.Attachments) != 2 {
			t.Fatalf("attachments = %+v", m.Attachments)
		}
		logo := m.Attachments[0]
		if logo.Filename != "logo.png" || !logo.Inline || logo.ContentID != "logo@customer.test" || logo.Size != int64(len(f.logo)) ||
			logo.SHA256 != f.message.Attachments[0].SHA256 || logo.URL != fmt.Sprintf("/api/v1/attachments/%d", logo.ID) {
			t.Errorf("attachment = %+v", logo)
		}

		// The HTML is sanitized: no script, handler or javascript: URL, remote
		// images blocked and counted, the inline image pointing at its attachment.
		for _, bad := range []string{"<script", "alert(", "onclick", "javascript:", "tracker.test"} {
			if strings.Contains(m.HTML, bad) {
				t.Errorf("html holds %q: %s", bad, m.HTML)
			}
		}
		if strings.Contains(string(r.body), "alert(") || strings.Contains(string(r.body), "tracker.test") {
			t.Errorf("the JSON holds unsafe HTML: %s", r.body)
		}
		if !strings.Contains(m.HTML, "<b>there</b>") || !strings.Contains(m.HTML, `src="`+logo.URL+`"`) {
			t.Errorf("html lost safe content: %s", m.HTML)
		}
		if m.BlockedImages != 1 {
			t.Errorf("blocked_images = %d, want 1", m.BlockedImages)
		}
	})
}

func TestGetTicketErrors(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.do(t, http.MethodGet, "/api/v1/tickets/123", "").wantError(t, http.StatusNotFound, "ticket 123 not found")
		f.do(t, http.MethodGet, "/api/v1/tickets/abc", "").wantError(t, http.StatusBadRequest, `ticket id must be a positive integer, not "abc"`)
		f.do(t, http.MethodGet, "/api/v1/tickets/0", "").wantError(t, http.StatusBadRequest, "ticket id must be a positive integer")
		f.do(t, http.MethodGet, "/api/v1/tickets/99999999999999999999", "").wantError(t, http.StatusBadRequest, "ticket id must be a positive integer")
	})
}

func TestGetTicketUnknownDate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		err := db.Write(ctx, func(tx *store.Tx) error {
			return tx.InsertMessage(ctx, &store.Message{MailboxID: f.mailbox.ID, TicketID: f.ticketID, Direction: "in",
				Kind: store.KindEmail, DedupeKey: "mid:b@x", ReceivedAt: testNow.Add(time.Minute)})
		})
		if err != nil {
			t.Fatal(err)
		}
		r := f.do(t, http.MethodGet, fmt.Sprintf("/api/v1/tickets/%d", f.ticketID), "")
		var tk ticketJSON
		r.decode(t, http.StatusOK, &tk)
		if len(tk.Messages) != 2 || tk.Messages[1].SentAt != nil {
			t.Fatalf("messages = %+v, want the second with sent_at null", tk.Messages)
		}
		if !strings.Contains(string(r.body), `"sent_at":null`) || !strings.Contains(string(r.body), `"references":[]`) ||
			!strings.Contains(string(r.body), `"attachments":[]`) || !strings.Contains(string(r.body), `"problems":[]`) {
			t.Errorf("absent values are not null / []: %s", r.body)
		}
	})
}

func TestListTickets(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		// 12 more tickets: 4 pending in a second mailbox, 8 solved in the first.
		var other store.Mailbox
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			other, err = tx.CreateMailbox(ctx, "billing@example.com", "Billing")
			if err != nil {
				return err
			}
			for i := range 12 {
				tk := store.Ticket{MailboxID: f.mailbox.ID, Status: store.StatusSolved, Subject: fmt.Sprintf("Invoice %d", i),
					RequesterAddress: fmt.Sprintf("c%d@customer.test", i), CreatedAt: testNow.Add(time.Duration(i+1) * time.Minute)}
				if i < 4 {
					tk.MailboxID, tk.Status, tk.Subject = other.ID, store.StatusPending, fmt.Sprintf("Refund 100%% %d", i)
				}
				if _, err := tx.CreateTicket(ctx, tk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		list := func(t *testing.T, query string) ticketListJSON {
			t.Helper()
			var out ticketListJSON
			f.do(t, http.MethodGet, "/api/v1/tickets"+query, "").decode(t, http.StatusOK, &out)
			return out
		}

		all := list(t, "")
		if all.Total != 13 || len(all.Tickets) != 13 || all.Limit != 50 || all.Offset != 0 {
			t.Fatalf("all: total %d, %d tickets, limit %d, offset %d", all.Total, len(all.Tickets), all.Limit, all.Offset)
		}
		if all.Tickets[0].Subject != "Invoice 11" || all.Tickets[12].ID != f.ticketID || all.Tickets[0].Messages != nil {
			t.Errorf("order is not newest activity first, or the list carries messages: first %+v", all.Tickets[0])
		}
		for _, c := range []struct {
			query string
			total int
		}{
			{"?status=open", 1},
			{"?status=pending", 4},
			{"?status=solved", 8},
			{fmt.Sprintf("?mailbox=%d", other.ID), 4},
			{"?mailbox=BILLING@example.com", 4},
			{"?mailbox=support%40example.com&status=solved", 8},
			{"?q=printer", 1},
			{"?q=" + url.QueryEscape("100%"), 4},
			{"?q=ANN@customer", 1},
			{"?q=nothing+like+this", 0},
			{"?status=open&q=invoice", 0},
		} {
			if got := list(t, c.query); got.Total != c.total || len(got.Tickets) != c.total {
				t.Errorf("%s: total %d, %d tickets; want %d", c.query, got.Total, len(got.Tickets), c.total)
			}
		}

		// Pages.
		p := list(t, "?limit=5&offset=10")
		if p.Total != 13 || len(p.Tickets) != 3 || p.Limit != 5 || p.Offset != 10 || p.Tickets[0].ID != all.Tickets[10].ID {
			t.Errorf("page: %+v", p)
		}
		if p := list(t, "?limit=1"); len(p.Tickets) != 1 || p.Total != 13 {
			t.Errorf("limit=1: %d tickets, total %d", len(p.Tickets), p.Total)
		}
		if p := list(t, "?limit=200&offset=13"); len(p.Tickets) != 0 || p.Tickets == nil || p.Total != 13 {
			t.Errorf("past the end: %+v", p)
		}

		for _, c := range []struct{ query, want string }{
			{"?limit=0", "query parameter limit must be an integer from 1 to 200"},
			{"?limit=201", "query parameter limit must be an integer from 1 to 200"},
			{"?limit=ten", "query parameter limit must be an integer from 1 to 200"},
			{"?offset=-1", "query parameter offset must be an integer from 0 to 2147483647"},
			{"?offset=99999999999", "query parameter offset must be an integer from 0 to 2147483647"},
			{"?offset=x", "query parameter offset must be an integer from 0 to 2147483647"},
			{"?status=closed", `query parameter status must be open, pending or solved, not "closed"`},
			{"?mailbox=nobody@example.com", `query parameter mailbox: there is no mailbox "nobody@example.com"`},
			{"?mailbox=9999", `query parameter mailbox: there is no mailbox "9999"`},
			{"?mailbox=support", "query parameter mailbox must be a mailbox id or address"},
			{"?stauts=open", `unknown query parameter "stauts"`},
			{"?status=open&status=solved", "query parameter status is given 2 times"},
			{"?q=" + strings.Repeat("a", 201), "query parameter q is longer than 200 characters"},
			{"?q=%zz", "query string is malformed"},
		} {
			f.do(t, http.MethodGet, "/api/v1/tickets"+c.query, "").wantError(t, http.StatusBadRequest, c.want)
		}
	})
}

func TestUpdateTicketStatus(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		path := fmt.Sprintf("/api/v1/tickets/%d", f.ticketID)

		r := f.do(t, http.MethodPatch, path, `{"status":"solved"}`)
		var tk ticketJSON
		r.decode(t, http.StatusOK, &tk)
		if tk.ID != f.ticketID || tk.Status != "solved" || !tk.UpdatedAt.After(testNow) {
			t.Errorf("patched ticket = %+v", tk)
		}
		if strings.Contains(string(r.body), `"messages"`) || strings.Contains(string(r.body), `"notes"`) {
			t.Errorf("PATCH answered the conversation: %s", r.body)
		}

		// The change is on the timeline as an event by the key's user.
		var got ticketJSON
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if got.Status != "solved" || len(got.Notes) != 1 {
			t.Fatalf("after PATCH: status %s, notes %+v", got.Status, got.Notes)
		}
		ev := got.Notes[0]
		if ev.Kind != "event" || ev.Author == nil || ev.Author.ID != f.user.ID || ev.Author.Email != f.user.Email ||
			ev.Body != "Status changed from open to solved by agent@example.com" {
			t.Errorf("event = %+v", ev)
		}

		// Setting the same status again records nothing new and leaves the
		// last activity where it was (the ticket does not rise in the list).
		before := got.UpdatedAt
		time.Sleep(5 * time.Millisecond) // the desk's clock is real; times are in ms
		f.do(t, http.MethodPatch, path, `{"status":"solved"}`).decode(t, http.StatusOK, &tk)
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if len(got.Notes) != 1 {
			t.Errorf("a no-op PATCH added notes: %+v", got.Notes)
		}
		if !got.UpdatedAt.Equal(before) {
			t.Errorf("a no-op PATCH moved the last activity from %v to %v", before, got.UpdatedAt)
		}

		f.do(t, http.MethodPatch, path, `{"status":"closed"}`).wantError(t, http.StatusUnprocessableEntity, `status must be open, pending or solved, not "closed"`)
		f.do(t, http.MethodPatch, path, `{}`).wantError(t, http.StatusUnprocessableEntity, "nothing to change")
		f.do(t, http.MethodPatch, path, `{"status":"open","assignee":3}`).wantError(t, http.StatusBadRequest, `unknown field "assignee" in request body; this request accepts "status", "assignee_id"`)
		f.do(t, http.MethodPatch, path, `{"status":1}`).wantError(t, http.StatusBadRequest, `field "status" must be a string, not a JSON number`)
		f.do(t, http.MethodPatch, "/api/v1/tickets/4242", `{"status":"open"}`).wantError(t, http.StatusNotFound, "ticket 4242 not found")
		f.do(t, http.MethodPatch, path, `status=open`, withHeader("Content-Type", "application/x-www-form-urlencoded")).
			wantError(t, http.StatusUnsupportedMediaType, "send Content-Type: application/json")

		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if got.Status != "solved" {
			t.Errorf("a refused PATCH changed the status to %s", got.Status)
		}
	})
}
