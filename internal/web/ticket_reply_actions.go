package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// ticketFlashCookie carries a one-time sentence to the ticket page after a
// reply was sent, sent again or marked as sent. Its path is the ticket's,
// so it is read there only.
const ticketFlashCookie = "postdesk_ticket_flash"

// replyRetry queues a failed reply, or one whose fate is unknown, again.
func (h *Handler) replyRetry(w http.ResponseWriter, r *http.Request) {
	h.replyAction(w, r, "retried", h.desk.RetryReply)
}

// replyMarkSent records that a reply whose fate was unknown did arrive.
func (h *Handler) replyMarkSent(w http.ResponseWriter, r *http.Request) {
	h.replyAction(w, r, "marked", h.desk.MarkReplySent)
}

// replyAction runs a desk operation on the reply {msg} of the ticket {id}
// and returns to it; a refusal (the reply is not in a state for it) is
// shown at the reply.
func (h *Handler) replyAction(w http.ResponseWriter, r *http.Request, flash string, do func(ctx context.Context, messageID int64, by store.User) error) {
	id, ok := pathID(r)
	msgID, okMsg := strconv.ParseInt(r.PathValue("msg"), 10, 64)
	if !ok || okMsg != nil || msgID <= 0 {
		h.notFound(w, r, fmt.Sprintf("There is no reply %q on ticket %q.", r.PathValue("msg"), r.PathValue("id")))
		return
	}
	m, err := h.db.Message(r.Context(), msgID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (m.TicketID != id || m.Direction != "out") {
		h.notFound(w, r, fmt.Sprintf("Ticket #%d has no reply %d.", id, msgID))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	err = do(r.Context(), msgID, current(r).user)
	switch {
	case errors.Is(err, desk.ErrInvalid):
		h.renderTicket(w, r, id, http.StatusUnprocessableEntity, ticketShowPage{ActionError: map[int64]string{msgID: userMessage(err)}})
		return
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, fmt.Sprintf("Ticket #%d has no reply %d.", id, msgID))
		return
	case err != nil:
		h.serverError(w, r, err)
		return
	}
	h.setTicketFlash(w, id, flash, msgID)
	http.Redirect(w, r, fmt.Sprintf("%s#m-%d", ticketURL(id), msgID), http.StatusSeeOther)
}

// setTicketFlash leaves a one-time sentence about message msgID for the
// next view of ticket id.
func (h *Handler) setTicketFlash(w http.ResponseWriter, id int64, kind string, msgID int64) {
	http.SetCookie(w, &http.Cookie{Name: ticketFlashCookie, Value: kind + "." + strconv.FormatInt(msgID, 10),
		Path: ticketURL(id), MaxAge: 120, HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
}

// ticketFlash is the one-time sentence of the ticket page.
type ticketFlash struct {
	MessageID int64
	Text      string
}

// takeTicketFlash reads and clears the flash cookie of ticket id and puts
// it into words with the reply's delivery as it is now.
func (h *Handler) takeTicketFlash(w http.ResponseWriter, r *http.Request, id int64, items []timelineItem) *ticketFlash {
	c, err := r.Cookie(ticketFlashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: ticketFlashCookie, Value: "", Path: ticketURL(id), MaxAge: -1,
		HttpOnly: true, Secure: h.secureCookies, SameSite: http.SameSiteLaxMode})
	kind, idText, _ := strings.Cut(c.Value, ".")
	msgID, _ := strconv.ParseInt(idText, 10, 64)
	for _, it := range items {
		if it.Message == nil || it.Message.ID != msgID || it.Message.Delivery == nil {
			continue
		}
		d := it.Message.Delivery
		switch kind {
		case "sent":
			return &ticketFlash{msgID, "Your reply is in the conversation. " + d.Sentence}
		case "retried":
			return &ticketFlash{msgID, "Sending the reply again. " + d.Sentence}
		case "marked":
			return &ticketFlash{msgID, "Marked the reply as sent: Postdesk will not send it again."}
		}
	}
	return nil
}
