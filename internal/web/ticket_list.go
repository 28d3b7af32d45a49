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
	Tickets []store.Ticket
	// NotSent marks the tickets shown that have a reply that failed for
	// good or whose outcome is unknown: an agent has to act on it.
	NotSent   map[int64]bool
	Mailboxes []store.Mailbox
	Views     []viewTab
	Tabs      []statusTab
	View      string // viewMine, viewUnassigned or viewAll
	Status    string
	MailboxID int64
	Query     string
	QueryErr  string // why the search cannot be run, in words for the user
	// Indexing counts, under a search, the tickets whose search document
	// waits for the background indexer (grown by a bulk fetch, or from
	// before an upgrade), in every mailbox: their newest words are not
	// found yet.
	Indexing int
	PageNo   int
	Filtered bool // a mailbox or search narrows the list
	All      int  // tickets in every status (with the view, mailbox and search)
	Total    int  // tickets in the current tab
	First    int  // 1-based number of the first ticket shown
	Last     int
	PrevURL  string
	NextURL  string
	ClearURL string
	// PastEnd: the page asked for is after the last (a link kept from
	// when there were more tickets); LastPage and its URL are where they end.
	PastEnd     bool
	LastPage    int
	LastPageURL string
	Bulk        bulkForm
	// LastEvent is the newest event id before the list was read (the
	// refresh script asks for changes since it); SelfURL redraws the page.
	LastEvent int64
	SelfURL   string
	PollMS    int64
}

// Ticket views: whose tickets the list shows.
const (
	viewMine       = "mine"
	viewUnassigned = "unassigned"
	viewAll        = "all"
)

type viewTab struct {
	Label   string
	View    string
	Count   int
	URL     string
	Current bool
}

type statusTab struct {
	Label   string
	Status  string
	Count   int
	URL     string
	Current bool
}

// bulkForm is the selection form around the list: the tickets checked, the
// agents to assign them to, and the outcome of the last assignment.
type bulkForm struct {
	Assignees []assigneeOption
	Selected  map[int64]bool // checked again after a refusal
	Error     string
	Flash     string
}

// assigneeOption is a user in an "Assign to" select.
type assigneeOption struct {
	ID       int64
	Label    string
	Selected bool
}

// ticketList shows the tickets, newest activity first, with view tabs
// (Mine, Unassigned, All), status tabs, a mailbox filter and a search box,
// all plain GET parameters, inside the bulk assignment form. A search is
// ranked (best match first); a search that is the number of a ticket that
// exists ("#123", "123") goes straight to that ticket.
func (h *Handler) ticketList(w http.ResponseWriter, r *http.Request) {
	h.renderTicketList(w, r, r.URL.Query(), http.StatusOK, bulkForm{Flash: h.takeListFlash(w, r)})
}

