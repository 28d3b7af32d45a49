package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

// messageResponse is one email of a ticket. HTML is sanitized, with remote
// images removed (counted in BlockedImages) and cid: images pointing at
// their attachment's URL. SentAt is null when the message had no usable Date.
type messageResponse struct {
	ID            int64                `json:"id"`
	Direction     string               `json:"direction"`
	Kind          string               `json:"kind"`
	From          addressResponse      `json:"from"`
	To            string               `json:"to"`
	Cc            string               `json:"cc"`
	ReplyTo       string               `json:"reply_to"`
	Subject       string               `json:"subject"`
	MessageID     string               `json:"message_id"`
	InReplyTo     string               `json:"in_reply_to"`
	References    []string             `json:"references"`
	SentAt        *time.Time           `json:"sent_at"`
	ReceivedAt    time.Time            `json:"received_at"`
	Text          string               `json:"text"`
	HTML          string               `json:"html"`
	BlockedImages int                  `json:"blocked_images"`
	Attachments   []attachmentResponse `json:"attachments"`
	Problems      []string             `json:"problems"`
	RawURL        string               `json:"raw_url"`
	// Delivery is how an outgoing message (direction "out") is doing;
	// null for incoming mail.
	Delivery *deliveryResponse `json:"delivery"`
}

// deliveryResponse is the delivery of an outgoing message, as the outbox
// records it: the state, the attempts so far, the server's last words and
// their kind, when it was accepted and when the next attempt is due.
type deliveryResponse struct {
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error"`
	ErrorKind     string     `json:"error_kind"`
	SentAt        *time.Time `json:"sent_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Auto          bool       `json:"auto"`
}

func newDeliveryResponse(d *store.Delivery) *deliveryResponse {
	if d == nil {
		return nil
	}
	return &deliveryResponse{State: d.State, Attempts: d.Attempts, LastError: d.LastError, ErrorKind: d.ErrorKind,
		SentAt: timeOrNil(d.SentAt), NextAttemptAt: timeOrNil(d.NextAttemptAt), Auto: d.Auto}
}

// attachmentResponse describes a file; URL downloads it.
type attachmentResponse struct {
	ID          int64  `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Inline      bool   `json:"inline"`
	ContentID   string `json:"content_id"`
	URL         string `json:"url"`
}

func attachmentURL(id int64) string { return Prefix + "attachments/" + strconv.FormatInt(id, 10) }

func newMessageResponse(m store.Message) messageResponse {
	out := messageResponse{
		ID:          m.ID,
		Direction:   m.Direction,
		Kind:        m.Kind,
		From:        addressResponse{Name: m.FromName, Address: m.FromAddress},
		To:          m.To,
		Cc:          m.Cc,
		ReplyTo:     m.ReplyTo,
		Subject:     m.Subject,
		MessageID:   m.MessageID,
		InReplyTo:   m.InReplyTo,
		References:  nonNil(m.References),
		SentAt:      timeOrNil(m.SentAt),
		ReceivedAt:  utc(m.ReceivedAt),
		Text:        m.TextBody,
		Attachments: make([]attachmentResponse, 0, len(m.Attachments)),
		Problems:    nonNil(m.Problems),
		RawURL:      Prefix + "messages/" + strconv.FormatInt(m.ID, 10) + "/raw",
		Delivery:    newDeliveryResponse(m.Delivery),
	}
	for _, a := range m.Attachments {
		out.Attachments = append(out.Attachments, attachmentResponse{
			ID: a.ID, Filename: a.Filename, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256,
			Inline: a.Inline, ContentID: a.ContentID, URL: attachmentURL(a.ID),
		})
	}
	if m.HTMLBody != "" {
		s := mailmsg.SanitizeHTML(m.HTMLBody, mailmsg.SanitizeOptions{
			AllowRemoteImages: false,
			CIDURL:            func(cid string) string { return cidURL(m.Attachments, cid) },
		})
		out.HTML, out.BlockedImages = s.HTML, s.BlockedImages
	}
	return out
}

// cidURL is the URL of the message's attachment with that Content-ID, or ""
// when it has none (the image then shows nothing).
func cidURL(atts []store.Attachment, cid string) string {
	cid = strings.Trim(cid, "<> ")
	for _, a := range atts {
		if cid != "" && strings.EqualFold(strings.Trim(a.ContentID, "<> "), cid) {
			return attachmentURL(a.ID)
		}
	}
	return ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getRawMessage answers a message's source exactly as it was received or sent.
func (h *handler) getRawMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "messageID", "message")
	if !ok {
		return
	}
	m, err := h.db.Message(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("message %d not found", id))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	if m.TicketID == 0 && currentUser(r).Role != store.RoleAdmin {
		// On no ticket (a notification, an ignored email): admins only.
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("message %d not found", id))
		return
	}
	if m.RawSHA256 == "" {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("message %d has no stored source", id))
		return
	}
	h.serveBlob(w, r, m.RawSHA256, "message/rfc822", fmt.Sprintf("message-%d.eml", id))
}

// getAttachment answers an attachment's content as a download.
func (h *handler) getAttachment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "attachmentID", "attachment")
	if !ok {
		return
	}
	a, err := h.db.Attachment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("attachment %d not found", id))
		return
	}
	if err != nil {
		writeInternalError(w, r, err)
		return
	}
	ticketID, err := h.db.MessageTicketID(r.Context(), a.MessageID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		writeInternalError(w, r, err)
		return
	}
	if err != nil || ticketID == 0 && currentUser(r).Role != store.RoleAdmin {
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("attachment %d not found", id))
		return
	}
	ct := "application/octet-stream"
	if mt, params, err := mime.ParseMediaType(a.ContentType); err == nil {
		ct = mime.FormatMediaType(mt, params)
	}
	name := a.Filename
	if name == "" {
		name = fmt.Sprintf("attachment-%d", id)
	}
	f, err := h.db.OpenAttachment(r.Context(), a)
	h.serveContent(w, r, f, err, a.SHA256, ct, name)
}

// serveBlob answers a stored file as a download: never rendered by a
// browser (attachment disposition, nosniff, a sandboxing CSP), with an ETag
// of its SHA-256 and Range support. A file the database names but the blob
// folder lacks is the server's fault.
func (h *handler) serveBlob(w http.ResponseWriter, r *http.Request, sum, contentType, filename string) {
	f, err := h.db.Blobs().Open(r.Context(), sum)
	h.serveContent(w, r, f, err, sum, contentType, filename)
}

// serveContent answers an opened blob (err: the failure to open it) as
// serveBlob says; sum, the SHA-256 of the content, is its ETag.
func (h *handler) serveContent(w http.ResponseWriter, r *http.Request, f store.Blob, err error, sum, contentType, filename string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeIncident(w, r, fmt.Errorf("open blob %s: %w", sum, err), "stored file missing",
			"this file's content is missing from Postdesk's storage (the data folder, or the database on PostgreSQL); the administrator needs to restore it from a backup")
		return
	case errors.Is(err, store.ErrBlobCorrupt):
		writeIncident(w, r, fmt.Errorf("open blob %s: %w", sum, err), "stored file damaged",
			"this file's content in the data folder is cut short; the administrator needs to restore the data folder from a complete backup")
		return
	case err != nil:
		writeInternalError(w, r, fmt.Errorf("open blob %s: %w", sum, err))
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": filename})
	if disposition == "" { // a name mime cannot encode
		disposition = "attachment"
	}
	hd.Set("Content-Disposition", disposition)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	hd.Set("Cache-Control", "private, no-cache")
	hd.Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}
