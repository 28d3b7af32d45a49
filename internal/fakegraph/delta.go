package fakegraph

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Page sizes: Graph pages messages by 10 unless Prefer: odata.maxpagesize
// asks otherwise, and answers at most 1,000 a page.
const (
	defaultPageSize = 10
	maxPageSize     = 1000
)

// deltaState is what a delta link carries (see the package documentation).
type deltaState struct {
	User   string `json:"u"`
	Folder string `json:"f"`
	Epoch  int    `json:"e"`
	S      int64  `json:"s"` // the round reports changes after S...
	H      int64  `json:"h"` // ...up to H; 0 in a deltaLink (not started)
	A      int64  `json:"a"` // the cursor: changes after A are still to come
	P      int64  `json:"p"` // the previous cursor, for replays
	Select string `json:"sel,omitempty"`
	Since  int64  `json:"t,omitempty"` // receivedDateTime filter, Unix seconds
	Gt     bool   `json:"gt,omitempty"`
	Filter bool   `json:"flt,omitempty"`
}

// seal signs st into an opaque token.
func (s *Server) seal(st deltaState) string {
	payload, _ := json.Marshal(st) // plain struct: cannot fail
	mac := hmac.New(sha256.New, s.key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// open checks a token's signature and returns its state.
func (s *Server) open(tok string) (deltaState, bool) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return deltaState{}, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return deltaState{}, false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)[:16]) {
		return deltaState{}, false
	}
	var st deltaState
	if json.Unmarshal(payload, &st) != nil {
		return deltaState{}, false
	}
	return st, true
}

// selectable are the message properties a delta $select may name.
var selectable = []string{"id", "receivedDateTime", "internetMessageId", "subject", "parentFolderId", "isRead"}

