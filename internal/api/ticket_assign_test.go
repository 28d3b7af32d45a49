package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/postdesk/postdesk/internal/store"
	"github.com/postdesk/postdesk/internal/store/storetest"
)

type assigneeJSON struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// assignedTicketJSON is a ticket with its assignee (null: nobody).
type assignedTicketJSON struct {
	ID       int64         `json:"id"`
	Status   string        `json:"status"`
	Assignee *assigneeJSON `json:"assignee"`
}

// moreTickets adds n tickets to the fixture's mailbox.
func moreTickets(t *testing.T, f *fixture, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	var ids []int64
	err := f.db.Write(ctx, func(tx *store.Tx) error {
		for i := range n {
			id, err := tx.CreateTicket(ctx, store.Ticket{MailboxID: f.mailbox.ID, Subject: fmt.Sprintf("Question %d", i),
				RequesterAddress: "bob@customer.test", CreatedAt: testNow})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestPatchTicketAssignee(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin, err := db.UserByEmail(context.Background(), "admin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("/api/v1/tickets/%d", f.ticketID)

		var tk assignedTicketJSON
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &tk)
		if tk.Assignee != nil {
			t.Fatalf("a new ticket's assignee = %+v, want null", tk.Assignee)
		}

		// Assign to the admin and solve, in one request.
		f.do(t, http.MethodPatch, path, fmt.Sprintf(`{"assignee_id": %d, "status": "solved"}`, admin.ID)).decode(t, http.StatusOK, &tk)
		if tk.Assignee == nil || *tk.Assignee != (assigneeJSON{admin.ID, "Ada Admin", "admin@example.com"}) || tk.Status != "solved" {
			t.Errorf("patched ticket = %+v, assignee %+v", tk, tk.Assignee)
		}
		var got ticketJSON
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if len(got.Notes) != 2 || got.Notes[0].Body != "Assigned to Ada Admin by Agent Smith" || got.Notes[1].Body != "Status changed from open to solved by agent@example.com" {
			t.Errorf("timeline = %+v", got.Notes)
		}
		// The same again records nothing; null unassigns.
		f.do(t, http.MethodPatch, path, fmt.Sprintf(`{"assignee_id": %d}`, admin.ID)).decode(t, http.StatusOK, &tk)
		f.do(t, http.MethodPatch, path, `{"assignee_id": null}`).decode(t, http.StatusOK, &tk)
		if tk.Assignee != nil {
			t.Errorf("after null: assignee %+v", tk.Assignee)
		}
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &got)
		if len(got.Notes) != 3 || got.Notes[2].Body != "Unassigned by Agent Smith" {
			t.Errorf("timeline = %+v", got.Notes)
		}
		n, err := db.EventsSince(context.Background(), 0, 100)
		if err != nil || len(n) != 2 || n[0].UserID != admin.ID || n[1].UserID != 0 || n[1].ActorUserID != f.user.ID {
			t.Errorf("events = %+v, %v", n, err)
		}

		// Refusals change nothing, the status included.
		f.do(t, http.MethodPatch, path, `{"assignee_id": 4242, "status": "open"}`).wantError(t, http.StatusUnprocessableEntity, "There is no user 4242 to assign tickets to.")
		f.do(t, http.MethodPatch, path, `{"assignee_id": "me"}`).wantError(t, http.StatusBadRequest, `field "assignee_id" must be a user's id (a positive integer) or null, not "me"`)
		f.do(t, http.MethodPatch, path, `{"assignee_id": 0}`).wantError(t, http.StatusBadRequest, `field "assignee_id" must be a user's id`)
		f.do(t, http.MethodPatch, "/api/v1/tickets/4242", `{"assignee_id": null}`).wantError(t, http.StatusNotFound, "ticket 4242 not found")
		f.do(t, http.MethodGet, path, "").decode(t, http.StatusOK, &tk)
		if tk.Status != "solved" || tk.Assignee != nil {
			t.Errorf("a refused PATCH changed the ticket: %+v", tk)
		}
	})
}

func TestBulkAssignAndViews(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		admin, err := db.UserByEmail(context.Background(), "admin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		ids := moreTickets(t, f, 3)

		// The users to assign to: the agent and the admin.
		var users struct {
			Users []struct {
				ID    int64  `json:"id"`
				Email string `json:"email"`
				Name  string `json:"name"`
				Role  string `json:"role"`
			} `json:"users"`
		}
		f.do(t, http.MethodGet, "/api/v1/users", "").decode(t, http.StatusOK, &users)
		if len(users.Users) != 2 || users.Users[0].ID != admin.ID || users.Users[0].Name != "Ada Admin" || users.Users[1].Email != "agent@example.com" {
			t.Errorf("users = %+v", users)
		}

		var res struct {
			Tickets []assignedTicketJSON `json:"tickets"`
		}
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", fmt.Sprintf(`{"ticket_ids": [%d, %d], "assignee_id": %d}`, ids[0], ids[1], f.user.ID)).
			decode(t, http.StatusOK, &res)
		if len(res.Tickets) != 2 || res.Tickets[0].ID != ids[0] || res.Tickets[1].Assignee == nil || res.Tickets[1].Assignee.ID != f.user.ID {
			t.Fatalf("bulk answer = %+v", res)
		}
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", fmt.Sprintf(`{"ticket_ids": [%d], "assignee_id": %d}`, ids[2], admin.ID)).
			decode(t, http.StatusOK, &res)

		views := func(query string) (ids []int64, total int) {
			t.Helper()
			var list struct {
				Tickets []assignedTicketJSON `json:"tickets"`
				Total   int                  `json:"total"`
			}
			f.do(t, http.MethodGet, "/api/v1/tickets"+query, "").decode(t, http.StatusOK, &list)
			for _, tk := range list.Tickets {
				ids = append(ids, tk.ID)
			}
			return ids, list.Total
		}
		if got, n := views("?view=mine"); n != 2 || len(got) != 2 {
			t.Errorf("mine = %v (total %d), want tickets %d and %d", got, n, ids[0], ids[1])
		}
		if got, n := views("?view=unassigned"); n != 1 || got[0] != f.ticketID {
			t.Errorf("unassigned = %v (total %d), want the fixture's ticket %d", got, n, f.ticketID)
		}
		if _, n := views("?view=all"); n != 4 {
			t.Errorf("all = %d tickets, want 4", n)
		}
		if _, n := views("?view=mine&q=Question%202"); n != 0 {
			t.Errorf("mine with a search for the admin's ticket = %d, want 0", n)
		}
		f.do(t, http.MethodGet, "/api/v1/tickets?view=theirs", "").wantError(t, http.StatusBadRequest, `view must be mine, unassigned or all, not "theirs"`)

		// Null unassigns; a refused batch changes none of its tickets.
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", fmt.Sprintf(`{"ticket_ids": [%d], "assignee_id": null}`, ids[0])).decode(t, http.StatusOK, &res)
		if res.Tickets[0].Assignee != nil {
			t.Errorf("unassigned ticket = %+v", res.Tickets[0])
		}
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", fmt.Sprintf(`{"ticket_ids": [%d, 4242], "assignee_id": %d}`, ids[0], admin.ID)).
			wantError(t, http.StatusUnprocessableEntity, "There is no ticket 4242.")
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", `{"ticket_ids": [], "assignee_id": null}`).
			wantError(t, http.StatusUnprocessableEntity, "Select at least one ticket to assign.")
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", fmt.Sprintf(`{"ticket_ids": [%d]}`, ids[0])).
			wantError(t, http.StatusUnprocessableEntity, `send "assignee_id"`)
		f.do(t, http.MethodPost, "/api/v1/tickets/assign", `{"ticket_ids": "all", "assignee_id": null}`).
			wantError(t, http.StatusBadRequest, `field "ticket_ids" must be`)
		if got, n := views("?view=unassigned"); n != 2 {
			t.Errorf("after refusals unassigned = %v, want 2 tickets", got)
		}
	})
}
