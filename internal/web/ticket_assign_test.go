package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// assignSeed adds a second agent and three tickets; the first is the
// signed-in agent's, the others nobody's.
func assignSeed(t *testing.T, e *env) (ann store.User, ids []int64) {
	t.Helper()
	ctx := context.Background()
	ann, _, err := auth.CreateUser(ctx, e.db, "ann@example.com", "Ann Agent", store.RoleAgent, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, s := range []string{"Printer on fire", "Invoice is wrong", "Login broken"} {
		id, _ := e.ticket(store.Ticket{Subject: s, CreatedAt: now.Add(time.Duration(i-5) * time.Hour)}, store.Message{TextBody: "help"})
		ids = append(ids, id)
	}
	if _, err := e.h.desk.Take(ctx, ids[0], e.user); err != nil {
		t.Fatal(err)
	}
	return ann, ids
}

func TestTicketListViews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, ids := assignSeed(t, e)
	c := e.signedIn()

	_, body := e.get(c, "/tickets")
	wantContains(t, body, `<nav class="views" aria-label="Whose tickets">`,
		`<a href="/tickets?view=mine">Mine <span class="tab-count">1</span>`,
		`<a href="/tickets?view=unassigned">Unassigned <span class="tab-count">2</span>`,
		`<a href="/tickets" aria-current="page">All <span class="tab-count">3</span>`,
		`<th scope="col">Assignee</th>`, `<span class="assignee">Agent</span>`, `<span class="unassigned">Unassigned</span>`,
		`name="ticket" value="`+fmt.Sprint(ids[1])+`"`, `<option value="`+fmt.Sprint(e.user.ID)+`">Agent (you)</option>`, "Ann Agent")

	_, body = e.get(c, "/tickets?view=mine")
	wantContains(t, body, "Printer on fire", `<a href="/tickets?view=mine" aria-current="page">Mine`, `<input type="hidden" name="view" value="mine">`)
	wantNotContains(t, body, "Invoice is wrong", "Login broken")

	// The view keeps the status and search, and the status tabs keep the view.
	_, body = e.get(c, "/tickets?view=unassigned&status=open&q=invoice")
	wantContains(t, body, "Invoice is wrong", `href="/tickets?q=invoice&amp;status=open&amp;view=mine">Mine <span class="tab-count">0</span>`,
		`aria-current="page">Unassigned <span class="tab-count">1</span>`, `href="/tickets?q=invoice&amp;view=unassigned">All`,
		`href="/tickets?status=open&amp;view=unassigned">Clear filters`)
	wantNotContains(t, body, "Login broken", "Printer on fire")

	// Empty views say what they are.
	_, body = e.get(c, "/tickets?view=mine&status=solved")
	wantContains(t, body, "No solved tickets assigned to you")
	_, body = e.get(c, "/tickets?view=unassigned&status=pending")
	wantContains(t, body, "No unassigned pending tickets")
}

