package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/postdesk/postdesk/internal/ingest"
	"github.com/postdesk/postdesk/internal/store"
)

// quarantineResponse is an email that could not be stored: where it came
// from, why, and (once a retry stored it) the message and ticket it became.
type quarantineResponse struct {
	ID          int64      `json:"id"`
	MailboxID   int64      `json:"mailbox_id"`
	Mailbox     string     `json:"mailbox"`
	Origin      string     `json:"origin"` // sync or import
	Folder      string     `json:"folder"`
	UIDValidity uint32     `json:"uid_validity"`
	UID         uint32     `json:"uid"`
	SourceName  string     `json:"source_name"`
	RawSHA256   string     `json:"raw_sha256"`
	RawSize     int64      `json:"raw_size"`
	Error       string     `json:"error"`
	State       string     `json:"state"` // open, retried, resolved
	Attempts    int        `json:"attempts"`
	ReceivedAt  time.Time  `json:"received_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ResolvedAt  *time.Time `json:"resolved_at"`
	MessageID   *int64     `json:"message_id"`
	TicketID    *int64     `json:"ticket_id"`
	SourceURL   string     `json:"source_url"`
	RetryURL    string     `json:"retry_url"`
}

type quarantineListResponse struct {
	Quarantine []quarantineResponse `json:"quarantine"`
}

func (h *handler) newQuarantineResponse(r *http.Request, q store.Quarantined, addresses map[int64]string) quarantineResponse {
	base := Prefix + "quarantine/" + strconv.FormatInt(q.ID, 10)
	out := quarantineResponse{ID: q.ID, MailboxID: q.MailboxID, Mailbox: addresses[q.MailboxID], Origin: q.Origin, Folder: q.Folder,
		UIDValidity: q.UIDValidity, UID: q.UID, SourceName: q.SourceName, RawSHA256: q.RawSHA256, RawSize: q.RawSize,
		Error: q.Error, State: q.State, Attempts: q.Attempts, ReceivedAt: utc(q.ReceivedAt), CreatedAt: utc(q.CreatedAt),
		UpdatedAt: utc(q.UpdatedAt), ResolvedAt: timeOrNil(q.ResolvedAt), SourceURL: base + "/source", RetryURL: base + "/retry"}
	if q.MessageID != 0 {
		id := q.MessageID
		out.MessageID = &id
		if m, err := h.db.Message(r.Context(), id); err == nil && m.TicketID != 0 {
			t := m.TicketID
			out.TicketID = &t
		}
	}
	return out
}

// adminQuarantine guards the quarantine routes: admins only, and only
// where an ingester can retry.
func (h *handler) adminQuarantine(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r).Role != store.RoleAdmin {
			writeError(w, r, http.StatusForbidden, "only admins can see and retry quarantined emails")
			return
		}
		if h.ingest == nil {
			writeError(w, r, http.StatusServiceUnavailable, "the quarantine is not available")
			return
		}
		next(w, r)
	}
}

// mailboxAddresses maps mailbox ids to addresses.
func (h *handler) mailboxAddresses(r *http.Request) (map[int64]string, error) {
	mbs, err := h.db.Mailboxes(r.Context())
	if err != nil {
		return nil, err
	}
	out := make(map[int64]string, len(mbs))
	for _, mb := range mbs {
		out[mb.ID] = mb.Address
	}
	return out, nil
}

// getQuarantine lists quarantined emails, newest first: the open ones
// (state=all: resolved ones too), of one mailbox with mailbox_id.
func (h *handler) getQuarantine(w http.ResponseWriter, r *http.Request) {
	f := store.QuarantineFilter{Limit: 500}
	query, message := checkQuery(r, "GET /api/v1/quarantine", "mailbox_id", "state")
	if message != "" {
		writeError(w, r, http.StatusBadRequest, message)
		return
	}
	if v := query.Get("mailbox_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("mailbox_id must be a positive integer, not %q", v))
			return
		}
		if _, err := h.db.Mailbox(r.Context(), id); errors.Is(err, store.ErrNotFound) {
			writeError(w, r, http.StatusBadRequest, fmt.Sprintf("mailbox_id: there is no mailbox %d (GET /api/v1/mailboxes lists them)", id))
			return
		} else if err != nil {
			writeInternalError(w, r, err)
			return
		}
		f.MailboxID = id
	}
	switch v := query.Get("state"); v {
	case "", "open":
	case "all":
		f.All = true
	default:
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("state must be open or all, not %q", v))
		return
	}
	list, err := h.db.QuarantinedMessages(r.Context(), f)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	addresses, err := h.mailboxAddresses(r)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	out := quarantineListResponse{Quarantine: make([]quarantineResponse, 0, len(list))}
	for _, q := range list {
		out.Quarantine = append(out.Quarantine, h.newQuarantineResponse(r, q, addresses))
	}
	writeJSON(w, r, http.StatusOK, out)
}

// quarantinedFromPath loads the row named by {quarantineID}, answering
// 400 or 404 itself.
func (h *handler) quarantinedFromPath(w http.ResponseWriter, r *http.Request) (store.Quarantined, bool) {
	id, ok := pathID(w, r, "quarantineID", "quarantined email")
	if !ok {
		return store.Quarantined{}, false
	}
	q, err := h.db.QuarantinedMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("quarantined email %d not found", id))
		return q, false
	}
	if err != nil {
		writeInternalError(w, r, err)
		return q, false
	}
	return q, true
}

// getQuarantined answers one quarantined email.
func (h *handler) getQuarantined(w http.ResponseWriter, r *http.Request) {
	q, ok := h.quarantinedFromPath(w, r)
	if !ok {
		return
	}
	addresses, err := h.mailboxAddresses(r)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, h.newQuarantineResponse(r, q, addresses))
}

// getQuarantinedSource answers a quarantined email's source exactly as received.
func (h *handler) getQuarantinedSource(w http.ResponseWriter, r *http.Request) {
	q, ok := h.quarantinedFromPath(w, r)
	if !ok {
		return
	}
	h.serveBlob(w, r, q.RawSHA256, "message/rfc822", fmt.Sprintf("quarantined-%d.eml", q.ID))
}

// retryQuarantined parses and stores a quarantined email again. Stored:
// 200 with the resolved row; still failing: 422 with the new error (also
// recorded on the row); already stored: 409.
func (h *handler) retryQuarantined(w http.ResponseWriter, r *http.Request) {
	q, ok := h.quarantinedFromPath(w, r)
	if !ok {
		return
	}
	row, _, err := h.ingest.Retry(r.Context(), q.ID)
	var failed *ingest.RetryError
	switch {
	case errors.Is(err, ingest.ErrResolved):
		writeError(w, r, http.StatusConflict, fmt.Sprintf("quarantined email %d is already stored (message %d)", q.ID, row.MessageID))
		return
	case errors.As(err, &failed):
		writeError(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("quarantined email %d still could not be stored: %s", q.ID, failed.Row.Error))
		return
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("quarantined email %d not found", q.ID))
		return
	case err != nil:
		writeInternalError(w, r, err)
		return
	}
	addresses, err := h.mailboxAddresses(r)
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, h.newQuarantineResponse(r, row, addresses))
}
