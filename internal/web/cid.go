package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// Inline images (cid:) are shown inside the email's sandboxed frame. That
// frame has an opaque origin, so the browser treats its requests as
// cross-site and sends no SameSite cookie: the image links cannot rely on
// the session cookie. Instead each link names the session and carries an
// HMAC of the message and Content-ID keyed with the session's secret CSRF
// token. A link works only while that session lives, for that one image,
// and reveals nothing about the token.

// cidURL is the signed link of a message's inline image for a session.
func cidURL(sess store.Session, messageID int64, cid string) string {
	cid = strings.Trim(cid, "<> ")
	v := url.Values{"s": {strconv.FormatInt(sess.ID, 10)}, "sig": {cidSig(sess, messageID, cid)}}
	return fmt.Sprintf("/messages/%d/cid/%s?%s", messageID, url.PathEscape(cid), v.Encode())
}

func cidSig(sess store.Session, messageID int64, cid string) string {
	mac := hmac.New(sha256.New, []byte(sess.CSRFToken))
	fmt.Fprintf(mac, "cid\x00%d\x00%s", messageID, cid)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

// cidAllowed reports whether a request may see a message's inline image:
// with a signed link of a live session, or with the session cookie.
func (h *Handler) cidAllowed(r *http.Request, messageID int64, cid string) (bool, error) {
	q := r.URL.Query()
	if sid, err := strconv.ParseInt(q.Get("s"), 10, 64); err == nil && q.Get("sig") != "" {
		sess, u, err := h.db.SessionByID(r.Context(), sid, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return u.DisabledAt.IsZero() && hmac.Equal([]byte(q.Get("sig")), []byte(cidSig(sess, messageID, cid))), nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false, nil
	}
	_, _, err = h.auth.Session(r.Context(), c.Value)
	if errors.Is(err, auth.ErrInvalidCredentials) {
		return false, nil
	}
	return err == nil, err
}

// messageCID serves an inline image a message refers to as cid:, so the
// email's HTML can show it. Only raster image types are served; anything
// not allowed or not found is a plain 404 (an image, not a page).
func (h *Handler) messageCID(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	cid := strings.Trim(r.PathValue("cid"), "<> ")
	if !ok || cid == "" {
		http.NotFound(w, r)
		return
	}
	allowed, err := h.cidAllowed(r, id, cid)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !allowed {
		http.NotFound(w, r)
		return
	}
	m, err := h.db.Message(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !mayRead(current(r).user, m.TicketID) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	for _, a := range m.Attachments {
		if !strings.EqualFold(strings.Trim(a.ContentID, "<> "), cid) {
			continue
		}
		switch ct := safeContentType(a.ContentType); ct {
		case "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp":
			h.serveAttachment(w, r, a, ct, contentDisposition("inline", a.Filename))
			return
		}
		break
	}
	http.NotFound(w, r)
}