// renderTicketList renders the list that the parameters q (view, status,
// mailbox, q, page) select, with the bulk form's state.
func (h *Handler) renderTicketList(w http.ResponseWriter, r *http.Request, q url.Values, code int, bulk bulkForm) {
	ctx := r.Context()
	me := current(r).user
	p := ticketListPage{page: h.base(r, "tickets"), Query: strings.TrimSpace(q.Get("q")), View: viewAll, Bulk: bulk}
	if v := q.Get("view"); v == viewMine || v == viewUnassigned {
		p.View = v
	}
	if s := q.Get("status"); store.ValidStatus(s) {
		p.Status = s
	}
	p.MailboxID, _ = strconv.ParseInt(q.Get("mailbox"), 10, 64)
	p.PageNo, _ = strconv.Atoi(q.Get("page"))
	p.PageNo = max(p.PageNo, 1)

	var err error
	if p.LastEvent, err = h.db.LastEventID(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	p.SelfURL, p.PollMS = r.URL.RequestURI(), h.listPoll.Milliseconds()
	if p.Mailboxes, err = h.db.Mailboxes(ctx); err != nil {
		h.serverError(w, r, err)
		return
	}
	if p.MailboxID != 0 && !hasMailbox(p.Mailboxes, p.MailboxID) {
		p.MailboxID = 0
	}
	p.Filtered = p.MailboxID != 0 || p.Query != ""
	query, err := search.Parse(p.Query)
	if err != nil {
		var qerr *search.Error
		if !errors.As(err, &qerr) {
			h.serverError(w, r, err)
			return
		}
		// The tabs still count without the search; the list is not shown.
		p.QueryErr, code = qerr.Msg, http.StatusBadRequest
	}
	if query.TicketID != 0 && r.Method == http.MethodGet {
		if _, err := h.db.Ticket(ctx, query.TicketID); err == nil {
			http.Redirect(w, r, "/tickets/"+strconv.FormatInt(query.TicketID, 10), http.StatusSeeOther)
			return
		} else if !errors.Is(err, store.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
	}
	f := store.TicketFilter{Status: p.Status, MailboxID: p.MailboxID, Search: query, Me: me.ID,
		Limit: ticketsPerPage, Offset: (p.PageNo - 1) * ticketsPerPage}
	switch p.View {
	case viewMine:
		f.Assignee = me.ID
	case viewUnassigned:
		f.Assignee = store.Unassigned
	}
	tabs, err := h.db.CountTicketTabs(ctx, f, me.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	// The tabs link to the list with its filters; after a search that was
	// refused they count and link without it (a query of 100,000
	// characters was copied into each of their links).
	links := &p
	if p.QueryErr != "" {
		unsearched := p
		unsearched.Query = ""
		links = &unsearched
	}
	views := tabs.Views(p.Status)
	for _, v := range []viewTab{{Label: "Mine", View: viewMine, Count: views.Mine},
		{Label: "Unassigned", View: viewUnassigned, Count: views.Unassigned}, {Label: "All", View: viewAll, Count: views.All}} {
		v.Current, v.URL = v.View == p.View, links.listURL(v.View, p.Status, 1)
		p.Views = append(p.Views, v)
	}
	counts := tabs.Statuses(func(v store.ViewCounts) int {
		switch p.View {
		case viewMine:
			return v.Mine
		case viewUnassigned:
			return v.Unassigned
		}
		return v.All
	})
	all := counts[store.StatusOpen] + counts[store.StatusPending] + counts[store.StatusSolved]
	for _, s := range []string{"", store.StatusOpen, store.StatusPending, store.StatusSolved} {
		tab := statusTab{Label: "All", Status: s, Count: all, Current: s == p.Status}
		if s != "" {
			tab.Label, tab.Count = statusLabel(s), counts[s]
		}
		tab.URL = links.listURL(p.View, s, 1)
		p.Tabs = append(p.Tabs, tab)
	}
	p.All, p.Total = all, all
	if p.Status != "" {
		p.Total = counts[p.Status]
	}
	p.ClearURL = (&ticketListPage{}).listURL(p.View, p.Status, 1)
	if p.QueryErr != "" {
		h.render(w, r, code, "ticket_list", p)
		return
	}
	if len(query.Terms) > 0 {
		if p.Indexing, err = h.db.SearchBacklog(ctx); err != nil {
			h.serverError(w, r, err)
			return
		}
	}
	if p.Tickets, err = h.db.Tickets(ctx, f); err != nil {
		if errors.Is(err, ctx.Err()) {
			return
		}
		h.serverError(w, r, err)
		return
	}
	ids := make([]int64, len(p.Tickets))
	for i, t := range p.Tickets {
		ids[i] = t.ID
	}
	if p.NotSent, err = h.db.TicketsWithUndelivered(ctx, ids); err != nil {
		h.serverError(w, r, err)
		return
	}
	if len(p.Tickets) > 0 {
		p.First = f.Offset + 1
		p.Last = f.Offset + len(p.Tickets)
		if p.Bulk.Assignees, err = h.assigneeOptions(ctx, me, 0); err != nil {
			h.serverError(w, r, err)
			return
		}
	}
	if len(p.Tickets) == 0 && p.PageNo > 1 && p.Total > 0 {
		p.PastEnd, p.LastPage = true, (p.Total+ticketsPerPage-1)/ticketsPerPage
		p.LastPageURL = p.listURL(p.View, p.Status, p.LastPage)
	} else if p.PageNo > 1 {
		p.PrevURL = p.listURL(p.View, p.Status, p.PageNo-1)
	}
	if f.Offset+len(p.Tickets) < p.Total {
		p.NextURL = p.listURL(p.View, p.Status, p.PageNo+1)
	}
	h.render(w, r, code, "ticket_list", p)
}

// listURL is the list with the page's filters, another view, status and page.
func (p *ticketListPage) listURL(view, status string, pageNo int) string {
	v := url.Values{}
	if view != "" && view != viewAll {
		v.Set("view", view)
	}
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
