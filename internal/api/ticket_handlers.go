package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/search"
	"github.com/postdesk/postdesk/internal/store"
)

// Bounds of GET /tickets.
const (
	defaultTicketLimit = 50
	maxTicketLimit     = 200
	maxQueryLength     = 200
)

// ticketResponse is a ticket without its conversation.
type ticketResponse struct {
	ID           int64           `json:"id"`
	Mailbox      mailboxRef      `json:"mailbox"`
	Subject      string          `json:"subject"`
	Requester    addressResponse `json:"requester"`
	Status       string          `json:"status"`
	Bulk         bool            `json:"bulk"`
	MessageCount int             `json:"message_count"`
	Assignee     *assigneeRef    `json:"assignee"` // null: nobody
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// assigneeRef is the agent a ticket is assigned to.
type assigneeRef struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// ticketDetailResponse is a ticket with its messages and notes, oldest first.
type ticketDetailResponse struct {
	ticketResponse
	Messages []messageResponse `json:"messages"`
	Notes    []noteResponse    `json:"notes"`
}

type mailboxRef struct {
	ID      int64  `json:"id"`
	Address string `json:"address"`
}

type addressResponse struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

type ticketsResponse struct {
	Tickets []ticketResponse `json:"tickets"`
	Total   int              `json:"total"`
	Limit   int              `json:"limit"`
	Offset  int              `json:"offset"`
	// SearchIndexing, with q, counts the tickets whose newest words wait
	// for the background search indexer (after a bulk fetch on SQLite): a
	// search may miss them for a few seconds. Left out when 0.
	SearchIndexing int `json:"search_indexing,omitempty"`
}

func newTicketResponse(t store.Ticket) ticketResponse {
	out := ticketResponse{
		ID:           t.ID,
		Mailbox:      mailboxRef{ID: t.MailboxID, Address: t.MailboxAddress},
		Subject:      t.Subject,
		Requester:    addressResponse{Name: t.RequesterName, Address: t.RequesterAddress},
		Status:       t.Status,
		Bulk:         t.Bulk,
		MessageCount: t.MessageCount,
		CreatedAt:    utc(t.CreatedAt),
		UpdatedAt:    utc(t.UpdatedAt),
	}
	if t.AssigneeUserID != 0 {
		out.Assignee = &assigneeRef{ID: t.AssigneeUserID, Name: t.AssigneeName, Email: t.AssigneeEmail}
	}
	return out
}

// getTickets lists tickets by last activity, newest first; with q, the
// best matches first (a ticket number's ticket before all).
func (h *handler) getTickets(w http.ResponseWriter, r *http.Request) {
	f, msg, err := h.ticketFilter(r)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	if msg != "" {
		writeError(w, r, http.StatusBadRequest, msg)
		return
	}
	total, err := h.db.CountTickets(r.Context(), f)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	list, err := h.db.Tickets(r.Context(), f)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := ticketsResponse{Tickets: make([]ticketResponse, 0, len(list)), Total: total, Limit: f.Limit, Offset: f.Offset}
	if len(f.Search.Terms) > 0 {
		if out.SearchIndexing, err = h.db.SearchBacklog(r.Context()); err != nil {
			writeInternalError(w, r, err)
			return
		}
	}
	for _, t := range list {
		out.Tickets = append(out.Tickets, newTicketResponse(t))
	}
	writeJSON(w, r, http.StatusOK, out)
}

// checkQuery parses a request's query string, whose parameters must be
// among known and each given once; a non-empty message is the client's
// mistake (what names the request in it).
func checkQuery(r *http.Request, what string, known ...string) (url.Values, string) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "query string is malformed: " + err.Error()
	}
	for name, values := range q {
		if !slices.Contains(known, name) {
			return nil, fmt.Sprintf("unknown query parameter %q; %s accepts %s", name, what, strings.Join(known, ", "))
		}
		if len(values) > 1 {
			return nil, fmt.Sprintf("query parameter %s is given %d times; give it once", name, len(values))
		}
	}
	return q, ""
}

// ticketFilter validates the query of GET /tickets. A non-empty message is
// the client's mistake (400); an error is the server's.
func (h *handler) ticketFilter(r *http.Request) (f store.TicketFilter, message string, err error) {
	q, message := checkQuery(r, "GET /api/v1/tickets", "view", "status", "mailbox", "q", "limit", "offset")
	if message != "" {
		return f, message, nil
	}
	switch v := q.Get("view"); v {
	case "", "all":
	case "mine":
		f.Assignee = currentUser(r).ID
	case "unassigned":
		f.Assignee = store.Unassigned
	default:
		return f, fmt.Sprintf("query parameter view must be mine, unassigned or all, not %q", v), nil
	}
	if s := q.Get("status"); s != "" {
		if !store.ValidStatus(s) {
			return f, fmt.Sprintf("query parameter status must be open, pending or solved, not %q", s), nil
		}
		f.Status = s
	}
	if s := strings.TrimSpace(q.Get("mailbox")); s != "" {
		var mb store.Mailbox
		var err error
		if id, perr := strconv.ParseInt(s, 10, 64); perr == nil {
			mb, err = h.db.Mailbox(r.Context(), id)
		} else if strings.Contains(s, "@") {
			mb, err = h.db.MailboxByAddress(r.Context(), s)
		} else {
			return f, fmt.Sprintf("query parameter mailbox must be a mailbox id or address, not %q", s), nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return f, fmt.Sprintf("query parameter mailbox: there is no mailbox %q (GET /api/v1/mailboxes lists them)", s), nil
		}
		if err != nil {
			return f, "", err
		}
		f.MailboxID = mb.ID
	}
	if s := strings.TrimSpace(q.Get("q")); s != "" {
		if utf8.RuneCountInString(s) > maxQueryLength {
			return f, fmt.Sprintf("query parameter q is longer than %d characters", maxQueryLength), nil
		}
		var qerr *search.Error
		if f.Search, err = search.Parse(s); errors.As(err, &qerr) {
			return f, "query parameter q: " + qerr.Msg, nil
		} else if err != nil {
			return f, "", err
		}
		f.Me = currentUser(r).ID // assignee:me
	}
	f.Limit = defaultTicketLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTicketLimit {
			return f, fmt.Sprintf("query parameter limit must be an integer from 1 to %d, not %q", maxTicketLimit, s), nil
		}
		f.Limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1<<31-1 {
			return f, fmt.Sprintf("query parameter offset must be an integer from 0 to %d, not %q", 1<<31-1, s), nil
		}
		f.Offset = n
	}
	return f, "", nil
}

