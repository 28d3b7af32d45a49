package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

// quarantineView is an email that could not be stored, on Admin -> Emails.
type quarantineView struct {
	store.Quarantined
	From    string // "INBOX, UID 812" or the imported file
	Size    string
	Rel     string
	Retried bool
}

// maxQuarantineShown bounds the quarantined emails listed per mailbox.
const maxQuarantineShown = 20

func newQuarantineView(q store.Quarantined, now time.Time, loc *time.Location) quarantineView {
	v := quarantineView{Quarantined: q, Size: sizeText(q.RawSize), Rel: agoIn(q.CreatedAt, now, loc), Retried: q.State == store.QuarantineRetried}
	if q.Origin == store.OriginImport {
		v.From = "imported from " + q.SourceName
	} else {
		v.From = fmt.Sprintf("%s, UID %d", q.Folder, q.UID)
	}
	return v
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// quarantineFor lists a mailbox's open quarantined emails (at most
// maxQuarantineShown) and how many are open.
func (h *Handler) quarantineFor(r *http.Request, mailboxID int64, now time.Time) ([]quarantineView, int, error) {
	ctx := r.Context()
	n, err := h.db.CountQuarantined(ctx, mailboxID)
	if err != nil || n == 0 {
		return nil, 0, err
	}
	list, err := h.db.QuarantinedMessages(ctx, store.QuarantineFilter{MailboxID: mailboxID, Limit: maxQuarantineShown})
	if err != nil {
		return nil, 0, err
	}
	out := make([]quarantineView, 0, len(list))
	for _, q := range list {
		out = append(out, newQuarantineView(q, now, zoneOf(r.Context())))
	}
	return out, n, nil
}

// quarantinedFromPath loads the quarantined email named by {id},
// answering 404 itself.
func (h *Handler) quarantinedFromPath(w http.ResponseWriter, r *http.Request) (store.Quarantined, bool) {
	id, ok := pathID(r)
	if !ok {
		h.notFoundEmails(w, r, "There is no such quarantined email.")
		return store.Quarantined{}, false
	}
	q, err := h.db.QuarantinedMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFoundEmails(w, r, "Quarantined email #"+strconv.FormatInt(id, 10)+" doesn't exist.")
		return q, false
	}
	if err != nil {
		h.serverError(w, r, err)
		return q, false
	}
	return q, true
}

// quarantineSource shows a quarantined email's source as received, as plain text.
func (h *Handler) quarantineSource(w http.ResponseWriter, r *http.Request) {
	q, ok := h.quarantinedFromPath(w, r)
	if !ok {
		return
	}
	h.serveBlob(w, r, q.RawSHA256, "text/plain; charset=utf-8",
		contentDisposition("inline", "quarantined-"+strconv.FormatInt(q.ID, 10)+".eml"))
}

// quarantineRetry parses and stores a quarantined email again, then
// returns to Admin -> Emails, where a flash says how it went.
func (h *Handler) quarantineRetry(w http.ResponseWriter, r *http.Request) {
	q, ok := h.quarantinedFromPath(w, r)
	if !ok {
		return
	}
	if h.ingest == nil {
		h.errorPage(w, r, errorPage{Status: http.StatusServiceUnavailable, Heading: "Retry is not available",
			Message: "This server can't retry quarantined emails.", LinkURL: "/admin/emails", LinkText: "Back to Emails"})
		return
	}
	_, _, err := h.ingest.Retry(r.Context(), q.ID)
	var failed *ingest.RetryError
	switch {
	case err == nil, errors.Is(err, ingest.ErrResolved), errors.As(err, &failed):
		// The flash reads the outcome from the row.
	default:
		h.serverError(w, r, err)
		return
	}
	h.setFlash(w, "retry", q.ID)
	http.Redirect(w, r, "/admin/emails#mailbox-"+strconv.FormatInt(q.MailboxID, 10), http.StatusSeeOther)
}

// retryFlash is the sentence after a retry of quarantined email id.
func (h *Handler) retryFlash(r *http.Request, id int64) string {
	q, err := h.db.QuarantinedMessage(r.Context(), id)
	if err != nil {
		return ""
	}
	if q.State != store.QuarantineResolved {
		return fmt.Sprintf("Quarantined email #%d still could not be stored: %s", id, q.Error)
	}
	msg := fmt.Sprintf("Quarantined email #%d is stored now", id)
	if m, err := h.db.Message(r.Context(), q.MessageID); err == nil && m.TicketID != 0 {
		msg += fmt.Sprintf(", on ticket #%d", m.TicketID)
	}
	return msg + "."
}
