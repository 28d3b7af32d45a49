package api

import (
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// noteResponse is an internal note (kind "note") or a system event (kind
// "event") on a ticket's timeline. Author is null for events nobody caused.
type noteResponse struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Author    *authorResponse `json:"author"`
	Body      string          `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
}

type authorResponse struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

func newNoteResponse(n store.Note) noteResponse {
	out := noteResponse{ID: n.ID, Kind: n.Kind, Body: n.Body, CreatedAt: utc(n.CreatedAt)}
	if n.AuthorUserID != 0 {
		out.Author = &authorResponse{ID: n.AuthorUserID, Email: n.AuthorEmail}
	}
	return out
}

// noteRequest is the body of POST /tickets/{id}/notes.
type noteRequest struct {
	Body string `json:"body"`
}

// createNote adds an internal note to a ticket as the key's user.
func (h *handler) createNote(w http.ResponseWriter, r *http.Request) {
	ticketID, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	var req noteRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	// desk.AddNote validates the body (not empty, not too long).
	n, err := h.desk.AddNote(r.Context(), ticketID, currentUser(r), req.Body)
	if err != nil {
		writeDeskError(w, r, ticketID, err)
		return
	}
	writeJSON(w, r, http.StatusCreated, newNoteResponse(n))
}
