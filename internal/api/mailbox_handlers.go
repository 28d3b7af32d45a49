package api

import (
	"net/http"
	"time"

	"github.com/postdesk/postdesk/internal/store"
)

// mailboxResponse is a support address.
type mailboxResponse struct {
	ID        int64     `json:"id"`
	Address   string    `json:"address"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

type mailboxesResponse struct {
	Mailboxes []mailboxResponse `json:"mailboxes"`
}

func newMailboxResponse(m store.Mailbox) mailboxResponse {
	return mailboxResponse{ID: m.ID, Address: m.Address, Name: m.Name, CreatedAt: utc(m.CreatedAt)}
}

// getMailboxes lists every support address, by address.
func (h *handler) getMailboxes(w http.ResponseWriter, r *http.Request) {
	list, err := h.db.Mailboxes(r.Context())
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := mailboxesResponse{Mailboxes: make([]mailboxResponse, 0, len(list))}
	for _, m := range list {
		out.Mailboxes = append(out.Mailboxes, newMailboxResponse(m))
	}
	writeJSON(w, r, http.StatusOK, out)
}
