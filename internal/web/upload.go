package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/desk"
)

// uploadOverhead is what a form with files may carry besides the files:
// its text fields and the multipart framing.
const uploadOverhead = 1 << 20

// maxUploadValue bounds one text field of a form with files (a reply's
// text is at most desk.MaxReplyTextBytes; the desk refuses a longer one).
const maxUploadValue = 4 * desk.MaxReplyTextBytes

// upload is a form posted as multipart/form-data (or urlencoded, without
// files), read by the uploadForm guard.
type upload struct {
	values url.Values
	files  []desk.Upload
	// tooLarge: the files together passed the limit, or the body passed
	// limit + uploadOverhead. Files are then dropped; the fields read
	// before the cut are kept (browsers send fields in the form's order,
	// so the text, which comes before the files, survives).
	tooLarge bool
}

const uploadKey = sessionKey + 1

// uploaded is the form the uploadForm guard read.
func uploaded(r *http.Request) *upload {
	u, _ := r.Context().Value(uploadKey).(*upload)
	if u == nil {
		return &upload{values: url.Values{}}
	}
	return u
}

// uploadForm is form for a form with files (multipart/form-data, RFC
// 7578): the files together may be up to limit bytes, the whole body
// limit + uploadOverhead. It streams the body, keeping the files in
// memory, then checks the CSRF field. A body over the bounds still reaches
// next, with tooLarge set and no files, so the page can say so with the
// agent's text kept.
func (h *Handler) uploadForm(limit int64, next http.HandlerFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit+uploadOverhead)
		u, err := readUpload(r, limit)
		if err != nil {
			h.badRequest(w, r, "The form could not be read: reload the page and try again.")
			h.log.Warn("form refused: unreadable body", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		if u.tooLarge && u.values.Get("csrf") == "" {
			// Cut before its CSRF field (a form without files sent
			// urlencoded): nothing of it can be kept.
			h.formTooLarge(w, r, limit+uploadOverhead)
			return
		}
		if !auth.CheckCSRF(current(r).sess, u.values.Get("csrf")) {
			h.csrfFailed(w, r)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), uploadKey, u)))
	})
}

// readUpload reads a multipart or urlencoded body. An error is a body that
// is neither or is malformed; a body over the bounds is tooLarge, not an
// error.
func readUpload(r *http.Request, limit int64) (*upload, error) {
	u := &upload{values: url.Values{}}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		err := r.ParseForm()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			u.tooLarge = true
			return u, nil
		}
		u.values = r.PostForm
		return u, err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	var total int64
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return u, nil
		}
		if err != nil {
			return tooLargeOr(u, err)
		}
		name := p.FormName()
		if name == "" {
			p.Close()
			continue
		}
		if p.FileName() == "" {
			// A text field (RFC 7578 4.2: no filename).
			b, err := io.ReadAll(io.LimitReader(p, maxUploadValue))
			if err != nil {
				return tooLargeOr(u, err)
			}
			u.values.Add(name, string(b))
			if _, err := io.Copy(io.Discard, p); err != nil {
				return tooLargeOr(u, err)
			}
			continue
		}
		if u.tooLarge {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return tooLargeOr(u, err)
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, limit-total+1))
		if err != nil {
			return tooLargeOr(u, err)
		}
		total += int64(len(b))
		if total > limit {
			u.tooLarge, u.files = true, nil
			if _, err := io.Copy(io.Discard, p); err != nil {
				return tooLargeOr(u, err)
			}
			continue
		}
		ct := p.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		u.files = append(u.files, desk.Upload{Filename: p.FileName(), ContentType: ct, Data: b})
	}
}

// tooLargeOr marks u too large when err is the body's bound, else returns err.
func tooLargeOr(u *upload, err error) (*upload, error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		u.tooLarge, u.files = true, nil
		return u, nil
	}
	return nil, err
}
