package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// The ticket list notices changes without a reload: the page carries the
// id of the newest event when it was drawn (data-since, read before the
// tickets themselves, so nothing committed in between is missed), and a
// small script (static/tickets.js) asks GET /tickets/changes?since=N every
// few seconds while the tab is visible. When an event about a ticket came
// since, the page offers "New activity — Refresh", which redraws the list
// in place. Without JavaScript the list is the plain page it always was.

// changesScan bounds how many events one poll reads.
const changesScan = 500

type changesAnswer struct {
	Changed bool  `json:"changed"` // an event about a ticket happened after since
	Last    int64 `json:"last"`    // the newest event id seen: the next since
}

// ticketChanges answers the list's poll.
func (h *Handler) ticketChanges(w http.ResponseWriter, r *http.Request) {
	since, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	if err != nil || since < 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"since must be an event id (0 or more)"}` + "\n"))
		return
	}
	events, err := h.db.EventsSince(r.Context(), since, changesScan)
	if err != nil {
		if errors.Is(err, r.Context().Err()) {
			return
		}
		h.serverError(w, r, err)
		return
	}
	a := changesAnswer{Last: since}
	for _, e := range events {
		a.Last = e.ID
		a.Changed = a.Changed || e.TicketID != 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(a)
}
