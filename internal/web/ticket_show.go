package web

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/postdesk/postdesk/internal/mailmsg"
	"github.com/postdesk/postdesk/internal/store"
)

type ticketShowPage struct {
	page
	Ticket      store.Ticket
	Items       []timelineItem
	Statuses    []statusOption
	Images      bool   // the agent asked to load remote images
	NoteBody    string // kept when the note could not be added
	NoteError   string
	StatusError string
	Assignees   []assigneeOption // the "Assign to" select
	AssignError string
	// ReplyTakes: sending a reply also assigns the ticket (nobody has it
	// and the server assigns on reply).
	ReplyTakes  bool
	Reply       replyComposer
	ActionError map[int64]string // a refused Send again / Mark as sent, by message
	Flash       *ticketFlash
}

type statusOption struct {
	Value, Label string
	Current      bool
}

// timelineItem is one entry of the conversation: exactly one of Message
// and Note is set.
type timelineItem struct {
	At      time.Time
	Message *messageView
	Note    *store.Note
}

// messageView is a message prepared for the page.
type messageView struct {
	store.Message
	Date          time.Time // Date header, else when it arrived
	Author        string    // for replies: the agent's email
	Outgoing      bool      // sent by us: a reply or an acknowledgement
	OutLabel      string    // the badge of an outgoing message: "Reply", "Acknowledgement"
	Delivery      *deliveryView
	ActionError   string // why Send again or Mark as sent was refused
	System        bool   // an auto-reply or bounce: shown collapsed
	SystemLabel   string
	HasHTML       bool
	ShowText      bool // the Text view is selected (or there is no HTML)
	Text          string
	SrcDoc        string // the sanitized HTML as a complete document
	FrameHeight   int    // pixels: an estimate, since a sandboxed frame cannot size itself
	BlockedImages int
	ImagesURL     string
	HTMLURL       string
	TextURL       string
}

// ticketShow shows a ticket and its conversation.
func (h *Handler) ticketShow(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		h.notFound(w, r, fmt.Sprintf("There is no ticket %q.", r.PathValue("id")))
		return
	}
	h.renderTicket(w, r, id, http.StatusOK, ticketShowPage{})
}

// renderTicket renders the ticket page; p carries form errors and values.
func (h *Handler) renderTicket(w http.ResponseWriter, r *http.Request, id int64, status int, p ticketShowPage) {
	ctx := r.Context()
	t, err := h.db.Ticket(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, ticketMissing(id))
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	msgs, err := h.db.TicketMessages(ctx, id)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	notes, err := h.db.TicketNotes(ctx, id)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	p.page, p.Ticket = h.base(r, "tickets"), t
	if p.Assignees, err = h.assigneeOptions(ctx, current(r).user, t.AssigneeUserID); err != nil {
		h.serverError(w, r, err)
		return
	}
	if t.AssigneeUserID != 0 && !slices.ContainsFunc(p.Assignees, func(o assigneeOption) bool { return o.Selected }) {
		// A disabled agent still owns it until someone else is chosen.
		p.Assignees = append(p.Assignees, assigneeOption{ID: t.AssigneeUserID, Label: cmp.Or(t.AssigneeName, t.AssigneeEmail) + " (disabled)", Selected: true})
	}
	p.ReplyTakes = t.AssigneeUserID == 0 && h.desk.AssignOnReply()
	admin := current(r).user.Role == store.RoleAdmin
	if err := h.composer(r, t, admin, &p.Reply); err != nil {
		h.serverError(w, r, err)
		return
	}
	facts := deliveryFacts{MailboxID: t.MailboxID, MailboxAddress: t.MailboxAddress, Admin: admin}
	q := r.URL.Query()
	p.Images = q.Get("images") == "1"
	textView, _ := strconv.ParseInt(q.Get("text"), 10, 64)
	authors := map[int64]string{}
	for i := range msgs {
		mv, err := h.messageView(r, &msgs[i], p.Images, msgs[i].ID == textView, authors)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		if mv.Outgoing && msgs[i].Delivery != nil {
			d := describeDelivery(*msgs[i].Delivery, facts)
			mv.Delivery, mv.ActionError = &d, p.ActionError[msgs[i].ID]
		}
		p.Items = append(p.Items, timelineItem{At: msgs[i].ReceivedAt, Message: mv})
	}
	for i := range notes {
		p.Items = append(p.Items, timelineItem{At: notes[i].CreatedAt, Note: &notes[i]})
	}
	slices.SortStableFunc(p.Items, func(a, b timelineItem) int { return a.At.Compare(b.At) })
	for _, s := range []string{store.StatusOpen, store.StatusPending, store.StatusSolved} {
		p.Statuses = append(p.Statuses, statusOption{Value: s, Label: statusLabel(s), Current: s == t.Status})
	}
	p.Flash = h.takeTicketFlash(w, r, id, p.Items)
	w.Header().Set("Content-Security-Policy", pageCSP(cspOptions{remoteImages: p.Images, emailFrames: true}))
	h.render(w, r, status, "ticket_show", p)
}

