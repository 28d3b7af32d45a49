package web

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/postdesk/postdesk/internal/store"
)

// attachmentCSP is the policy of files we serve from customers' mail: if a
// browser ever rendered one, it would be a sandboxed document that loads nothing.
const attachmentCSP = "default-src 'none'; sandbox"

// attachment downloads a file carried by a message. It is always served as
// an attachment (never rendered in our origin), with nosniff.
func (h *Handler) attachment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, "There is no such attachment.")
		return
	}
	a, err := h.db.Attachment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, fmt.Sprintf("Attachment %d doesn't exist.", id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	ticketID, err := h.db.MessageTicketID(r.Context(), a.MessageID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		h.serverError(w, r, err)
		return
	}
	if err != nil || !mayRead(current(r).user, ticketID) {
		h.notFound(w, r, fmt.Sprintf("Attachment %d doesn't exist.", id))
		return
	}
	h.serveAttachment(w, r, a, safeContentType(a.ContentType), contentDisposition("attachment", a.Filename))
}

// serveAttachment streams an attachment's decoded content with the
// headers of untrusted content.
func (h *Handler) serveAttachment(w http.ResponseWriter, r *http.Request, a store.Attachment, contentType, disposition string) {
	f, err := h.db.OpenAttachment(r.Context(), a)
	h.serveContent(w, r, f, err, contentType, disposition)
}

// serveBlob streams a blob with the headers of untrusted content.
func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request, sum, contentType, disposition string) {
	f, err := h.db.Blobs().Open(r.Context(), sum)
	h.serveContent(w, r, f, err, contentType, disposition)
}

func (h *Handler) serveContent(w http.ResponseWriter, r *http.Request, f store.Blob, err error, contentType, disposition string) {
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "The file's content is missing from Postdesk's storage (the data folder, or the database on PostgreSQL).")
		return
	}
	if errors.Is(err, store.ErrBlobCorrupt) {
		h.incident(w, r, err, "File damaged",
			"The file's content in the data folder is damaged (cut short), so it is not shown. Tell your administrator the incident id: the data folder needs restoring from a complete backup.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Content-Disposition", disposition)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", attachmentCSP)
	hd.Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", time.Time{}, f)
}

// safeContentType keeps a well-formed media type and drops its parameters
// except charset; anything else is application/octet-stream.
func safeContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return "application/octet-stream"
	}
	keep := map[string]string{}
	if cs := params["charset"]; cs != "" {
		keep["charset"] = cs
	}
	if out := mime.FormatMediaType(mt, keep); out != "" {
		return out
	}
	return "application/octet-stream"
}

// contentDisposition builds a Content-Disposition value with an ASCII
// filename for old clients and the exact name in filename* (RFC 6266
// section 4.3, encoded as RFC 8187 specifies).
func contentDisposition(kind, name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == '\\' {
			return -1
		}
		return r
	}, name)
	if strings.TrimSpace(name) == "" {
		name = "attachment"
	}
	ascii := strings.Map(func(r rune) rune {
		if r > 0x7e || r < 0x20 || r == '"' || r == '%' {
			return '_'
		}
		return r
	}, name)
	return kind + `; filename="` + ascii + `"; filename*=UTF-8''` + rfc8187(name)
}

// rfc8187 percent-encodes everything but attr-char (RFC 8187 section 3.2.1).
func rfc8187(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
