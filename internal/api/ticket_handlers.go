package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
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
}

func newTicketResponse(t store.Ticket) ticketResponse {
	return ticketResponse{
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
	for _, t := range list {
		out.Tickets = append(out.Tickets, newTicketResponse(t))
	}
	writeJSON(w, r, http.StatusOK, out)
}

// ticketFilter validates the query of GET /tickets. A non-empty message is
// the client's mistake (400); an error is the server's.
func (h *handler) ticketFilter(r *http.Request) (f store.TicketFilter, message string, err error) {
	q, perr := url.ParseQuery(r.URL.RawQuery)
	if perr != nil {
		return f, "query string is malformed: " + perr.Error(), nil
	}
	known := []string{"status", "mailbox", "q", "limit", "offset"}
	for name, values := range q {
		if !slices.Contains(known, name) {
			return f, fmt.Sprintf("unknown query parameter %q; GET /api/v1/tickets accepts %s", name, strings.Join(known, ", ")), nil
		}
		if len(values) > 1 {
			return f, fmt.Sprintf("query parameter %s is given %d times; give it once", name, len(values)), nil
		}
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
			return f, fmt.Sprintf("query parameter offset must be a non-negative integer, not %q", s), nil
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

// ticketUpdate is the body of PATCH /tickets/{id}. Absent fields are left as they are.
type ticketUpdate struct {
	Status *string `json:"status"`
}

// updateTicket changes a ticket's status as the key's user; the change is
// recorded on the ticket's timeline as an event note.
func (h *handler) updateTicket(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	var req ticketUpdate
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Status == nil {
		writeError(w, r, http.StatusUnprocessableEntity, `nothing to change: send {"status": "open" | "pending" | "solved"}`)
		return
	}
	// desk.SetStatus validates the status.
	t, err := h.desk.SetStatus(r.Context(), id, currentUser(r), *req.Status)
	if err != nil {
		writeDeskError(w, r, id, err)
		return
	}
	writeJSON(w, r, http.StatusOK, newTicketResponse(t))
}
