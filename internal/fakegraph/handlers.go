package fakegraph

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
)

// MaxRequestBytes is Graph's limit on a request body (4 MB); a larger
// sendMail is refused with 413.
const MaxRequestBytes = 4 << 20

func folderJSON(f *mfolder) map[string]any {
	return map[string]any{"id": f.id, "displayName": f.display, "parentFolderId": f.parent}
}

// handleFolder is GET /mailFolders/{folder}: an id or a well-known name.
func (s *Server) handleFolder(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, false) {
		return
	}
	ref := r.PathValue("folder")
	s.mu.Lock()
	var found *mfolder
	for _, f := range req.mailbox.folders {
		if f.id == ref || strings.EqualFold(f.wellKnown, ref) {
			found = f
		}
	}
	var body map[string]any
	if found != nil {
		body = folderJSON(found)
	}
	s.mu.Unlock()
	if body == nil {
		s.writeError(w, r, req, http.StatusNotFound, "ErrorInvalidIdMalformed", "Id is malformed.")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// handleFolders is GET /mailFolders and /mailFolders/{folder}/childFolders,
// with an optional $filter=displayName eq '...'.
func (s *Server) handleFolders(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, false) {
		return
	}
	name, filtered := "", false
	if flt := r.URL.Query().Get("$filter"); flt != "" {
		lit, ok := strings.CutPrefix(flt, "displayName eq '")
		if !ok || !strings.HasSuffix(lit, "'") || len(lit) < 1 {
			s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
			return
		}
		name, filtered = strings.ReplaceAll(strings.TrimSuffix(lit, "'"), "''", "'"), true
	}
	s.mu.Lock()
	parent := ""
	if ref := r.PathValue("folder"); ref != "" {
		p := req.mailbox.folder(ref)
		if p == nil {
			s.mu.Unlock()
			s.writeError(w, r, req, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
		parent = p.id
	}
	value := []map[string]any{}
	for _, f := range req.mailbox.folders {
		if f.parent == parent && (!filtered || strings.EqualFold(f.display, name)) {
			value = append(value, folderJSON(f))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": req.base + "/v1.0/$metadata#mailFolders", "value": value})
}

// handleValue is GET /messages/{id}/$value: the message's MIME.
func (s *Server) handleValue(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, false) {
		return
	}
	s.mu.Lock()
	m, ok := req.mailbox.messages[r.PathValue("id")]
	var raw []byte
	if ok && !m.removed {
		raw = m.raw // never modified after filing
	}
	s.mu.Unlock()
	if raw == nil {
		s.writeError(w, r, req, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	w.Write(raw)
}

// handleMessages is GET /messages and /mailFolders/{folder}/messages with
// the one $filter modelled, internetMessageId eq '<...>' (a list without a
// filter would need paging this stand-in does not model).
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, false) {
		return
	}
	lit, ok := strings.CutPrefix(r.URL.Query().Get("$filter"), "internetMessageId eq '")
	if !ok || !strings.HasSuffix(lit, "'") || len(lit) < 2 {
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidUrlQueryFilter", "This stand-in only lists messages with $filter=internetMessageId eq '<...>'.")
		return
	}
	want := strings.ReplaceAll(strings.TrimSuffix(lit, "'"), "''", "'")
	sel := strings.Split(r.URL.Query().Get("$select"), ",")
	s.mu.Lock()
	var folder *mfolder
	if ref := r.PathValue("folder"); ref != "" {
		if folder = req.mailbox.folder(ref); folder == nil {
			s.mu.Unlock()
			s.writeError(w, r, req, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
			return
		}
	}
	value := []map[string]any{}
	for _, m := range req.mailbox.sorted() {
		if !m.removed && m.messageID == want && (folder == nil || m.folder == folder.id) {
			value = append(value, messageJSON(m, sel))
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": req.base + "/v1.0/$metadata#Collection(message)", "value": value})
}

// handleSendMail is POST /sendMail with a MIME body
// (learn.microsoft.com/graph/api/user-sendmail, "send a message in MIME
// format"): base64 of the MIME, Content-Type text/plain, 202 Accepted.
func (s *Server) handleSendMail(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, true) {
		return
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "text/plain") {
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidRequest", "This stand-in only models sendMail with MIME content: Content-Type must be text/plain.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		s.writeError(w, r, req, http.StatusBadRequest, "RequestBodyRead", "The request body could not be read.")
		return
	}
	if len(body) > MaxRequestBytes {
		s.writeError(w, r, req, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
		return
	}
	// .NET's Convert.FromBase64String skips white space, nothing else.
	compact := strings.Map(func(c rune) rune {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			return -1
		}
		return c
	}, string(body))
	raw, err := base64.StdEncoding.Strict().DecodeString(compact)
	if err != nil || len(raw) == 0 {
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorMimeContentConversionFailed", "The MIME content could not be converted to a message.")
		return
	}
	var rcpts []string
	for _, h := range []string{"To", "Cc", "Bcc"} {
		if msg.Header.Get(h) == "" {
			continue
		}
		list, err := msg.Header.AddressList(h)
		if err != nil {
			s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
			return
		}
		for _, a := range list {
			rcpts = append(rcpts, lower(a.Address))
		}
	}
	if len(rcpts) == 0 {
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
		return
	}
	if from := msg.Header.Get("From"); from != "" {
		a, err := mail.ParseAddress(from)
		if err != nil || lower(a.Address) != req.user {
			s.writeError(w, r, req, http.StatusForbidden, "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.")
			return
		}
	}
	copyRaw := raw
	if msg.Header.Get("Message-Id") == "" { // Exchange gives every message one
		copyRaw = append([]byte("Message-ID: <"+newUUID()+"@fakegraph.invalid>\r\n"), copyRaw...)
	}
	if msg.Header.Get("From") == "" { // and sends it from the mailbox
		copyRaw = append([]byte("From: "+req.user+"\r\n"), copyRaw...)
	}
	filed := stripHeaders(copyRaw, "Auto-Submitted", "Bcc")
	s.mu.Lock()
	req.mailbox.sent = append(req.mailbox.sent, raw)
	now := s.opts.Now()
	s.fileLocked(req.mailbox, "sentitems", stripHeaders(copyRaw, "Auto-Submitted"), now)
	for _, rc := range rcpts {
		if mb, ok := s.mailboxes[rc]; ok {
			s.fileLocked(mb, "inbox", filed, now)
		}
	}
	s.mu.Unlock()
	s.log.Info("fakegraph sent mail", "mailbox", req.user, "recipients", len(rcpts))
	w.WriteHeader(http.StatusAccepted)
}

// stripHeaders returns raw without the named header fields (RFC 5322 2.2,
// folded lines included); the body is untouched.
func stripHeaders(raw []byte, names ...string) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	sep := 4
	if e := bytes.Index(raw, []byte("\n\n")); end < 0 || (e >= 0 && e < end) {
		end, sep = e, 2
	}
	if end < 0 {
		return raw
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(raw[:end+sep/2]))
	sc.Buffer(make([]byte, 0, 4096), len(raw)+1)
	skipping := false
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !skipping {
				out.WriteString(line + "\r\n")
			}
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		skipping = false
		for _, n := range names {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name)) == textproto.CanonicalMIMEHeaderKey(n) {
				skipping = true
			}
		}
		if !skipping {
			out.WriteString(line + "\r\n")
		}
	}
	out.WriteString("\r\n")
	out.Write(raw[end+sep:])
	return out.Bytes()
}
