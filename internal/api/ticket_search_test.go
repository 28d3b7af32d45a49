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

// GET /api/v1/tickets?q= searches with the list's syntax: ranked, a
// ticket number's ticket first, and a 400 that says what to change.
func TestTicketSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var other int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			other, err = tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mailbox.ID, Subject: "Toner", RequesterAddress: "cy@customer.test",
				CreatedAt: testNow.Add(time.Hour)})
			if err != nil {
				return err
			}
			if _, err := tx.SetTicketAssignee(ctx, f.ticketID, f.user.ID, testNow); err != nil {
				return err
			}
			return tx.InsertMessage(ctx, &store.Message{MailboxID: f.mailbox.ID, TicketID: other, Direction: "in", Kind: store.KindEmail,
				DedupeKey: "mid:toner", FromAddress: "cy@customer.test", ReceivedAt: testNow.Add(time.Hour),
				TextBody: fmt.Sprintf("Toner empty again, like in ticket %d. Printer fine.", f.ticketID)})
		})
		if err != nil {
			t.Fatal(err)
		}
		ids := func(q string) []int64 {
			t.Helper()
			var out ticketListJSON
			f.do(t, http.MethodGet, "/api/v1/tickets?q="+url.QueryEscape(q), "").decode(t, http.StatusOK, &out)
			var got []int64
			for _, tk := range out.Tickets {
				got = append(got, tk.ID)
			}
			if out.Total != len(got) {
				t.Errorf("q=%s: total %d, %d tickets", q, out.Total, len(got))
			}
			return got
		}
		for _, tc := range []struct {
			q    string
			want []int64
		}{
			{"help", []int64{f.ticketID}}, // only in the first ticket's message
			{"toner empty", []int64{other}},
			{"printer", []int64{f.ticketID, other}},              // in a subject ranks above in a body
			{fmt.Sprint(f.ticketID), []int64{f.ticketID, other}}, // the ticket, then one that names it
			{fmt.Sprintf("#%d", other), []int64{other}},
			{"from:ann", []int64{f.ticketID}},
			{`"fine printer"`, nil},
			{"assignee:me", []int64{f.ticketID}}, // the key's user
			{"assignee:none printer", []int64{other}},
		} {
			if got := ids(tc.q); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("q=%s: %v, want %v", tc.q, got, tc.want)
			}
		}
		// A word the toner ticket gains in a bulk load: on SQLite it waits
		// for the indexer, and the answer says how many tickets do.
		err = db.Write(ctx, func(tx *store.Tx) error {
			tx.BulkLoad()
			return tx.InsertMessage(ctx, &store.Message{MailboxID: f.mailbox.ID, TicketID: other, Direction: "in", Kind: store.KindEmail,
				DedupeKey: "mid:toner-2", FromAddress: "cy@customer.test", ReceivedAt: testNow.Add(2 * time.Hour), TextBody: "Now the drum squeaks."})
		})
		if err != nil {
			t.Fatal(err)
		}
		indexing := func(q string) (hits, waiting int) {
			t.Helper()
			out := ticketListJSON{SearchIndexing: -1}
			f.do(t, http.MethodGet, "/api/v1/tickets?q="+url.QueryEscape(q), "").decode(t, http.StatusOK, &out)
			return len(out.Tickets), out.SearchIndexing
		}
		if db.Dialect() == "sqlite" { // PostgreSQL grows documents at once
			if hits, waiting := indexing("squeaks"); hits != 0 || waiting != 1 {
				t.Errorf("before the indexer: %d hits, search_indexing %d; want 0 and 1", hits, waiting)
			}
			if _, waiting := indexing("status:open"); waiting != -1 {
				t.Errorf("a search without words: search_indexing %d, want it left out", waiting)
			}
			if _, err := db.ReindexSearch(ctx, 0, nil); err != nil {
				t.Fatal(err)
			}
		}
		if hits, waiting := indexing("squeaks"); hits != 1 || waiting != -1 {
			t.Errorf("once indexed: %d hits, search_indexing %d; want 1, and it left out", hits, waiting)
		}
		for _, tc := range []struct{ q, want string }{
			{`"toner`, "query parameter q: The quote at character 1 is not closed"},
			{"foo:bar", `query parameter q: "foo:" is not a filter`},
			{"-toner", "query parameter q: Add a word to look for"},
			{strings.Repeat("x", 201), "query parameter q is longer than 200 characters"},
		} {
			res := f.do(t, http.MethodGet, "/api/v1/tickets?q="+url.QueryEscape(tc.q), "")
			var e struct {
				Error string `json:"error"`
			}
			res.decode(t, http.StatusBadRequest, &e)
			if !strings.Contains(e.Error, tc.want) {
				t.Errorf("q=%.20s: error %q, want %q", tc.q, e.Error, tc.want)
			}
		}
	})
}
