package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// replyRequest is the body of POST /tickets/{id}/replies. To and Cc are
// addresses ("ann@example.com" or "Ann <ann@example.com>"); To left out
// is the ticket's requester. Status "" keeps the ticket's status.
type replyRequest struct {
	Text   string   `json:"text"`
	To     []string `json:"to"`
	Cc     []string `json:"cc"`
	Status string   `json:"status"`
	// SeenMessageID: the newest message the client showed (optional): a
	// newer customer email or another agent's reply refuses the reply (422).
	SeenMessageID int64 `json:"seen_message_id"`
}

// createReply writes a reply to the customer as the key's user: the desk
// stores it with its outbox row (and the status change) in one
// transaction, and the outbox sends it. 202: accepted for sending, with
// the message and its delivery as it is now.
func (h *handler) createReply(w http.ResponseWriter, r *http.Request) {
	ticketID, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	var req replyRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	// desk.Reply validates the text, the addresses, the status and the
	// mailbox's SMTP settings.
	// An Idempotency-Key makes a retried request (its answer lost) return
	// the first reply instead of sending a second.
	m, err := h.desk.Reply(r.Context(), ticketID, currentUser(r), desk.ReplyInput{
		Text: req.Text, To: req.To, Cc: req.Cc, Status: req.Status, Key: r.Header.Get("Idempotency-Key"), Seen: req.SeenMessageID,
	})
	if err != nil {
		writeDeskError(w, r, ticketID, err)
		return
	}
	h.writeMessage(w, r, http.StatusAccepted, m.ID)
}

// retryReply queues a failed reply, or one whose fate is unknown, again.
func (h *handler) retryReply(w http.ResponseWriter, r *http.Request) {
	h.replyAction(w, r, http.StatusAccepted, h.desk.RetryReply)
}

// markReplySent records that a reply whose fate was unknown did arrive.
func (h *handler) markReplySent(w http.ResponseWriter, r *http.Request) {
	h.replyAction(w, r, http.StatusOK, h.desk.MarkReplySent)
}

// replyAction runs a desk operation on the outgoing message {messageID}
// of the ticket {ticketID} and answers the message. A reply that is not
// in a state for it is 422.
func (h *handler) replyAction(w http.ResponseWriter, r *http.Request, status int, do func(ctx context.Context, messageID int64, by store.User) error) {
	ticketID, ok := pathID(w, r, "ticketID", "ticket")
	if !ok {
		return
	}
	msgID, ok := pathID(w, r, "messageID", "message")
	if !ok {
		return
	}
	m, err := h.db.Message(r.Context(), msgID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (m.TicketID != ticketID || m.Direction != "out") {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("ticket %d has no reply %d", ticketID, msgID))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	if err := do(r.Context(), msgID, currentUser(r)); err != nil {
		writeDeskError(w, r, ticketID, err)
		return
	}
	h.writeMessage(w, r, status, msgID)
}

// writeMessage answers the message id as it is stored now (with its
// attachments and delivery).
func (h *handler) writeMessage(w http.ResponseWriter, r *http.Request, status int, id int64) {
	m, err := h.db.Message(r.Context(), id)
	if err != nil {
		writeInternalError(w, r, fmt.Errorf("read message %d: %w", id, err))
		return
	}
	writeJSON(w, r, status, newMessageResponse(m))
}
