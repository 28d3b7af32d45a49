package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/search"
	"github.com/postdesk/postdesk/internal/store"
)

// ticketsPerPage is the length of a page of the ticket list.
const ticketsPerPage = 50

type ticketListPage struct {
	page
	Tickets   []store.Ticket
	Mailboxes []store.Mailbox
	Tabs      []statusTab
	Status    string
	MailboxID int64
	Query     string
	QueryErr  string // why the search cannot be run, in words for the user
	Filtered  bool   // a mailbox or search narrows the list
	All       int    // tickets in every status (with the mailbox and search)
	Total     int    // tickets in the current tab
	First     int    // 1-based number of the first ticket shown
	Last      int
	PrevURL   string
	NextURL   string
	ClearURL  string
}

type statusTab struct {
	Label   string
	Status  string
	Count   int
	URL     string
	Current bool
}

// ticketList shows the tickets, newest activity first, with status tabs, a
// mailbox filter and a search box, all plain GET parameters. A search is
// ranked (best match first); a search that is a ticket number that exists
// ("#123", "123") goes straight to that ticket.
func (h *Handler) ticketList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p := ticketListPage{page: h.base(r, "tickets"), Query: strings.TrimSpace(q.Get("q"))}
	if s := q.Get("status"); store.ValidStatus(s) {
		p.Status = s
	}
	p.MailboxID, _ = strconv.ParseInt(q.Get("mailbox"), 10, 64)
	pageNo, _ := strconv.Atoi(q.Get("page"))
	pageNo = max(pageNo, 1)

	var err error
	if p.Mailboxes, err = h.db.Mailboxes(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	if p.MailboxID != 0 && !hasMailbox(p.Mailboxes, p.MailboxID) {
		p.MailboxID = 0
	}
	p.Filtered = p.MailboxID != 0 || p.Query != ""
	p.ClearURL = "/tickets"
	if p.Status != "" {
		p.ClearURL += "?status=" + p.Status
	}
	query, err := search.Parse(p.Query)
	if err != nil {
		var qerr *search.Error
		if !errors.As(err, &qerr) {
			h.serverError(w, r, err)
			return
		}
		// The tabs still count without the search; the list is not shown.
		p.QueryErr = qerr.Msg
	}
	if query.TicketID != 0 {
		if _, err := h.db.Ticket(ctx, query.TicketID); err == nil {
			http.Redirect(w, r, "/tickets/"+strconv.FormatInt(query.TicketID, 10), http.StatusSeeOther)
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
	}
	f := store.TicketFilter{Status: p.Status, MailboxID: p.MailboxID, Search: query,
		Limit: ticketsPerPage, Offset: (pageNo - 1) * ticketsPerPage}
	counts, err := h.db.CountTicketsByStatus(ctx, f)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	all := counts[store.StatusOpen] + counts[store.StatusPending] + counts[store.StatusSolved]
	for _, s := range []string{"", store.StatusOpen, store.StatusPending, store.StatusSolved} {
		tab := statusTab{Label: "All", Status: s, Count: all, Current: s == p.Status}
		if s != "" {
			tab.Label, tab.Count = statusLabel(s), counts[s]
		}
		tab.URL = p.listURL(s, 1)
		p.Tabs = append(p.Tabs, tab)
	}
	p.All, p.Total = all, all
	if p.Status != "" {
		p.Total = counts[p.Status]
	}
	if p.QueryErr != "" {
		h.render(w, r, http.StatusBadRequest, "ticket_list", p)
		return
	}
	if p.Tickets, err = h.db.Tickets(ctx, f); err != nil {
		if errors.Is(err, ctx.Err()) {
			return
		}
		h.serverError(w, r, err)
		return
	}
	if len(p.Tickets) > 0 {
		p.First = f.Offset + 1
		p.Last = f.Offset + len(p.Tickets)
	}
	if pageNo > 1 {
		p.PrevURL = p.listURL(p.Status, pageNo-1)
	}
	if f.Offset+len(p.Tickets) < p.Total {
		p.NextURL = p.listURL(p.Status, pageNo+1)
	}
	h.render(w, r, http.StatusOK, "ticket_list", p)
}

// listURL is the list with the page's filters, another status and page.
func (p *ticketListPage) listURL(status string, pageNo int) string {
	v := url.Values{}
	if status != "" {
		v.Set("status", status)
	}
	if p.MailboxID != 0 {
		v.Set("mailbox", strconv.FormatInt(p.MailboxID, 10))
	}
	if p.Query != "" {
		v.Set("q", p.Query)
	}
	if pageNo > 1 {
		v.Set("page", strconv.Itoa(pageNo))
	}
	if len(v) == 0 {
		return "/tickets"
	}
	return "/tickets?" + v.Encode()
}

func hasMailbox(list []store.Mailbox, id int64) bool {
	for _, m := range list {
		if m.ID == id {
			return true
		}
	}
	return false
}
