package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

// The list's search box over HTTP, on both databases: words of message
// bodies, phrases, from:, ticket numbers (straight to the ticket), and a
// clear sentence for what cannot be searched, never a 500.
func TestTicketListSearch(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			e := newEnvOn(t, dialect)
			c := e.signedIn()
			now := time.Now().UTC()
			login, _ := e.ticket(store.Ticket{Subject: "Cannot sign in", RequesterName: "Alice Smith", RequesterAddress: "alice@customer.test",
				CreatedAt: now.Add(-3 * time.Hour)}, store.Message{TextBody: "Since the update the dashboard stays empty."})
			e.ticket(store.Ticket{Subject: "Payment problem", RequesterName: "Bob", RequesterAddress: "bob@shop.test", Status: store.StatusPending,
				CreatedAt: now.Add(-2 * time.Hour)}, store.Message{TextBody: fmt.Sprintf("My card declined; same as ticket %d.", login)})

			for _, tc := range []struct {
				q         string
				want, not []string
			}{
				{"dashboard", []string{"Cannot sign in", `value="dashboard"`}, []string{"Payment problem"}},
				{"DASHBOÄRD", []string{"Cannot sign in"}, []string{"Payment problem"}},
				{`"card declined"`, []string{"Payment problem"}, []string{"Cannot sign in"}},
				{`"declined card"`, []string{"No tickets match"}, nil},
				{"from:alice", []string{"Cannot sign in"}, []string{"Payment problem"}},
				{"from:customer.test status:open", []string{"Cannot sign in"}, []string{"Payment problem"}},
				{"status:pending", []string{"Payment problem", `Pending <span class="tab-count">1</span>`}, []string{"Cannot sign in"}},
				{"mailbox:support@example.com -dashboard", []string{"Payment problem"}, []string{"Cannot sign in"}},
				{"#99999", []string{"No tickets match"}, nil},
				{"NEAR(dashboard) OR", []string{"No tickets match"}, nil},
			} {
				res, body := e.get(c, "/tickets?q="+url.QueryEscape(tc.q))
				wantStatus(t, res, http.StatusOK)
				for _, s := range tc.want {
					if !strings.Contains(body, s) {
						t.Errorf("q=%s: the page lacks %q", tc.q, s)
					}
				}
				for _, s := range tc.not {
					if strings.Contains(body, s) {
						t.Errorf("q=%s: the page has %q", tc.q, s)
					}
				}
			}

			// A ticket number goes to the ticket.
			for _, q := range []string{fmt.Sprintf("#%d", login), fmt.Sprint(login)} {
				res, _ := e.get(c, "/tickets?q="+url.QueryEscape(q))
				wantStatus(t, res, http.StatusSeeOther)
				if loc := res.Header.Get("Location"); loc != fmt.Sprintf("/tickets/%d", login) {
					t.Errorf("q=%s: redirect to %q", q, loc)
				}
			}

			// What cannot be searched says why, next to the search box.
			for _, tc := range []struct{ q, want string }{
				{`"card declined`, "The quote at character 1 is not closed"},
				{"colour:red", `&#34;colour:&#34; is not a filter`},
				{"status:closed", "status: must be open, pending or solved"},
				{strings.Repeat("dashboard ", 1100), "The search is too long"},
				{"\x00\x00", ""},
			} {
				res, body := e.get(c, "/tickets?q="+url.QueryEscape(tc.q))
				if tc.want == "" {
					if res.StatusCode == http.StatusInternalServerError {
						t.Errorf("q=%q: status 500", tc.q)
					}
					continue
				}
				wantStatus(t, res, http.StatusBadRequest)
				wantContains(t, body, `role="alert"`, tc.want, `aria-invalid="true"`, `All <span class="tab-count">2</span>`)
				if strings.Contains(body, "Cannot sign in") {
					t.Errorf("q=%q: tickets are listed under the error", tc.q)
				}
				// The refused query is in the search box and the page's own
				// address (for its live refresh), not in each tab's link.
				if n := strings.Count(body, "dashboard") / 1100; tc.want == "The search is too long" && n != 2 {
					t.Errorf("q=%q: the query appears %d times in the page, want twice (the search box, the page's address)", tc.q[:20], n)
				}
			}
		})
	}
}
