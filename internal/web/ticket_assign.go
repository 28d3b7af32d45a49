package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// listFlashCookie carries a one-time sentence to the ticket list after a
// bulk assignment.
const listFlashCookie = "postdesk_list_flash"

// listParams are the list's GET parameters that the bulk form carries
// along, so the list comes back as it was.
var listParams = []string{"view", "status", "mailbox", "q", "page"}

// ticketsAssign assigns the tickets checked on the list: to the agent in
// the select ("assign"), to the agent themself ("take") or to nobody
// ("unassign"), then returns to the same list. A refusal (nothing checked,
// a disabled agent) shows the list again with the boxes still checked.
func (h *Handler) ticketsAssign(w http.ResponseWriter, r *http.Request) {
	me := current(r).user
	back := url.Values{}
	for _, k := range listParams {
		if v := r.PostFormValue(k); v != "" {
			back.Set(k, v)
		}
	}
	var ids []int64
	selected := map[int64]bool{}
	for _, s := range r.PostForm["ticket"] {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			ids, selected[id] = append(ids, id), true
		}
	}
	action := r.PostFormValue("action")
	var assignee int64
	switch action {
	case "take":
		assignee = me.ID
	case "unassign":
	case "assign":
		var err error
		if assignee, err = strconv.ParseInt(r.PostFormValue("assignee"), 10, 64); err != nil || assignee <= 0 {
			h.renderTicketList(w, r, back, http.StatusUnprocessableEntity, bulkForm{Selected: selected, Error: "Choose whom to assign the tickets to."})
			return
		}
	default:
		h.renderTicketList(w, r, back, http.StatusUnprocessableEntity, bulkForm{Selected: selected, Error: "Choose Assign, Take or Unassign."})
		return
	}
	list, err := h.desk.Assign(r.Context(), ids, assignee, me)
	switch {
	case errors.Is(err, desk.ErrInvalid):
		h.renderTicketList(w, r, back, http.StatusUnprocessableEntity, bulkForm{Selected: selected, Error: userMessage(err)})
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: listFlashCookie, Value: fmt.Sprintf("%s.%d.%d", action, len(list), assignee),
		Path: "/tickets", MaxAge: 120, HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, withQuery("/tickets", back), http.StatusSeeOther)
}

// takeListFlash reads and clears the list's flash cookie and writes its
// sentence.
func (h *Handler) takeListFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(listFlashCookie)
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: listFlashCookie, Value: "", Path: "/tickets", MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return ""
	}
	n, _ := strconv.Atoi(parts[1])
	user, _ := strconv.ParseInt(parts[2], 10, 64)
	tickets := strconv.Itoa(n) + " " + plural(n, "ticket", "tickets")
	switch parts[0] {
	case "take":
		return "You took " + tickets + "."
	case "unassign":
		return "Unassigned " + tickets + "."
	case "assign":
		u, err := h.db.User(r.Context(), user)
		if err != nil {
			return "Assigned " + tickets + "."
		}
		return "Assigned " + tickets + " to " + userLabel(u) + "."
	}
	return ""
}

// ticketAssign assigns one ticket from its page: "Take it" gives it to the
// agent, else to the agent chosen in "Assign to" (0: nobody).
func (h *Handler) ticketAssign(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, fmt.Sprintf("There is no ticket %q.", r.PathValue("id")))
		return
	}
	me := current(r).user
	assignee := me.ID
	if r.PostFormValue("take") == "" {
		var perr error
		assignee, perr = strconv.ParseInt(r.PostFormValue("assignee"), 10, 64)
		if perr != nil || assignee < 0 {
			h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{AssignError: "Choose whom to assign the ticket to."})
			return
		}
	}
	change := desk.TicketChange{Assignee: &assignee}
	if was, err := strconv.ParseInt(r.PostFormValue("assignee_was"), 10, 64); err == nil {
		change.AssigneeWas = &was // whom the page showed: a colleague who took it since keeps it
	}
	_, err := h.desk.Update(r.Context(), id, me, change)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, ticketMissing(id))
		return
	case errors.Is(err, desk.ErrInvalid):
		h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{AssignError: userMessage(err)})
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, ticketURL(id), http.StatusSeeOther)
}

// assigneeOptions lists the agents a ticket can be given to, the signed-in
// one marked "(you)", with selected chosen.
func (h *Handler) assigneeOptions(ctx context.Context, me store.User, selected int64) ([]assigneeOption, error) {
	users, err := h.desk.AssignableUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]assigneeOption, 0, len(users))
	for _, u := range users {
		o := assigneeOption{ID: u.ID, Label: userLabel(u), Selected: u.ID == selected}
		if u.ID == me.ID {
			o.Label += " (you)"
		}
		out = append(out, o)
	}
	return out, nil
}

// userLabel names a user for people: the name, else the email.
func userLabel(u store.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}