func (h *Handler) messageView(r *http.Request, m *store.Message, images, textView bool, authors map[int64]string) (*messageView, error) {
	mv := &messageView{Message: *m, Date: m.SentAt}
	if mv.Date.IsZero() {
		mv.Date = m.ReceivedAt
	}
	switch m.Kind {
	case store.KindAutoReply, store.KindLoop:
		mv.System, mv.SystemLabel = true, "Automatic reply from "+sender(m)
	case store.KindBounce:
		mv.System, mv.SystemLabel = true, "Delivery failure report from "+sender(m)
	}
	if m.Direction == "out" || m.Kind == store.KindReply {
		mv.Outgoing, mv.OutLabel = true, "Reply"
		if m.Delivery != nil && m.Delivery.Auto {
			mv.OutLabel = "Acknowledgement"
		}
		if m.AuthorUserID != 0 {
			if _, ok := authors[m.AuthorUserID]; !ok {
				u, err := h.db.User(r.Context(), m.AuthorUserID)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				authors[m.AuthorUserID] = u.Email
			}
			mv.Author = authors[m.AuthorUserID]
		}
	}
	// Our own messages are shown as the agent wrote them: the HTML part
	// is only a rendering of that text.
	mv.HasHTML = strings.TrimSpace(m.HTMLBody) != "" && !mv.Outgoing
	mv.Text = m.TextBody
	if strings.TrimSpace(mv.Text) == "" && mv.HasHTML {
		mv.Text = mailmsg.HTMLToText(m.HTMLBody)
	}
	mv.ShowText = !mv.HasHTML || textView || mv.System
	base := ticketURL(m.TicketID)
	anchor := "#m-" + strconv.FormatInt(m.ID, 10)
	keep := url.Values{}
	if images {
		keep.Set("images", "1")
	}
	mv.HTMLURL = withQuery(base, keep) + anchor
	tv := cloneValues(keep)
	tv.Set("text", strconv.FormatInt(m.ID, 10))
	mv.TextURL = withQuery(base, tv) + anchor
	iv := url.Values{"images": {"1"}}
	mv.ImagesURL = withQuery(base, iv) + anchor
	if mv.ShowText {
		return mv, nil
	}
	s := h.sanitize(m.HTMLBody, mailmsg.SanitizeOptions{
		AllowRemoteImages: images,
		CIDURL:            func(cid string) string { return cidURL(current(r).sess, m.ID, cid) },
	})
	mv.BlockedImages = s.BlockedImages
	mv.SrcDoc = emailDocument(s.HTML, images)
	mv.FrameHeight = frameHeight(mailmsg.HTMLToText(s.HTML), strings.Count(s.HTML, "<img"))
	return mv, nil
}

// emailDocument wraps sanitized email HTML in a document for a sandboxed
// srcdoc frame. Its CSP is the second wall: no script, no fetches but our
// own images (and https images when asked), no forms. The frame inherits
// the page's policy as well, so both must allow a load.
func emailDocument(body string, remoteImages bool) string {
	img := "img-src 'self' data:"
	if remoteImages {
		img += " https:"
	}
	return `<!doctype html><html><head><meta charset="utf-8">` +
		`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` + img + `; style-src 'unsafe-inline'; font-src data:; form-action 'none'">` +
		`<meta name="referrer" content="no-referrer"><base target="_blank">` +
		`<style>html{color-scheme:light}body{margin:0;padding:4px 2px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;overflow-wrap:anywhere}` +
		`img{max-width:100%;height:auto}table{max-width:100%}blockquote{margin:0 0 0 .5em;padding-left:.75em;border-left:3px solid #d5dae3;color:#4a5568}</style>` +
		`</head><body>` + body + `</body></html>`
}

// frameHeight estimates the pixels an email needs from its text: a
// sandboxed frame without scripts cannot report its height, so the page
// picks one from the text and images (and the frame can be resized by
// hand).
func frameHeight(text string, images int) int {
	lines := 0
	for l := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		lines += 1 + len(l)/90
	}
	return min(max(48+lines*25+min(images, 4)*40, 140), 900)
}

func sender(m *store.Message) string {
	if m.FromName != "" && m.FromAddress != "" {
		return m.FromName + " <" + m.FromAddress + ">"
	}
	if m.FromAddress != "" {
		return m.FromAddress
	}
	if m.FromName != "" {
		return m.FromName
	}
	return "an unknown sender"
}

func ticketURL(id int64) string { return "/tickets/" + strconv.FormatInt(id, 10) }

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// pathID parses the {id} path value: a positive integer.
func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}