// getTicket answers a ticket with its messages (HTML sanitized) and notes.
func (h *handler) getTicket(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	t, err := h.db.Ticket(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("ticket %d not found", id))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	msgs, err := h.db.TicketMessages(r.Context(), id)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	notes, err := h.db.TicketNotes(r.Context(), id)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := ticketDetailResponse{
		ticketResponse: newTicketResponse(t),
		Messages:       make([]messageResponse, 0, len(msgs)),
		Notes:          make([]noteResponse, 0, len(notes)),
	}
	for _, m := range msgs {
		out.Messages = append(out.Messages, newMessageResponse(m))
	}
	for _, n := range notes {
		out.Notes = append(out.Notes, newNoteResponse(n))
	}
	writeJSON(w, r, http.StatusOK, out)
}

// ticketUpdate is the body of PATCH /tickets/{id}. Absent fields are left
// as they are; "assignee_id": null unassigns.
type ticketUpdate struct {
	Status     *string         `json:"status"`
	AssigneeID json.RawMessage `json:"assignee_id"`
}

// updateTicket changes a ticket's status and assignee as the key's user,
// in one transaction; each change is recorded on the ticket's timeline as
// an event note.
func (h *handler) updateTicket(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	var req ticketUpdate
	if !decodeJSON(w, r, &req) {
		return
	}
	change := desk.TicketChange{Status: req.Status}
	if req.AssigneeID != nil {
		a, ok := assigneeID(w, r, req.AssigneeID)
		if !ok {
			return
		}
		change.Assignee = &a
	}
	if change.Status == nil && change.Assignee == nil {
		writeError(w, r, http.StatusUnprocessableEntity, `nothing to change: send {"status": "open" | "pending" | "solved"} and/or {"assignee_id": a user's id | null}`)
		return
	}
	// desk.Update validates the status and the assignee.
	t, err := h.desk.Update(r.Context(), id, currentUser(r), change)
	if err != nil {
		writeDeskError(w, r, id, err)
		return
	}
	writeJSON(w, r, http.StatusOK, newTicketResponse(t))
}

// assigneeID reads "assignee_id": a user's id, or null for nobody (0); on
// failure it answers 400 and returns false.
func assigneeID(w http.ResponseWriter, r *http.Request, raw json.RawMessage) (int64, bool) {
	if string(raw) == "null" {
		return 0, true
	}
	var id int64
	if err := json.Unmarshal(raw, &id); err != nil || id <= 0 {
		writeError(w, r, http.StatusBadRequest, `field "assignee_id" must be a user's id (a positive integer) or null, not `+string(raw))
		return 0, false
	}
	return id, true
}

// bulkAssign is the body of POST /tickets/assign.
type bulkAssign struct {
	TicketIDs  []int64         `json:"ticket_ids"`
	AssigneeID json.RawMessage `json:"assignee_id"`
}

// assignTickets assigns several tickets to one user (or to nobody) as the
// key's user, in one transaction: all of them, or none when one is refused.
func (h *handler) assignTickets(w http.ResponseWriter, r *http.Request) {
	var req bulkAssign
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.AssigneeID == nil {
		writeError(w, r, http.StatusUnprocessableEntity, `send "assignee_id": a user's id, or null to unassign`)
		return
	}
	a, ok := assigneeID(w, r, req.AssigneeID)
	if !ok {
		return
	}
	list, err := h.desk.Assign(r.Context(), req.TicketIDs, a, currentUser(r))
	switch {
	case errors.Is(err, desk.ErrInvalid):
		writeInvalid(w, r, http.StatusUnprocessableEntity, err)
		return
	case err != nil:
		writeInternalError(w, r, err)
		return
	}
	out := assignedResponse{Tickets: make([]ticketResponse, 0, len(list))}
	for _, t := range list {
		out.Tickets = append(out.Tickets, newTicketResponse(t))
	}
	writeJSON(w, r, http.StatusOK, out)
}

// assignedResponse is the tickets of POST /tickets/assign as they are after.
type assignedResponse struct {
	Tickets []ticketResponse `json:"tickets"`
}