func TestTicketListBulkAssign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ann, ids := assignSeed(t, e)
	c := e.signedIn()
	token := e.csrf(c)
	ctx := context.Background()
	assignee := func(id int64) int64 {
		t.Helper()
		tk, err := e.db.Ticket(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tk.AssigneeUserID
	}

	// Assign two to Ann from the Unassigned view, searching: back to the same list.
	res := e.post(c, "/tickets/assign", url.Values{"csrf": {token}, "action": {"assign"}, "assignee": {fmt.Sprint(ann.ID)},
		"ticket": {fmt.Sprint(ids[1]), fmt.Sprint(ids[2])}, "view": {"unassigned"}, "q": {"o"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/tickets?q=o&view=unassigned" {
		t.Errorf("after the bulk assignment at %s", loc)
	}
	if assignee(ids[1]) != ann.ID || assignee(ids[2]) != ann.ID || assignee(ids[0]) != e.user.ID {
		t.Errorf("assignees = %d %d %d", assignee(ids[0]), assignee(ids[1]), assignee(ids[2]))
	}
	_, body := e.get(c, "/tickets")
	wantContains(t, body, `<p class="flash" role="status">Assigned 2 tickets to Ann Agent.</p>`)
	_, body = e.get(c, "/tickets")
	wantNotContains(t, body, "Assigned 2 tickets") // once

	// Take one, unassign two.
	wantStatus(t, e.post(c, "/tickets/assign", url.Values{"csrf": {token}, "action": {"take"}, "ticket": {fmt.Sprint(ids[1])}}), http.StatusSeeOther)
	_, body = e.get(c, "/tickets")
	wantContains(t, body, "You took 1 ticket.")
	if assignee(ids[1]) != e.user.ID {
		t.Errorf("take: assignee %d", assignee(ids[1]))
	}
	wantStatus(t, e.post(c, "/tickets/assign", url.Values{"csrf": {token}, "action": {"unassign"}, "ticket": {fmt.Sprint(ids[0]), fmt.Sprint(ids[1])}}), http.StatusSeeOther)
	if assignee(ids[0]) != 0 || assignee(ids[1]) != 0 {
		t.Errorf("unassign: assignees %d %d", assignee(ids[0]), assignee(ids[1]))
	}
	notes, _ := e.db.TicketNotes(ctx, ids[1])
	var bodies []string
	for _, n := range notes {
		bodies = append(bodies, n.Body)
	}
	if got := strings.Join(bodies, " | "); got != "Assigned to Ann Agent by Agent | Taken by Agent | Unassigned by Agent" {
		t.Errorf("timeline of ticket %d: %s", ids[1], got)
	}

	// Refusals show the list again, boxes still checked.
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"action": {"take"}}, "Select at least one ticket to assign."},
		{url.Values{"action": {"assign"}, "assignee": {""}, "ticket": {fmt.Sprint(ids[2])}}, "Choose whom to assign the tickets to."},
		{url.Values{"action": {"assign"}, "assignee": {"99999"}, "ticket": {fmt.Sprint(ids[2])}}, "There is no user 99999 to assign tickets to."},
		{url.Values{"action": {"assign"}, "assignee": {fmt.Sprint(ann.ID)}, "ticket": {fmt.Sprint(ids[2]), "99999"}}, "There is no ticket 99999."},
	} {
		tc.form.Set("csrf", token)
		tc.form.Set("view", "mine")
		res := e.post(c, "/tickets/assign", tc.form)
		wantStatus(t, res, http.StatusUnprocessableEntity)
		b := readBody(res)
		wantContains(t, b, `id="bulk-error" role="alert">`+tc.want+`</p>`, `aria-current="page">Mine`)
	}
	res = e.post(c, "/tickets/assign", url.Values{"csrf": {token}, "action": {"assign"}, "assignee": {""}, "ticket": {fmt.Sprint(ids[0])}})
	wantContains(t, readBody(res), `value="`+fmt.Sprint(ids[0])+`" id="check-`+fmt.Sprint(ids[0])+`" checked`)
	if assignee(ids[2]) != ann.ID {
		t.Errorf("a refused batch changed ticket %d", ids[2])
	}

	// Without the CSRF token nothing happens.
	wantStatus(t, e.post(c, "/tickets/assign", url.Values{"action": {"take"}, "ticket": {fmt.Sprint(ids[2])}}), http.StatusForbidden)
	if assignee(ids[2]) != ann.ID {
		t.Errorf("a forged form changed ticket %d", ids[2])
	}
}

func TestTicketPageAssign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ann, ids := assignSeed(t, e)
	c := e.signedIn()
	token := e.csrf(c)
	id := ids[1]
	path := fmt.Sprintf("/tickets/%d", id)

	_, body := e.get(c, path)
	wantContains(t, body, `<dd class="ticket-assignee">Nobody</dd>`, `<label for="assignee">Assign to</label>`,
		`<option value="0" selected>Nobody</option>`, `name="take" value="1"`, ">Take it</button>",
		"Sending also assigns this ticket to you")

	res := e.post(c, path+"/assign", url.Values{"csrf": {token}, "take": {"1"}, "assignee": {"0"}})
	wantStatus(t, res, http.StatusSeeOther)
	_, body = e.get(c, path)
	wantContains(t, body, `<dd class="ticket-assignee">Agent (you)</dd>`, "Taken by Agent", `<option value="`+fmt.Sprint(e.user.ID)+`" selected>Agent (you)</option>`)
	wantNotContains(t, body, ">Take it</button>", "Sending also assigns this ticket to you")

	wantStatus(t, e.post(c, path+"/assign", url.Values{"csrf": {token}, "assignee": {fmt.Sprint(ann.ID)}}), http.StatusSeeOther)
	_, body = e.get(c, path)
	wantContains(t, body, `<dd class="ticket-assignee">Ann Agent</dd>`, "Assigned to Ann Agent by Agent", ">Take it</button>")

	// A disabled agent is refused, and still shown as the owner of a ticket they have.
	if _, err := e.db.SQL().Exec(`UPDATE users SET disabled_at = 1 WHERE id = ?`, ann.ID); err != nil {
		t.Fatal(err)
	}
	res = e.post(c, path+"/assign", url.Values{"csrf": {token}, "assignee": {fmt.Sprint(ann.ID)}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, readBody(res), `id="assign-error" role="alert">Ann Agent is disabled: tickets cannot be assigned to them.</p>`,
		`<option value="`+fmt.Sprint(ann.ID)+`" selected>Ann Agent (disabled)</option>`)

	wantStatus(t, e.post(c, path+"/assign", url.Values{"csrf": {token}, "assignee": {"0"}}), http.StatusSeeOther)
	_, body = e.get(c, path)
	wantContains(t, body, `<dd class="ticket-assignee">Nobody</dd>`, "Unassigned by Agent")
	wantNotContains(t, body, "(disabled)")

	wantStatus(t, e.post(c, "/tickets/99999/assign", url.Values{"csrf": {token}, "take": {"1"}}), http.StatusNotFound)
	wantStatus(t, e.post(c, path+"/assign", url.Values{"csrf": {token}, "assignee": {"someone"}}), http.StatusUnprocessableEntity)
}