// handleDelta is GET /mailFolders/{folder}/messages/delta
// (learn.microsoft.com/graph/api/message-delta).
func (s *Server) handleDelta(w http.ResponseWriter, r *http.Request) {
	req := reqOf(r)
	if !s.permit(w, r, req, false) {
		return
	}
	q := r.URL.Query()
	tok, isDeltaToken := q.Get("$deltatoken"), true
	if tok == "" {
		tok, isDeltaToken = q.Get("$skiptoken"), false
	}
	var st deltaState
	if tok == "" {
		var msg string
		if st, msg = parseDeltaQuery(q); msg != "" {
			s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidUrlQuery", msg)
			return
		}
	} else if len(q) != 1 || len(q[firstKey(q)]) != 1 {
		// The options of the first request are encoded in the link.
		s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidUrlQuery", "A delta link must be used as it was returned; it cannot carry other query options.")
		return
	}

	s.mu.Lock()
	mb := req.mailbox
	f := mb.folder(r.PathValue("folder"))
	if f == nil {
		s.mu.Unlock()
		s.writeError(w, r, req, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	if tok != "" {
		var ok bool
		st, ok = s.open(tok)
		if !ok || st.User != req.user || st.Folder != f.id || isDeltaToken != (st.H == 0) {
			s.mu.Unlock()
			s.writeError(w, r, req, http.StatusBadRequest, "ErrorInvalidSyncStateData", "The sync state data is corrupt or otherwise invalid.")
			return
		}
		if st.Epoch != mb.epoch {
			s.mu.Unlock()
			s.writeError(w, r, req, http.StatusGone, "syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
			return
		}
	} else {
		st.User, st.Folder, st.Epoch = req.user, f.id, mb.epoch
	}
	if st.H == 0 { // a round starts
		st.H, st.A = mb.seq, st.S
	}
	if mb.replays > 0 && st.P < st.A {
		// A replay: serve again what the previous page (or round) served.
		mb.replays--
		st.A = st.P
		st.S = min(st.S, st.P)
	}
	items := s.changes(mb, f, st)
	size := pageSize(r)
	link := req.base + "/v1.0/users/" + url.PathEscape(req.user) + "/mailFolders/" + url.PathEscape(f.id) + "/messages/delta?"
	body := map[string]any{"@odata.context": req.base + "/v1.0/$metadata#Collection(message)"}
	if len(items) > size {
		items = items[:size]
		next := st
		next.P, next.A = st.A, items[size-1].seq
		body["@odata.nextLink"] = link + "$skiptoken=" + s.seal(next)
	} else {
		next := st
		next.S, next.H, next.A, next.P = st.H, 0, 0, st.S
		body["@odata.deltaLink"] = link + "$deltatoken=" + s.seal(next)
	}
	sel := strings.Split(st.Select, ",")
	value := make([]map[string]any, 0, len(items))
	for _, m := range items {
		value = append(value, messageJSON(m, sel))
	}
	s.mu.Unlock()
	body["value"] = value
	if hasPrefer(r) {
		w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(size))
	}
	writeJSON(w, http.StatusOK, body)
}

// changes returns the folder's changes of the round after the cursor, in
// sequence order. Called with s.mu held.
func (s *Server) changes(mb *mailbox, f *mfolder, st deltaState) []*message {
	var out []*message
	for _, m := range mb.messages {
		if m.folder != f.id || m.seq <= st.A || m.seq > st.H {
			continue
		}
		if st.Filter {
			t := time.Unix(st.Since, 0)
			if m.received.Before(t) || (st.Gt && m.received.Equal(t)) {
				continue
			}
		}
		// A message deleted before the client could have seen it is not
		// reported; an initial round reports no deletions.
		if m.removed && (st.S == 0 || m.created > st.S) {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *message) int { return int(a.seq - b.seq) })
	return out
}

func messageJSON(m *message, sel []string) map[string]any {
	v := map[string]any{"@odata.type": "#microsoft.graph.message", "id": m.id}
	if m.removed {
		v["@removed"] = map[string]string{"reason": "deleted"}
		return v
	}
	v["@odata.etag"] = `W/"CQAAABYAAA` + strconv.FormatInt(m.seq, 36) + `"`
	all := len(sel) == 0 || (len(sel) == 1 && sel[0] == "")
	want := func(p string) bool { return all || slices.Contains(sel, p) }
	if want("receivedDateTime") {
		v["receivedDateTime"] = m.received.UTC().Format(time.RFC3339)
	}
	if want("internetMessageId") {
		v["internetMessageId"] = m.messageID
	}
	if want("subject") {
		v["subject"] = m.subject
	}
	if want("parentFolderId") {
		v["parentFolderId"] = m.folder
	}
	if want("isRead") {
		v["isRead"] = false
	}
	return v
}

// parseDeltaQuery checks the options of a first delta request: $select of
// known properties, and the one $filter Graph supports on message delta
// (receivedDateTime ge|gt a date); it returns a message for a bad one.
func parseDeltaQuery(q url.Values) (deltaState, string) {
	var st deltaState
	for k := range q {
		switch k {
		case "$select", "$filter":
		default:
			return st, "The query option '" + k + "' is not supported on message delta."
		}
	}
	if sel := q.Get("$select"); sel != "" {
		for _, p := range strings.Split(sel, ",") {
			if !slices.Contains(selectable, strings.TrimSpace(p)) {
				return st, "Could not find a property named '" + strings.TrimSpace(p) + "' on type 'microsoft.graph.message'."
			}
		}
		st.Select = sel
	}
	if flt := q.Get("$filter"); flt != "" {
		f := strings.Fields(flt)
		if len(f) != 3 || !strings.EqualFold(f[0], "receivedDateTime") || (f[1] != "ge" && f[1] != "gt") {
			return st, "The only $filter supported on message delta is receivedDateTime ge|gt {date}."
		}
		t, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return st, "The $filter date '" + f[2] + "' is not an ISO 8601 date and time."
		}
		st.Filter, st.Since, st.Gt = true, t.Unix(), f[1] == "gt"
	}
	return st, ""
}

// pageSize is the Prefer: odata.maxpagesize of r, else the default.
func pageSize(r *http.Request) int {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(strings.TrimSpace(p), "odata.maxpagesize="); ok {
				if i, err := strconv.Atoi(n); err == nil && i > 0 {
					return min(i, maxPageSize)
				}
			}
		}
	}
	return defaultPageSize
}

func hasPrefer(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		if strings.Contains(v, "odata.maxpagesize=") {
			return true
		}
	}
	return false
}

func firstKey(q url.Values) string {
	for k := range q {
		return k
	}
	return ""
}
